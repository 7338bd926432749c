"""Message carbons (XEP-0280) with slixmpp's xep_0280 plugin: one account on
three devices (phone, web, desktop) sees both sides of every conversation.

"Nothing else arrived" is checked without waiting for a quiet period: a
headline marker (never copied) is sent afterwards, and once it arrived every
copy that came before it has been handled (slixmpp handles stanzas in order).
"""

from helpers import DEFAULT_PLUGINS, Events, run, session

PLUGINS = DEFAULT_PLUGINS + ("xep_0280",)


async def _enable(*clients):
    for c in clients:
        await c.plugin["xep_0280"].enable(timeout=10)


async def _marker(sender, device, events, mark):
    """Sends ``device`` a headline marker and waits for it on ``events``."""
    sender.send_message(mto=device.boundjid.full, mbody=mark, mtype="headline")
    await events.next(lambda m: m["body"] == mark)


def test_a_message_sent_from_one_device_appears_on_the_others(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "phone", plugins=PLUGINS) as phone, \
                session(alice, server, "web", plugins=PLUGINS) as web, \
                session(alice, server, "desktop", plugins=PLUGINS) as desktop, \
                session(bob, server, "b") as b:
            await _enable(phone, web, desktop)
            sent = {c: Events(c, "carbon_sent") for c in (phone, web, desktop)}
            received = {c: Events(c, "carbon_received") for c in (phone, web, desktop)}
            plain = {c: Events(c, "message") for c in (phone, web, desktop)}
            b_msgs = Events(b, "message")

            phone.send_message(mto=bob.jid, mbody="from the phone", mtype="chat")
            got = await b_msgs.next(lambda m: m["body"] == "from the phone")
            assert got["from"].full == f"{alice.jid}/phone"

            for device in (web, desktop):
                copy = await sent[device].next()
                assert copy["from"].full == alice.jid, str(copy)
                assert copy["to"].full == device.boundjid.full, str(copy)
                inner = copy["carbon_sent"]
                assert inner["body"] == "from the phone", str(copy)
                assert inner["from"].full == f"{alice.jid}/phone"
                assert inner["to"].bare == bob.jid

            # The phone itself gets no copy; nobody got anything else.
            for device in (phone, web, desktop):
                await _marker(b, device, plain[device], f"mark-{device.boundjid.resource}")
                assert sent[device].drain() == []
                assert received[device].drain() == []

    run(main())


def test_a_message_received_on_one_device_appears_on_the_others(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "phone", plugins=PLUGINS) as phone, \
                session(alice, server, "web", plugins=PLUGINS) as web, \
                session(alice, server, "desktop", plugins=PLUGINS) as desktop, \
                session(bob, server, "b") as b:
            await _enable(phone, web, desktop)
            received = {c: Events(c, "carbon_received") for c in (phone, web, desktop)}
            plain = {c: Events(c, "message") for c in (phone, web, desktop)}

            # To one device (full JID): the others get a copy.
            b.send_message(mto=f"{alice.jid}/web", mbody="to the web app", mtype="chat")
            got = await plain[web].next(lambda m: m["body"] == "to the web app")
            assert got["from"].full == f"{bob.jid}/b"
            for device in (phone, desktop):
                copy = await received[device].next()
                assert copy["from"].full == alice.jid, str(copy)
                inner = copy["carbon_received"]
                assert inner["body"] == "to the web app"
                assert inner["from"].full == f"{bob.jid}/b"
                assert inner["to"].full == f"{alice.jid}/web"

            # To the bare JID: every device gets the message itself, so no
            # device gets a copy too.
            b.send_message(mto=alice.jid, mbody="to everyone", mtype="chat")
            for device in (phone, web, desktop):
                await plain[device].next(lambda m: m["body"] == "to everyone")
            for device in (phone, web, desktop):
                await _marker(b, device, plain[device], f"mark-{device.boundjid.resource}")
                assert received[device].drain() == [], device.boundjid.full

            # A device that turns carbons off gets no more copies.
            await desktop.plugin["xep_0280"].disable(timeout=10)
            b.send_message(mto=f"{alice.jid}/phone", mbody="to the phone", mtype="chat")
            await plain[phone].next(lambda m: m["body"] == "to the phone")
            copy = await received[web].next()
            assert copy["carbon_received"]["body"] == "to the phone"
            await _marker(b, desktop, plain[desktop], "mark-after-disable")
            assert received[desktop].drain() == []

    run(main())
