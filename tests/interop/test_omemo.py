"""OMEMO end to end (XEP-0384) through natterd with slixmpp-omemo: the server
is a working home for OMEMO clients and never sees a plaintext.

Alice and bob, contacts, each on two devices (four clients with their own
key storage). Every device publishes its device list and key bundle in its
account's PEP service (XEP-0163); the others learn the device lists from PEP
notifications alone (they are contacts, so slixmpp-omemo does not fetch
them) and fetch the bundles with pubsub item requests. (slixmpp announces
XEP-0115 caps whose ver does not hash to its disco#info answer when, as
here, the OMEMO plugin registers its +notify interests before binding:
natterd uses such an answer for that session only.) Messages go both
ways; every device of the recipient and the sender's other device (a
XEP-0280 carbon) decrypt each. One of bob's devices is offline while alice
writes, then both are, and the first to come back catches up from the
offline queue (XEP-0160) and the archive (XEP-0313) and decrypts all.

Then every file under the server's data directory — the database, its WAL,
the log — and every column of every table are searched for each plaintext
(random per message): none may be there, while each message's ciphertext
must be (so the search is not vacuous).

Run once per OMEMO generation: ``urn:xmpp:omemo:2`` and the older
``eu.siacs.conversations.axolotl`` most deployed clients speak.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from helpers import STEP_TIMEOUT, Natterd, connect, disconnect, run, session, subscribe
from omemo_client import (V1, V2, decrypt, encrypt, known_devices, make_omemo_client,
                          own_device_id, payload_of, wait_until)

MAM = "urn:xmpp:mam:2"
SID = "{urn:xmpp:sid:0}stanza-id"


class Device:
    """One OMEMO client; decrypts, in arrival order, every OMEMO message it
    gets directly, in a carbon, from the offline queue or from the archive."""

    def __init__(self, account, resource, storage_dir: Path, server):
        self.account, self.resource = account, resource
        self.storage_dir, self.server = storage_dir, server
        self.client = None
        self.id = None
        #: plaintext -> (generation, sending device id, how it came, stanza-id by our account)
        self.got: dict[str, tuple[str, int, str, str | None]] = {}
        self.inbox: asyncio.Queue = asyncio.Queue()

    async def start(self):
        c = self.client = make_omemo_client(self.account, self.resource, self.storage_dir)
        c.add_event_handler("message", lambda m: self.inbox.put_nowait(("direct", m, m)))
        c.add_event_handler("carbon_sent",
                            lambda m: self.inbox.put_nowait(("carbon", m["carbon_sent"], m)))
        c.add_event_handler("carbon_received",
                            lambda m: self.inbox.put_nowait(("carbon", m["carbon_received"], m)))
        # Roster and carbons first, then the initial presence (with caps:
        # PEP learns from it that this device wants device-list notifications).
        await connect(c, self.server, send_presence=False)
        await c.get_roster(timeout=STEP_TIMEOUT)
        await c.plugin["xep_0280"].enable(timeout=STEP_TIMEOUT)
        c.send_presence()
        self.id = await asyncio.wait_for(own_device_id(c), STEP_TIMEOUT)

    async def stop(self):
        await disconnect(self.client)

    async def _take(self, how: str, inner, outer) -> None:
        if inner.xml.find(f"{{{V2}}}encrypted/{{{V2}}}payload") is None and \
                inner.xml.find(f"{{{V1}}}encrypted/{{{V1}}}payload") is None:
            return  # not OMEMO, or an empty OMEMO message that only moves a ratchet
        if inner["from"].full == self.client.boundjid.full:
            return  # our own message: never encrypted for the sending device
        text, generation, sender = await decrypt(self.client, inner)
        if how == "direct" and outer.xml.find("{urn:xmpp:delay}delay") is not None:
            how = "offline"
        sid = next((e.get("id") for e in outer.xml.findall(SID)
                    if e.get("by") == self.account.jid), None)
        assert text not in self.got, f"{self.resource} decrypted {text!r} twice"
        self.got[text] = (generation, sender, how, sid)

    async def expect(self, text: str, timeout: float = STEP_TIMEOUT):
        """Waits until ``text`` was decrypted; returns (generation, sender, how, sid)."""
        deadline = time.monotonic() + timeout
        while text not in self.got:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.resource} did not decrypt {text!r}; got {self.got}")
            try:
                how, inner, outer = await asyncio.wait_for(self.inbox.get(), left)
            except asyncio.TimeoutError:
                continue
            await self._take(how, inner, outer)
        return self.got[text]

    async def catch_up(self, after: str) -> int:
        """Pages through the account's archive after stanza-id ``after`` and
        decrypts what it had not got yet. Returns the number of results."""
        results: list = []
        self.client.register_handler(Callback(
            "omemo-mam", MatchXPath(f"{{jabber:client}}message/{{{MAM}}}result"),
            results.append))
        try:
            iq = self.client.make_iq_set()
            iq["mam"]["queryid"] = "catch-up"
            iq["mam"]["rsm"]["after"] = after
            iq["mam"]["rsm"]["max"] = "50"
            fin = (await iq.send(timeout=STEP_TIMEOUT))["mam_fin"]
        finally:
            self.client.remove_handler("omemo-mam")
        assert fin["complete"] in (True, "true"), str(fin)
        seen = {v[3] for v in self.got.values()}
        for m in results:
            res = m["mam_result"]
            if res["id"] not in seen:
                await self._take("archive", res["forwarded"]["stanza"], res["forwarded"]["stanza"])
        return len(results)


async def _send(sender: Device, to: str, text: str, generation: str) -> str:
    msg = await encrypt(sender.client, to, text, generation)
    assert text not in str(msg), "plaintext in the stanza on the wire"
    msg.send()
    return payload_of(msg)


async def _archived(client, msg_payload: str, with_jid: str):
    """Waits until the client's own archive holds the message with this payload."""
    async def look():
        found = []
        client.register_handler(Callback(
            "omemo-look", MatchXPath(f"{{jabber:client}}message/{{{MAM}}}result"),
            found.append))
        try:
            iq = client.make_iq_set()
            iq["mam"]["queryid"] = "look"
            iq["mam"]["with"] = with_jid
            iq["mam"]["rsm"]["before"] = True
            iq["mam"]["rsm"]["max"] = "5"
            await iq.send(timeout=STEP_TIMEOUT)
        finally:
            client.remove_handler("omemo-look")
        return any(msg_payload in str(m) for m in found)
    await wait_until(look, "the message in the sender's archive")


