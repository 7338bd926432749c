// xmpp.js (@xmpp/client) over WebSocket (RFC 7395), driven by
// tests/interop/test_websocket.py:
//
//   node --experimental-websocket ws_chat.mjs URL JID PASSWORD PEER_JID
//
// Logs in as JID over the WebSocket URL, sends PEER_JID a message asking
// for a receipt (XEP-0184) and waits for it, answers PEER_JID's message
// with a receipt, then closes the stream. Prints one line per step on
// stdout; exits non-zero (with the reason on stderr) on any failure.
import { client, xml } from "@xmpp/client";

// Node before 22 has no global WebSocket without --experimental-websocket:
// fall back to the `ws` package.
if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = (await import("ws")).WebSocket;
}

const [url, jid, password, peer] = process.argv.slice(2);
const [username, domain] = jid.split("@");
const RECEIPTS = "urn:xmpp:receipts";

const fail = (why) => {
  console.error(`ws_chat: ${why}`);
  process.exit(1);
};
setTimeout(() => fail("timed out after 30 s"), 30_000).unref();

const xmpp = client({ service: url, domain, username, password, resource: "js" });
xmpp.on("error", (err) => fail(`error: ${err.message || err}`));
// Every element both ways on stderr (shown when the test fails).
xmpp.on("element", (el) => console.error(`IN  ${el}`));
xmpp.on("send", (el) => console.error(`OUT ${el}`));

let gotReceipt = false;
let answered = false;
const maybeDone = async () => {
  if (gotReceipt && answered) {
    console.log("DONE");
    await xmpp.stop();
    process.exit(0);
  }
};

xmpp.on("stanza", async (st) => {
  if (!st.is("message")) return;
  const received = st.getChild("received", RECEIPTS);
  if (received) {
    if (received.attrs.id !== "js-1") fail(`receipt for ${received.attrs.id}`);
    console.log(`RECEIPT ${received.attrs.id} from ${st.attrs.from}`);
    gotReceipt = true;
    return maybeDone();
  }
  const body = st.getChildText("body");
  if (body === null) return;
  console.log(`GOT ${body} from ${st.attrs.from}`);
  if (st.getChild("request", RECEIPTS)) {
    await xmpp.send(
      xml("message", { to: st.attrs.from, id: `r-${st.attrs.id}` },
        xml("received", { xmlns: RECEIPTS, id: st.attrs.id })),
    );
    answered = true;
    return maybeDone();
  }
});

// xmpp.js goes online before its XEP-0198 <enable/> is answered. A stanza
// that arrives just before <enabled/> can then be counted after its counter
// was reset (its middleware is async), making its h one too high, which
// natterd rightly refuses: wait for stream management before sending.
const smEnabled = () =>
  new Promise((resolve) => {
    const t = setInterval(() => {
      if (xmpp.streamManagement.enabled) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });

xmpp.on("online", async (address) => {
  await smEnabled();
  console.log(`ONLINE ${address.toString()} secure=${xmpp.isSecure()} sm=true`);
  await xmpp.send(xml("presence"));
  await xmpp.send(
    xml("message", { to: peer, type: "chat", id: "js-1" },
      xml("body", {}, "hello from xmpp.js"),
      xml("request", { xmlns: RECEIPTS })),
  );
});

xmpp.start().catch((err) => fail(`start: ${err.message || err}`));
