"""1:1 messages: receipts and stanza-id, offline delivery, multiple resources, errors."""

from helpers import DOMAIN, Events, connect, disconnect, make_client, run, session

SID = "{urn:xmpp:sid:0}stanza-id"
DELAY = "{urn:xmpp:delay}delay"


def _stanza_ids(msg):
    return [(e.get("by"), e.get("id")) for e in msg.xml.findall(SID)]


def test_message_with_receipt_and_stanza_id(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "a") as a, session(bob, server, "b") as b:
            b_msgs = Events(b, "message")
            a_receipts = Events(a, "receipt_received")

            m = a.make_message(mto=bob.jid, mbody="hello bob", mtype="chat")
            m["request_receipt"] = True
            m["id"] = "msg-receipt-1"
            m.send()

            got = await b_msgs.next(lambda x: x["body"] == "hello bob")
            assert got["from"].full == f"{alice.jid}/a"
            assert got["type"] == "chat"
            assert got["request_receipt"], str(got)
            ids = _stanza_ids(got)
            assert [by for by, _ in ids] == [bob.jid], f"stanza-id by: {ids} in {got}"
            assert ids[0][1], "stanza-id without id"
            b.plugin["xep_0184"].ack(got)

            receipt = await a_receipts.next()
            assert receipt["receipt"] == "msg-receipt-1"
            assert receipt["from"].full == f"{bob.jid}/b"

    run(main())


def test_offline_delivery_with_delay(server, accounts):
    alice, bob = accounts("alice", "bob")
    bodies = ["offline one", "offline two", "offline three"]

    async def main():
        async with session(alice, server, "a") as a:
            errors = Events(a, "message_error")
            for body in bodies:
                a.send_message(mto=bob.jid, mbody=body, mtype="chat")
            # Stored, not bounced. A ping round trip makes sure all were processed.
            await a.plugin["xep_0199"].ping(timeout=10)
            await errors.none(within=1.0)

            b = make_client(bob, "b")
            b_msgs = Events(b, "message")
            await connect(b, server)  # sends initial presence -> offline flush
            try:
                got = [await b_msgs.next() for _ in bodies]
                assert [m["body"] for m in got] == bodies
                for m in got:
                    assert m["from"].bare == alice.jid
                    delay = m.xml.find(DELAY)
                    assert delay is not None, f"no XEP-0203 delay in {m}"
                    assert delay.get("stamp", "").endswith("Z"), str(m)
                    assert m["delay"]["stamp"] is not None
                    assert delay.get("from") == DOMAIN, str(m)
                    assert [by for by, _ in _stanza_ids(m)] == [bob.jid], str(m)
                await b_msgs.none(within=1.0)
            finally:
                await disconnect(b)

            # Logging in again later: nothing is redelivered.
            b2 = make_client(bob, "b")
            b2_msgs = Events(b2, "message")
            await connect(b2, server)
            try:
                await b2_msgs.none(within=2.0)
            finally:
                await disconnect(b2)

    run(main())


def test_two_resources(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "a") as a:
            r2 = make_client(bob, "r2")
            r2_msgs = Events(r2, "message")
            r2_pres = Events(r2, "presence")
            await connect(r2, server)
            r1 = make_client(bob, "r1")
            r1_msgs = Events(r1, "message")
            await connect(r1, server)
            try:
                # r1's initial presence is broadcast to B's other resource.
                p = await r2_pres.next(lambda p: p["from"].full == f"{bob.jid}/r1")
                assert p["type"] == "available", str(p)
                # ... and so is a later presence change.
                r1.send_presence(pshow="away", pstatus="lunch")
                p = await r2_pres.next(lambda p: p["from"].full == f"{bob.jid}/r1"
                                       and p["show"] == "away")
                assert p["show"] == "away" and p["status"] == "lunch", str(p)

                # To the bare JID: both resources (same priority 0) get it.
                a.send_message(mto=bob.jid, mbody="to bare", mtype="chat")
                m1 = await r1_msgs.next(lambda m: m["body"] == "to bare")
                m2 = await r2_msgs.next(lambda m: m["body"] == "to bare")
                assert m1["from"].full == m2["from"].full == f"{alice.jid}/a"

                # To the full JID of r2: only r2.
                a.send_message(mto=f"{bob.jid}/r2", mbody="to r2 only", mtype="chat")
                m2 = await r2_msgs.next(lambda m: m["body"] == "to r2 only")
                assert m2["to"].full == f"{bob.jid}/r2"
                await r1_msgs.none(lambda m: m["body"] == "to r2 only", within=1.5)
            finally:
                await disconnect(r1)
                await disconnect(r2)

    run(main())


def test_message_to_unknown_account(server, accounts):
    (alice,) = accounts("alice")
    nobody = f"nobody-here@{DOMAIN}"

    async def main():
        async with session(alice, server, "a") as a:
            errors = Events(a, "message_error")
            m = a.make_message(mto=nobody, mbody="anyone?", mtype="chat")
            m["id"] = "to-nobody-1"
            m.send()
            err = await errors.next()
            assert err["type"] == "error"
            assert err["id"] == "to-nobody-1"
            assert err["from"].bare == nobody
            assert err["error"]["type"] == "cancel", str(err)
            assert err["error"]["condition"] == "service-unavailable", str(err)

    run(main())
