"""Client state indication (XEP-0352) with slixmpp's xep_0352 plugin: an
inactive client gets only the latest presence of a contact, released (in
order) by the next message."""

from helpers import DEFAULT_PLUGINS, Events, run, session


def test_an_inactive_client_gets_the_latest_presence_with_the_next_message(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "a") as a, \
                session(bob, server, "b", plugins=DEFAULT_PLUGINS + ("xep_0352",)) as b:
            assert b.plugin["xep_0352"].enabled, "natterd offers <csi/> after authentication"
            presences = Events(b, "presence")
            messages = Events(b, "message")
            b.plugin["xep_0352"].send_inactive()
            # A round trip: the state is taken before what follows.
            await b.plugin["xep_0199"].ping(timeout=10)

            to = b.boundjid.full
            a.send_presence(pto=to, pshow="away")
            a.send_presence(pto=to, pshow="xa")
            a.send_message(mto=to, mbody="wake up", mtype="chat")
            await messages.next(lambda m: m["body"] == "wake up")
            # Events fire in the order stanzas arrive: the presences that came
            # before the message have been seen.
            shows = [p["show"] for p in presences.drain() if p["from"] == a.boundjid]
            assert shows == ["xa"], shows

            b.plugin["xep_0352"].send_active()
            a.send_presence(pto=to, pshow="dnd")
            got = await presences.next(lambda p: p["from"] == a.boundjid)
            assert got["show"] == "dnd"

    run(main())
