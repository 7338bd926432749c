"""PEP access models (XEP-0163 on XEP-0060) with plain slixmpp (xep_0060,
xep_0163): who may read a node and who is notified of its items.

Alice owns the nodes, bob is a contact (presence subscriptions both ways),
carol is not (a stranger); alice also has a second device. A node published with
``access_model=presence`` is readable by alice and bob, not by carol; a
``whitelist`` node only by alice. Notifications follow the same rule: every
one of them registered interest (``NODE+notify`` in its caps), only those
who may read the node get its items.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form

from helpers import (DEFAULT_PLUGINS, STEP_TIMEOUT, Events, connect, disconnect, make_client,
                     run, subscribe)

PLUGINS = DEFAULT_PLUGINS + ("xep_0060", "xep_0163", "xep_0115")
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NOTE = "urn:natter:test:note"
PRESENCE_NODE = "urn:natter:test:presence-node"
WHITELIST_NODE = "urn:natter:test:whitelist-node"


def _options(access_model: str) -> Form:
    form = Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    form.add_field(var="pubsub#access_model", value=access_model)
    return form


def _note(text: str) -> ET.Element:
    el = ET.Element(f"{{{NOTE}}}note")
    el.text = text
    return el


async def _read(client, owner: str, node: str) -> list[str]:
    """The note texts of the node's items, as ``client`` reads them."""
    res = await client.plugin["xep_0060"].get_items(owner, node, timeout=STEP_TIMEOUT)
    return [n.text for n in res.xml.iter(f"{{{NOTE}}}note")]


async def _refused(client, owner: str, node: str) -> tuple[str, str, str | None]:
    """(error type, condition, pubsub#errors condition) of a refused read."""
    with pytest.raises(IqError) as info:
        await client.plugin["xep_0060"].get_items(owner, node, timeout=STEP_TIMEOUT)
    err = info.value.iq["error"]
    app = next((c.tag.split("}", 1)[1] for c in err.xml
                if c.tag.startswith(f"{{{PUBSUB_ERRORS}}}")), None)
    return err["type"], err["condition"], app


def test_presence_and_whitelist_nodes(server, accounts):
    alice, bob, carol = accounts("alice", "bob", "carol")

    async def main():
        clients = {}
        for name, acc, res in (("alice", alice, "a"), ("alice2", alice, "a2"),
                               ("bob", bob, "b"), ("carol", carol, "c")):
            c = make_client(acc, res, plugins=PLUGINS)
            for node in (PRESENCE_NODE, WHITELIST_NODE):
                c.plugin["xep_0163"].add_interest(node)
            clients[name] = c
        try:
            for c in clients.values():
                await connect(c, server, send_presence=False)
                await c.get_roster(timeout=STEP_TIMEOUT)
                c.send_presence()
            a, a2, b, c = (clients[n] for n in ("alice", "alice2", "bob", "carol"))
            # bob and alice are contacts (both ways, so each one's server
            # gets the other's presence and caps); carol is not.
            await subscribe(b, a)
            await subscribe(a, b)
            events = {n: Events(cl, "pubsub_publish") for n, cl in clients.items()}

            await a.plugin["xep_0060"].publish(
                alice.jid, PRESENCE_NODE, id="p1", payload=_note("for contacts"),
                options=_options("presence"), timeout=STEP_TIMEOUT)
            await a.plugin["xep_0060"].publish(
                alice.jid, WHITELIST_NODE, id="w1", payload=_note("for alice"),
                options=_options("whitelist"), timeout=STEP_TIMEOUT)

            # Reads.
            assert await _read(a2, alice.jid, PRESENCE_NODE) == ["for contacts"]
            assert await _read(b, alice.jid, PRESENCE_NODE) == ["for contacts"]
            assert await _refused(c, alice.jid, PRESENCE_NODE) == \
                ("auth", "not-authorized", "presence-subscription-required")
            assert await _read(a2, alice.jid, WHITELIST_NODE) == ["for alice"]
            for other in (b, c):
                assert await _refused(other, alice.jid, WHITELIST_NODE) == \
                    ("cancel", "not-allowed", "closed-node")

            # Notifications: alice's devices get both, bob only the presence
            # node's, carol none. A headline from alice, sent after the
            # publishes, arrives after any notification they caused. (A
            # session whose caps become known after a publish gets the last
            # item then, so bob may see the presence node's item twice.)
            def item_of(node):
                return lambda m: m["pubsub_event"]["items"]["node"] == node
            for name in ("alice", "alice2"):
                await events[name].next(item_of(PRESENCE_NODE))
                await events[name].next(item_of(WHITELIST_NODE))
            await events["bob"].next(item_of(PRESENCE_NODE))
            for name, may_read in (("bob", {PRESENCE_NODE}), ("carol", set())):
                marks = Events(clients[name], "message")
                a.send_message(mto=clients[name].boundjid.full, mbody="mark", mtype="headline")
                await marks.next(lambda m: m["body"] == "mark")
                nodes = {m["pubsub_event"]["items"]["node"] for m in events[name].drain()}
                assert nodes <= may_read, f"{name} was notified of {nodes}"
        finally:
            for cl in clients.values():
                await disconnect(cl)

    run(main())
