"""Blocking (XEP-0191), private storage (XEP-0049) and account removal
(XEP-0077) with slixmpp's own plugins."""

from slixmpp.xmlstream import ElementBase

from helpers import Events, connect, disconnect, make_client, run, subscribe

PLUGINS = ("xep_0030", "xep_0199", "xep_0191", "xep_0049", "xep_0077")


class Prefs(ElementBase):
    name = "prefs"
    namespace = "urn:example:prefs"
    plugin_attrib = "prefs"
    interfaces = {"theme"}
    sub_interfaces = interfaces


async def until_marker(events: Events, marker: str) -> list:
    """Every message before the one with id ``marker``."""
    seen = []
    while True:
        m = await events.next()
        if m["id"] == marker:
            return seen
        seen.append(m)


def test_blocked_contact_cannot_reach_the_user_until_unblocked(server, accounts):
    alice, bob, carol = accounts("alice", "bob", "carol")

    async def main():
        a = make_client(alice, "pc", plugins=PLUGINS)
        b = make_client(bob, "phone", plugins=PLUGINS)
        c = make_client(carol, "tab", plugins=PLUGINS)
        a_msgs = Events(a, "message")
        b_errors = Events(b, "message_error")
        a_errors = Events(a, "message_error")
        a_blocked = Events(a, "blocked")
        a_unblocked = Events(a, "unblocked")
        b_unavailable = Events(b, "presence_unavailable")
        b_available = Events(b, "presence_available")
        for x in (a, b, c):
            await connect(x, server)
        try:
            await subscribe(b, a)
            await b_available.next(lambda p: p["from"].bare == alice.jid)
            assert await a.plugin["xep_0191"].get_blocked_jids() == set()
            await a.plugin["xep_0191"].block(bob.jid)
            # The push reaches the resource that asked for the list.
            ev = await a_blocked.next()
            assert f"jid=\"{bob.jid}\"" in str(ev["block"]), ev
            assert {str(j) for j in await a.plugin["xep_0191"].get_blocked_jids()} == {bob.jid}
            # Bob saw alice go.
            await b_unavailable.next(lambda p: p["from"].bare == alice.jid)

            # Bob's message bounces; alice never gets it.
            b.send_message(mto=alice.jid, mbody="let me in", mtype="chat")
            err = await b_errors.next()
            assert err["error"]["condition"] == "service-unavailable", err
            mk = c.make_message(mto=alice.jid, mbody="marker", mtype="chat")
            mk["id"] = "k1"
            mk.send()
            before = await until_marker(a_msgs, "k1")
            assert all(m["from"].bare != bob.jid for m in before), before
            # Alice cannot write to bob either.
            a.send_message(mto=bob.jid, mbody="hello?", mtype="chat")
            err = await a_errors.next()
            assert err["error"]["condition"] == "not-acceptable", err
            assert "urn:xmpp:blocking:errors" in str(err), err

            # Unblocked: presence and messages flow again.
            await a.plugin["xep_0191"].unblock(bob.jid)
            await a_unblocked.next()
            await b_available.next(lambda p: p["from"].bare == alice.jid)
            again = b.make_message(mto=alice.jid, mbody="thanks", mtype="chat")
            again["id"] = "m2"
            again.send()
            got = await a_msgs.next(lambda m: m["id"] == "m2")
            assert got["body"] == "thanks"
        finally:
            for x in (a, b, c):
                await disconnect(x)

    run(main())


def test_private_storage(server, accounts):
    (alice,) = accounts("alice")

    async def main():
        a = make_client(alice, "pc", plugins=PLUGINS)
        a.plugin["xep_0049"].register(Prefs)
        await connect(a, server)
        try:
            p = Prefs()
            p["theme"] = "dark"
            await a.plugin["xep_0049"].store(p)
            res = await a.plugin["xep_0049"].retrieve("prefs")
            assert res["private"]["prefs"]["theme"] == "dark", res
        finally:
            await disconnect(a)

    run(main())


def test_account_removal(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        a = make_client(alice, "pc", plugins=PLUGINS)
        b = make_client(bob, "phone", plugins=PLUGINS)
        b_pushes = Events(b, "roster_update")
        b_errors = Events(b, "message_error")
        a_ended = Events(a, "stream_error")
        await connect(a, server)
        await connect(b, server)
        try:
            await subscribe(b, a)
            reg = await a.plugin["xep_0077"].get_registration()
            assert reg["register"]["registered"], reg
            await a.plugin["xep_0077"].cancel_registration()
            await a_ended.next()
            # Bob's roster item for alice loses its subscription.
            await b_pushes.next(
                lambda iq: alice.jid in iq["roster"]["items"]
                and iq["roster"]["items"][alice.jid]["subscription"] == "none")
            b.send_message(mto=alice.jid, mbody="still there?", mtype="chat")
            err = await b_errors.next()
            assert err["error"]["condition"] == "service-unavailable", err
            assert alice.jid not in server.cli("user", "list").split()
        finally:
            await disconnect(a)
            await disconnect(b)

    run(main())
