"""Roster and the subscription handshake (RFC 6121 §2-§4) between two clients."""

from helpers import Events, connect, disconnect, get_roster, make_client, run, subscribe


def test_mutual_subscription_and_presence(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        a = make_client(alice, "pc")
        b = make_client(bob, "phone")
        a_pushes = Events(a, "roster_update")
        a_subscribe = Events(a, "presence_subscribe")
        a_subscribed = Events(a, "presence_subscribed")
        a_available = Events(a, "presence_available")
        a_unavailable = Events(a, "presence_unavailable")
        b_subscribe = Events(b, "presence_subscribe")
        b_subscribed = Events(b, "presence_subscribed")
        b_available = Events(b, "presence_available")
        await connect(a, server)
        await connect(b, server)
        try:
            from_bob = lambda p: p["from"].bare == bob.jid  # noqa: E731
            from_alice = lambda p: p["from"].bare == alice.jid  # noqa: E731

            # A adds B to her roster (roster set -> push) and subscribes.
            await a.update_roster(bob.jid, name="Bob", groups=["Friends"])
            await a_pushes.next(lambda iq: bob.jid in iq["roster"]["items"])
            a.send_presence(pto=bob.jid, ptype="subscribe")

            # B gets the request, approves it and subscribes back.
            req = await b_subscribe.next(from_alice)
            assert req["from"].bare == alice.jid
            b.send_presence(pto=alice.jid, ptype="subscribed")
            b.send_presence(pto=alice.jid, ptype="subscribe")

            # A learns she is subscribed, gets B's presence, and approves B.
            await a_subscribed.next(from_bob)
            await a_available.next(from_bob)
            await a_subscribe.next(from_bob)
            a.send_presence(pto=bob.jid, ptype="subscribed")
            await b_subscribed.next(from_alice)
            await b_available.next(from_alice)

            ra = await get_roster(a)
            rb = await get_roster(b)
            assert ra[bob.jid]["subscription"] == "both", ra
            assert ra[bob.jid]["name"] == "Bob"
            assert ra[bob.jid]["groups"] == ["Friends"]
            assert not ra[bob.jid].get("ask"), ra
            assert rb[alice.jid]["subscription"] == "both", rb
            assert not rb[alice.jid].get("ask"), rb

            # B goes away: A gets unavailable from B's full JID.
            await disconnect(b)
            gone = await a_unavailable.next(from_bob)
            assert gone["from"].full == f"{bob.jid}/phone"
        finally:
            await disconnect(a)
            await disconnect(b)

    run(main())


def test_roster_remove_cancels_subscriptions(server, accounts):
    """RFC 6121 §2.5.3: removing a contact with subscription=both sends
    unsubscribe and unsubscribed to it; the contact's item drops to none."""
    alice, bob = accounts("alice", "bob")

    async def main():
        a = make_client(alice, "pc")
        b = make_client(bob, "phone")
        await connect(a, server)
        await connect(b, server)
        try:
            await subscribe(a, b)
            await subscribe(b, a)
            ra = await get_roster(a)
            assert ra[bob.jid]["subscription"] == "both", ra

            a_pushes = Events(a, "roster_update")
            b_pushes = Events(b, "roster_update")
            b_unavailable = Events(b, "presence_unavailable")
            await a.del_roster_item(bob.jid)
            await a_pushes.next(lambda iq: bob.jid in iq["roster"]["items"] and
                                iq["roster"]["items"][bob.jid]["subscription"] == "remove")
            # B's item for A ends with subscription none, and B stops seeing A.
            await b_pushes.next(lambda iq: alice.jid in iq["roster"]["items"]
                                and iq["roster"]["items"][alice.jid]["subscription"] == "none")
            await b_unavailable.next(lambda p: p["from"].bare == alice.jid)
            assert bob.jid not in await get_roster(a)
            rb = await get_roster(b)
            assert rb[alice.jid]["subscription"] == "none", rb
        finally:
            await disconnect(a)
            await disconnect(b)

    run(main())