def _data_files(server) -> list[Path]:
    return [p for p in Path(server.data_dir).rglob("*") if p.is_file()]


def _table_dump(db: Path) -> str:
    """Every value of every column of every table (overflow pages joined)."""
    out = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            for row in c.execute(f'SELECT * FROM "{t}"'):
                for v in row:
                    if isinstance(v, bytes):
                        v = v.decode("utf-8", "replace")
                    out.append(str(v))
    return "\n".join(out)


def _assert_server_never_saw(server, plaintexts: list[str], payloads: list[str]) -> None:
    files = _data_files(server)
    raw = {p: p.read_bytes() for p in files}
    dbs = [p for p, b in raw.items() if b.startswith(b"SQLite format 3\x00")]
    assert dbs, f"no database among {files}"
    dumps = {db: _table_dump(db) for db in dbs}
    for text in plaintexts:
        for p, b in raw.items():
            assert text.encode() not in b, f"plaintext {text!r} in {p}"
        for db, dump in dumps.items():
            assert text not in dump, f"plaintext {text!r} in a table of {db}"
    for payload in payloads:
        assert any(payload in d for d in dumps.values()), \
            f"ciphertext {payload[:20]}… not stored: the search above proves nothing"


def _natterd_rows(server, table: str, owner: str) -> list[str]:
    """The stored stanzas of one account in natterd's ``archive`` or ``offline``."""
    db = Path(server.data_dir) / "data" / "natter.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return [bytes(r[0]).decode() for r in c.execute(
            f"SELECT stanza FROM {table} WHERE owner = ?", (owner,))]


