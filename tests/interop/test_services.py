"""Server services: disco#info, ping, version, time, vCard-temp, last activity."""

import asyncio
import datetime
import re

from helpers import DOMAIN, STEP_TIMEOUT, Events, run, session, subscribe

EXPECTED_FEATURES = {
    "http://jabber.org/protocol/disco#info",
    "urn:xmpp:ping",
    "jabber:iq:version",
    "urn:xmpp:time",
    "vcard-temp",
    "jabber:iq:last",
}


def test_disco_ping_version_time(server, accounts):
    (alice,) = accounts("alice")

    async def main():
        async with session(alice, server, "a") as a:
            info = await a.plugin["xep_0030"].get_info(jid=DOMAIN, cached=False,
                                                       timeout=STEP_TIMEOUT)
            features = set(info["disco_info"]["features"])
            print("server features:", sorted(features))
            print("server identities:", info["disco_info"]["identities"])
            assert EXPECTED_FEATURES <= features, EXPECTED_FEATURES - features
            assert any(cat == "server" for cat, *_ in info["disco_info"]["identities"])

            # slixmpp's ping() counts an error from the own server as success,
            # so send the ping IQ directly and require a result.
            pong = await a.plugin["xep_0199"].send_ping(DOMAIN, timeout=STEP_TIMEOUT)
            assert pong["type"] == "result"

            ver = await a.plugin["xep_0092"].get_version(DOMAIN, timeout=STEP_TIMEOUT)
            print("server version:", dict(ver["software_version"]))
            assert ver["software_version"]["name"], str(ver)
            assert ver["software_version"]["version"], str(ver)

            t = await a.plugin["xep_0202"].get_entity_time(DOMAIN, timeout=STEP_TIMEOUT)
            # slixmpp 1.17's get_utc() appends a second 'Z' to the (correct)
            # XEP-0082 value, so read the element text directly.
            tns = "{urn:xmpp:time}"
            raw = t.xml.find(f"{tns}time/{tns}utc").text
            tzo = t.xml.find(f"{tns}time/{tns}tzo").text
            assert raw.endswith("Z"), str(t)
            assert re.fullmatch(r"[+-]\d\d:\d\d|Z", tzo), str(t)
            utc = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            now = datetime.datetime.now(datetime.timezone.utc)
            assert abs((now - utc).total_seconds()) < 60, (utc, now)

    run(main())


def test_vcard_set_and_get_by_other_user(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "a") as a, session(bob, server, "b") as b:
            vc = a.plugin["xep_0054"].make_vcard()
            vc["FN"] = "Alice Example"
            vc["NICKNAME"] = "alice"
            vc["URL"] = "https://example.org/alice"
            # Raises IqError unless the server answers with a result.
            await a.plugin["xep_0054"].publish_vcard(vc, timeout=STEP_TIMEOUT)

            got = await b.plugin["xep_0054"].get_vcard(alice.jid, local=False, cached=False,
                                                      timeout=STEP_TIMEOUT)
            card = got["vcard_temp"]
            assert got["from"].bare == alice.jid or not got["from"], str(got)
            assert card["FN"] == "Alice Example", str(got)
            assert card["NICKNAME"] in ("alice", ["alice"]), str(got)  # a list in slixmpp
            assert card["URL"] == "https://example.org/alice", str(got)

            # The owner reads it back too (to no JID = own account).
            own = a.Iq()
            own["type"] = "get"
            own.enable("vcard_temp")
            own_res = await own.send(timeout=STEP_TIMEOUT)
            assert own_res["vcard_temp"]["FN"] == "Alice Example", str(own_res)

    run(main())


def test_last_activity_of_offline_contact(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "a") as a:
            gone = Events(a, "presence_unavailable")
            async with session(bob, server, "b") as b:
                await subscribe(a, b)  # A may see B's presence and last activity
                b.send_presence(ptype="unavailable", pstatus="gone fishing")
                await gone.next(lambda p: p["from"].bare == bob.jid)
            await asyncio.sleep(1.2)
            last = await a.plugin["xep_0012"].get_last_activity(bob.jid,
                                                                timeout=STEP_TIMEOUT)
            print("last activity:", last)
            assert last["type"] == "result"
            seconds = last["last_activity"]["seconds"]
            assert isinstance(seconds, int) and 1 <= seconds < 60, str(last)
            # XEP-0012 §5: the status text of the last unavailable presence MAY
            # be included; not required.
            print("status text:", repr(last["last_activity"]["status"]))

    run(main())
