"""Message archive (XEP-0313) with slixmpp's xep_0313 across several devices of
one account: a device offline during a conversation catches up with one
after-id query, nothing missing and nothing twice; deleting the account
leaves no archive rows in the store; retention deletes old messages."""

import sqlite3
import time

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from helpers import (DEFAULT_PLUGINS, Events, Natterd, connect, disconnect, make_client, run,
                     session)

MAM = "urn:xmpp:mam:2"
SID = "{urn:xmpp:sid:0}stanza-id"
PLUGINS = DEFAULT_PLUGINS + ("xep_0059", "xep_0297", "xep_0313")


def _stanza_id(msg, by):
    for e in msg.xml.findall(SID):
        if e.get("by") == by:
            return e.get("id")
    raise AssertionError(f"no stanza-id by {by} in {msg}")


async def _after_id_query(client, after_id):
    """One query for everything after ``after_id`` (one page of up to 250):
    [(archive id, from, body)] in archive order, and the fin element."""
    results = []
    client.register_handler(Callback(
        "mam-results",
        MatchXPath(f"{{jabber:client}}message/{{{MAM}}}result"),
        lambda m: results.append(m)))
    try:
        iq = client.make_iq_set()
        iq["mam"]["queryid"] = "catch-up"
        iq["mam"]["after_id"] = after_id
        iq["mam"]["rsm"]["max"] = "250"
        answer = await iq.send(timeout=10)
    finally:
        client.remove_handler("mam-results")
    fin = answer["mam_fin"]
    rows = []
    for m in results:
        res = m["mam_result"]
        assert res["queryid"] == "catch-up", str(m)
        inner = res["forwarded"]["stanza"]
        assert res["forwarded"]["delay"]["stamp"] is not None, str(m)
        rows.append((res["id"], inner["from"].bare, inner["body"]))
    return rows, fin


def test_offline_device_catches_up_with_one_after_id_query(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "A", plugins=PLUGINS) as a, \
                session(bob, server, "phone", plugins=PLUGINS) as b:
            dev_b = make_client(alice, "B", plugins=PLUGINS)
            b_msgs = Events(dev_b, "message")
            await connect(dev_b, server)
            # A round trip after its initial presence: natterd handles a
            # session's stanzas in order, so B is available before bob writes.
            await dev_b.get_roster(timeout=10)
            a_msgs = Events(a, "message")
            bob_msgs = Events(b, "message")
            # Both devices of alice are online: bob's message to her bare JID
            # reaches both, with the stanza-id of alice's archive.
            b.send_message(mto=alice.jid, mbody="before 0", mtype="chat")
            seen = await b_msgs.next(lambda m: m["body"] == "before 0")
            await a_msgs.next(lambda m: m["body"] == "before 0")
            last_seen = _stanza_id(seen, alice.jid)
            await disconnect(dev_b)

            # Device B is offline while A and bob talk, both ways.
            sent = []
            for i in range(6):
                if i % 2 == 0:
                    body = f"alice says {i}"
                    a.send_message(mto=bob.jid, mbody=body, mtype="chat")
                    await bob_msgs.next(lambda m, body=body: m["body"] == body)
                    sent.append((alice.jid, body))
                else:
                    body = f"bob says {i}"
                    b.send_message(mto=alice.jid, mbody=body, mtype="chat")
                    await a_msgs.next(lambda m, body=body: m["body"] == body)
                    sent.append((bob.jid, body))

            # Device B returns and asks for everything after what it saw.
            dev_b2 = make_client(alice, "B", plugins=PLUGINS)
            await connect(dev_b2, server)
            try:
                rows, fin = await _after_id_query(dev_b2, last_seen)
            finally:
                await disconnect(dev_b2)
            assert [(f, body) for _, f, body in rows] == sent, rows
            ids = [i for i, _, _ in rows]
            assert len(set(ids)) == len(ids), f"an id twice: {ids}"
            assert last_seen not in ids
            assert fin["complete"] in (True, "true"), str(fin)
            assert fin["rsm"]["last"] == ids[-1], str(fin)

            # slixmpp's own retrieve (RSM paging by its iterator) sees the
            # same archive on device A, starting with the message before.
            got = []
            async for m in a.plugin["xep_0313"].iterate(rsm={"max": 3}):
                got.append(m["mam_result"]["forwarded"]["stanza"]["body"])
            assert got == ["before 0"] + [body for _, body in sent], got

    run(main())


def test_account_deletion_leaves_no_archive_rows(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        async with session(alice, server, "A", plugins=PLUGINS) as a, \
                session(bob, server, "phone", plugins=PLUGINS) as b:
            bob_msgs = Events(b, "message")
            for i in range(3):
                a.send_message(mto=bob.jid, mbody=f"m{i}", mtype="chat")
            await bob_msgs.next(lambda m: m["body"] == "m2")
            iq = a.make_iq_set()
            iq["mam"]["queryid"] = "all"
            answer = await iq.send(timeout=10)
            assert answer["mam_fin"]["rsm"]["last"], str(answer)

    run(main())
    db = server.data_dir / "data" / "natter.sqlite3"

    def archive_rows(owner):
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return c.execute("SELECT COUNT(*) FROM archive WHERE owner = ?",
                             (owner,)).fetchone()[0]

    assert archive_rows(alice.jid) == 3
    assert archive_rows(bob.jid) == 3
    server.cli("user", "del", alice.jid)
    assert archive_rows(alice.jid) == 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        for table in ("archive", "archive_prefs", "offline", "roster", "kv"):
            n = c.execute(f"SELECT COUNT(*) FROM {table} WHERE owner = ?",
                          (alice.jid,)).fetchone()[0]
            assert n == 0, f"{n} rows of {alice.jid} left in {table}"
    assert archive_rows(bob.jid) == 3, "bob's copies are bob's"


def test_retention_deletes_old_messages(tmp_path):
    """A natterd started on a store holding archived messages older than
    the default 30 days of retention deletes them in the background;
    slixmpp's query then sees only the recent one."""
    srv = Natterd(tmp_path / "retention")
    srv.write_config()
    alice = srv.add_user("alice")  # creates and migrates the store
    db = srv.data_dir / "data" / "natter.sqlite3"
    now_ms = int(time.time() * 1000)
    day = 86_400_000
    with sqlite3.connect(db) as c:
        for days, ident in ((40, "old-1"), (31, "old-2"), (1, "recent")):
            c.execute(
                "INSERT INTO archive (owner, id, with_bare, with_res, sender, origin_id,"
                " stamp_ms, stanza) VALUES (?, ?, 'bob@localhost', 'r', 'bob@localhost/r',"
                " '', ?, ?)",
                (alice.jid, ident, now_ms - days * day,
                 f"<message xmlns='jabber:client' from='bob@localhost/r' to='{alice.jid}'"
                 f" type='chat'><body>{ident}</body></message>".encode()))
    srv.start()
    try:
        async def main():
            await srv.wait_log("archive: expired old messages", "deleted=2")
            async with session(alice, srv, "A", plugins=PLUGINS) as a:
                iq = a.make_iq_set()
                iq["mam"]["queryid"] = "all"
                got = []
                a.register_handler(Callback(
                    "mam-all", MatchXPath(f"{{jabber:client}}message/{{{MAM}}}result"),
                    lambda m: got.append(m["mam_result"]["forwarded"]["stanza"]["body"])))
                await iq.send(timeout=10)
                assert got == ["recent"], got

        run(main())
    finally:
        assert srv.stop() == 0, srv.log_tail()