@pytest.mark.parametrize("generation", [V2, V1], ids=["omemo2", "siacs"])
def test_omemo_conversation_on_four_devices_server_sees_no_plaintext(
        server, accounts, tmp_path, generation):
    alice, bob = accounts("alice", "bob")
    tag = "o2" if generation == V2 else "o1"
    plaintexts: list[str] = []
    payloads: list[str] = []

    def fresh(label: str) -> str:
        text = f"{tag}-{label}-{secrets.token_hex(12)}"
        plaintexts.append(text)
        return text

    async def main():
        # Contacts first (both directions), as any two users who chat.
        async with session(alice, server, "setup") as a, session(bob, server, "setup") as b:
            # Interested resources (RFC 6121 §2.1.6) get the subscription flow.
            await a.get_roster(timeout=STEP_TIMEOUT)
            await b.get_roster(timeout=STEP_TIMEOUT)
            await subscribe(a, b)
            await subscribe(b, a)

        a1, a2 = (Device(alice, r, tmp_path / "keys", server) for r in ("a1", "a2"))
        b1, b2 = (Device(bob, r, tmp_path / "keys", server) for r in ("b1", "b2"))
        devices = (a1, a2, b1, b2)
        for d in devices:
            await d.start()
        try:
            await _conversation(a1, a2, b1, b2)
        finally:
            for d in devices:
                if d.client.transport is not None:
                    await d.stop()

    async def _conversation(a1, a2, b1, b2):
        devices = (a1, a2, b1, b2)
        ids = {alice.jid: {a1.id, a2.id}, bob.jid: {b1.id, b2.id}}
        # Every device learns both accounts' device lists through PEP (its
        # own account's included), each device with both OMEMO generations.
        for d in devices:
            for owner, want in ids.items():
                async def check(d=d, owner=owner, want=want):
                    known = await known_devices(d.client, owner)
                    return set(known) == want and \
                        all({V1, V2} <= ns for ns in known.values())
                await wait_until(check, f"{d.resource} knows {owner}'s devices {want}")
        # The published nodes themselves, read with plain pubsub requests.
        items = await a1.client.plugin["xep_0060"].get_items(
            bob.jid, "urn:xmpp:omemo:2:devices", timeout=STEP_TIMEOUT)
        listed = {int(d.get("id")) for d in items.xml.iter(f"{{{V2}}}device")}
        assert listed == ids[bob.jid], items

        # 1. alice (a1) writes: both of bob's devices and a2 (a carbon) decrypt.
        t1 = fresh("a1-to-bob")
        payloads.append(await _send(a1, bob.jid, t1, generation))
        for d, how in ((b1, "direct"), (b2, "direct"), (a2, "carbon")):
            got = await d.expect(t1)
            assert got[:3] == (generation, a1.id, how), (d.resource, got)
        b2_last_seen = b2.got[t1][3]
        assert b2_last_seen, "a delivered message carries its stanza-id"

        # 2. bob answers from b2: both of alice's devices and b1 decrypt.
        t2 = fresh("b2-to-alice")
        payloads.append(await _send(b2, alice.jid, t2, generation))
        for d, how in ((a1, "direct"), (a2, "direct"), (b1, "carbon")):
            got = await d.expect(t2)
            assert got[:3] == (generation, b2.id, how), (d.resource, got)

        # 3. b2 goes offline; alice writes from a2 (b1 online gets it).
        await b2.stop()
        t3 = fresh("a2-to-bob-b2-offline")
        payloads.append(await _send(a2, bob.jid, t3, generation))
        for d, how in ((b1, "direct"), (a1, "carbon")):
            got = await d.expect(t3)
            assert got[:3] == (generation, a2.id, how), (d.resource, got)

        # 4. b1 goes offline too; alice writes: the message waits in the store.
        await b1.stop()
        t4 = fresh("a1-to-bob-all-offline")
        p4 = await _send(a1, bob.jid, t4, generation)
        payloads.append(p4)
        got = await a2.expect(t4)
        assert got[:3] == (generation, a1.id, "carbon"), got
        await _archived(a1.client, p4, bob.jid)

        # 5. b2 comes back (same keys): t4 from the offline queue, t3 from
        #    the archive, after the last message it saw; both decrypt.
        b2r = Device(bob, "b2", b2.storage_dir, server)
        await b2r.start()
        assert b2r.id == b2.id, "the same OMEMO device after a new login"
        got = await b2r.expect(t4)
        assert got[:3] == (generation, a1.id, "offline"), got
        n = await b2r.catch_up(b2_last_seen)
        assert n >= 3, f"archive after t1 should hold t2, t3, t4: {n} results"
        got = b2r.got.get(t3)
        assert got and got[:3] == (generation, a2.id, "archive"), b2r.got

        # 6. The ratchets carry on: b2 answers, alice's devices decrypt.
        t5 = fresh("b2-back-to-alice")
        payloads.append(await _send(b2r, alice.jid, t5, generation))
        for d in (a1, a2):
            got = await d.expect(t5)
            assert got[:3] == (generation, b2.id, "direct"), (d.resource, got)
        await b2r.stop()

    run(main(), timeout=55)

    # The server held every ciphertext and no plaintext, anywhere.
    _assert_server_never_saw(server, plaintexts, payloads)
    if isinstance(server, Natterd):
        # natterd keeps the messages as they were delivered: the <encrypted/>
        # element in the archives (five messages with a payload in bob's;
        # empty OMEMO messages that only move a ratchet come on top)...
        rows = _natterd_rows(server, "archive", bob.jid)
        encrypted = [r for r in rows if "payload>" in r and (
            f"<encrypted xmlns='{generation}'" in r or f'<encrypted xmlns="{generation}"' in r)]
        assert len(encrypted) == 5, rows
        assert all(p in "".join(encrypted) for p in payloads)
        # ...and nothing in the offline queue once a device of bob had t4.
        deadline = time.monotonic() + STEP_TIMEOUT
        while _natterd_rows(server, "offline", bob.jid):
            assert time.monotonic() < deadline, _natterd_rows(server, "offline", bob.jid)
            time.sleep(0.1)
