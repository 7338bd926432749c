"""xmpp.js (@xmpp/client, run by node) over WebSocket with slixmpp on TCP."""

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from helpers import Events, run, session

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "ws_chat.mjs"


@pytest.fixture(scope="module")
def node():
    """node, with @xmpp/client installed in tests/interop/js/node_modules."""
    exe = shutil.which("node")
    if exe is None or not (JS_DIR / "node_modules" / "@xmpp" / "client").is_dir():
        # tests/interop/run.sh installs both; without them this must fail,
        # not skip: the WebSocket interop test is part of the suite.
        pytest.fail("node or @xmpp/client missing: run tests/interop/run.sh")
    return exe


def node_flags(node: str) -> list[str]:
    """--experimental-websocket where this node knows it (20.10 to 21);
    otherwise the script uses a global WebSocket or the `ws` package."""
    import subprocess
    ok = subprocess.run([node, "--experimental-websocket", "-e", "0"],
                        capture_output=True).returncode == 0
    return ["--experimental-websocket"] if ok else []


def test_xmppjs_over_websocket_chats_with_slixmpp(server, accounts, node):
    alice, bob = accounts("alice", "bob")
    url = f"ws://127.0.0.1:{server.http_port}/xmpp-websocket"

    async def main():
        async with session(bob, server, "tcp") as b:
            b_msgs = Events(b, "message")
            b_receipts = Events(b, "receipt_received")
            proc = await asyncio.create_subprocess_exec(
                node, *node_flags(node), str(SCRIPT), url, alice.jid,
                alice.password, bob.jid,
                cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "NODE_NO_WARNINGS": "1"})
            try:
                got = await b_msgs.next(lambda m: m["body"] == "hello from xmpp.js", timeout=20)
                assert got["from"].full == f"{alice.jid}/js"
                assert got["request_receipt"], str(got)
                b.plugin["xep_0184"].ack(got)

                m = b.make_message(mto=got["from"], mbody="hello from slixmpp", mtype="chat")
                m["request_receipt"] = True
                m["id"] = "sx-1"
                m.send()
                receipt = await b_receipts.next()
                assert receipt["receipt"] == "sx-1"
                assert receipt["from"].full == f"{alice.jid}/js"

                out, err = await asyncio.wait_for(proc.communicate(), 20)
            finally:
                if proc.returncode is None:
                    proc.kill()
            out, err = out.decode(), err.decode()
            assert proc.returncode == 0, f"node failed:\n{out}\n{err}"
            assert f"ONLINE {alice.jid}/js secure=true sm=true" in out, out
            assert f"RECEIPT js-1 from {bob.jid}/tcp" in out, out
            assert f"GOT hello from slixmpp from {bob.jid}/tcp" in out, out
            assert "DONE" in out, out

        # natterd saw a WebSocket session, bound and ended.
        await server.wait_log("session bound", f"{alice.jid}/js")
        await server.wait_log("session ended", f"{alice.jid}/js")

    run(main())
