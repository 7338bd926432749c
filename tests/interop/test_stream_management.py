"""XEP-0198 stream management: enable with resume, resumption after a dropped
TCP connection, and an expired session falling back to offline delivery."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest

from helpers import (DEFAULT_PLUGINS, STEP_TIMEOUT, Events, Natterd, connect,
                     disconnect, make_client, run, session)

SM_NS = "urn:xmpp:sm:3"
DELAY = "{urn:xmpp:delay}delay"
SM_PLUGINS = DEFAULT_PLUGINS + ("xep_0198",)


@pytest.fixture(scope="module")
def short_resume_server(tmp_path_factory):
    """A second natterd whose detached sessions expire after 2 s."""
    srv = Natterd(tmp_path_factory.mktemp("natterd-short-resume"),
                  c2s_extra="resume_timeout_secs = 2\n")
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, f"natterd exited with {code} after SIGTERM:\n{srv.log_tail()}"


class Recorder:
    """What one SM client received and sent on the wire, in order."""

    def __init__(self, client):
        self.client = client
        self.sm = client.plugin["xep_0198"]
        # (body, inbound h once this message was counted, has delay)
        self.messages: list[tuple[str, int, bool]] = []
        self.raw_out: list[str] = []
        self.acks_sent: list[int] = []
        client.add_event_handler("message", self._on_message)
        orig_send_raw = client.send_raw

        def send_raw(data):
            self.raw_out.append(data if isinstance(data, str) else data.decode())
            return orig_send_raw(data)
        client.send_raw = send_raw
        orig_send_ack = self.sm.send_ack

        def send_ack():
            self.acks_sent.append(self.sm.handled)
            return orig_send_ack()
        self.sm.send_ack = send_ack

    def _on_message(self, msg):
        if msg["body"]:
            # The SM 'in' filter has already counted this stanza.
            self.messages.append((msg["body"], self.sm.handled,
                                  msg.xml.find(DELAY) is not None))

    def bodies(self) -> list[str]:
        return [b for b, _, _ in self.messages]

    async def wait_bodies(self, wanted: list[str], timeout: float = STEP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not set(wanted) <= set(self.bodies()):
            if time.monotonic() > deadline:
                missing = [w for w in wanted if w not in self.bodies()]
                raise AssertionError(f"missing {missing}; got {self.bodies()}")
            await asyncio.sleep(0.05)


def sm_client(account, resource):
    return make_client(account, resource, plugins=SM_PLUGINS)


def cut_tcp(client) -> None:
    """Drops the client's TCP connection abruptly: RST, no </stream:stream>,
    no TLS close_notify, and slixmpp keeps its SM state (no session_end)."""
    sock = client.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.transport.abort()


async def reconnect(client, server: Natterd) -> None:
    """Connects again with the same settings as helpers.connect used."""
    client.connect("127.0.0.1", server.c2s_port)


async def ping_roundtrip(client) -> None:
    await client.plugin["xep_0199"].ping(timeout=STEP_TIMEOUT)


def test_sm_enabled_with_resume(server, accounts):
    alice, bob = accounts("alice", "bob")

    async def main():
        b = sm_client(bob, "b")
        enabled = Events(b, "sm_enabled")
        rec = Recorder(b)
        await connect(b, server)
        try:
            ev = await enabled.next()
            sm_id = ev["id"]
            print(f"<enabled/>: {ev}")
            assert sm_id, f"no id in {ev}"
            assert b.plugin["xep_0198"].sm_id == sm_id
            assert ev.xml.get("resume") in ("true", "1"), f"resume not granted: {ev}"
            assert ev.xml.get("max") == "300", f"max: {ev}"
            assert not b.end_session_on_disconnect

            # client -> server: slixmpp asks for an ack every `window` stanzas.
            acked = Events(b, "stanza_acked")
            b.plugin["xep_0198"].window = 2
            b.plugin["xep_0198"].window_counter = 2
            async with session(alice, server, "a") as a:
                a_msgs = Events(a, "message")
                for i in range(4):
                    b.send_message(mto=f"{alice.jid}/a", mbody=f"b->a {i}", mtype="chat")
                for i in range(4):
                    await a_msgs.next(lambda m, i=i: m["body"] == f"b->a {i}")
                for _ in range(4):  # window 2: natterd answered slixmpp's <r/>s
                    await acked.next()
                # An explicit <r/> gets everything sent so far acknowledged.
                sm = b.plugin["xep_0198"]
                sm.request_ack()
                deadline = time.monotonic() + STEP_TIMEOUT
                while sm.unacked_queue and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert not sm.unacked_queue, f"still unacked: {list(sm.unacked_queue)}"
                assert sm.last_ack == sm.seq, (sm.last_ack, sm.seq)
                print(f"natterd acked h={sm.last_ack} for {sm.seq} stanzas sent")

                # server -> client: natterd sends <r/> after writing; slixmpp answers.
                before = len(rec.acks_sent)
                a.send_message(mto=f"{bob.jid}/b", mbody="a->b", mtype="chat")
                await rec.wait_bodies(["a->b"])
                deadline = time.monotonic() + STEP_TIMEOUT
                while len(rec.acks_sent) == before and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert len(rec.acks_sent) > before, "natterd sent no <r/> after a message"
                assert rec.acks_sent[-1] == b.plugin["xep_0198"].handled
        finally:
            await disconnect(b)

    run(main())


def test_resume_after_dropped_tcp_loses_nothing(server, accounts):
    alice, bob = accounts("alice", "bob")
    first = [f"before cut {i}" for i in range(5)]
    second = [f"while away {i}" for i in range(5)]

    async def main():
        t0 = time.monotonic()
        b = sm_client(bob, "b")
        enabled = Events(b, "sm_enabled")
        rec = Recorder(b)
        await connect(b, server)
        await enabled.next()
        sm = b.plugin["xep_0198"]
        try:
            async with session(alice, server, "a") as a:
                a_errors = Events(a, "message_error")
                for body in first:
                    a.send_message(mto=f"{bob.jid}/b", mbody=body, mtype="chat")
                await rec.wait_bodies(first)
                # Let natterd's <r/> and slixmpp's <a/> go by, as they would.
                await asyncio.sleep(0.3)
                acked_h = rec.acks_sent[-1] if rec.acks_sent else 0
                handled_at_cut = sm.handled
                print(f"before cut: handled={handled_at_cut}, acks sent={rec.acks_sent}")

                disconnected = Events(b, "disconnected")
                session_end = Events(b, "session_end")
                log_from = len(server.log_lines)
                raw_before = len(rec.raw_out)
                cut_tcp(b)
                await disconnected.next()
                await session_end.none(within=0.2)
                assert not any("</stream:stream>" in d for d in rec.raw_out[raw_before:])
                line = await server.wait_log("session kept for resumption", bob.jid,
                                             start=log_from)
                print(f"natterd: {line.strip()}")
                t_cut = time.monotonic()

                for body in second:
                    a.send_message(mto=f"{bob.jid}/b", mbody=body, mtype="chat")
                await ping_roundtrip(a)
                await a_errors.none(within=0.5)

                resumed = Events(b, "session_resumed")
                started = Events(b, "session_start")
                failed = Events(b, "sm_failed")
                await reconnect(b, server)
                ev = await resumed.next()
                print(f"<resumed/> after {time.monotonic() - t_cut:.2f}s detached: {ev}")
                assert ev["previd"] == sm.sm_id

                await rec.wait_bodies(first + second)
                await asyncio.sleep(1.0)  # any duplicates still on their way
                await started.none(within=0.1)
                await failed.none(within=0.1)
                assert b.boundjid.full == f"{bob.jid}/b"

                bodies = rec.bodies()
                dups = {x: bodies.count(x) for x in set(bodies) if bodies.count(x) > 1}
                print(f"received {len(bodies)} bodies, duplicates: {dups or 'none'}")
                print("messages (body, h, delayed):", rec.messages)
                # Duplicates only of messages B received but had not acked.
                for body, count in dups.items():
                    h_first = next(h for bb, h, _ in rec.messages if bb == body)
                    assert h_first > acked_h, (
                        f"{body!r} came {count} times though B acked h={acked_h} "
                        f"and it was stanza {h_first}")
                assert sorted(set(bodies)) == sorted(first + second)

                # The resumed stream works both ways.
                a_msgs = Events(a, "message")
                b.send_message(mto=f"{alice.jid}/a", mbody="back again", mtype="chat")
                got = await a_msgs.next(lambda m: m["body"] == "back again")
                assert got["from"].full == f"{bob.jid}/b"
        finally:
            await disconnect(b)
        print(f"test took {time.monotonic() - t0:.2f}s")

    run(main())


def test_expired_session_falls_back_to_offline(short_resume_server):
    srv = short_resume_server
    alice = srv.add_user("alice-exp")
    bob = srv.add_user("bob-exp")
    first = [f"before cut {i}" for i in range(3)]
    second = [f"while away {i}" for i in range(3)]

    async def main():
        t0 = time.monotonic()
        b = sm_client(bob, "b")
        enabled = Events(b, "sm_enabled")
        rec = Recorder(b)
        await connect(b, srv)
        ev = await enabled.next()
        assert ev.xml.get("max") == "2", f"max: {ev}"
        old_id = ev["id"]
        try:
            async with session(alice, srv, "a") as a:
                a_errors = Events(a, "message_error")
                for body in first:
                    a.send_message(mto=f"{bob.jid}/b", mbody=body, mtype="chat")
                await rec.wait_bodies(first)
                await asyncio.sleep(0.3)
                acked_h = rec.acks_sent[-1] if rec.acks_sent else 0
                print(f"before cut: handled={b.plugin['xep_0198'].handled}, "
                      f"acks sent={rec.acks_sent}")

                disconnected = Events(b, "disconnected")
                log_from = len(srv.log_lines)
                cut_tcp(b)
                await disconnected.next()
                await srv.wait_log("session kept for resumption", bob.jid, start=log_from)
                t_cut = time.monotonic()

                for body in second:
                    a.send_message(mto=f"{bob.jid}/b", mbody=body, mtype="chat")
                await ping_roundtrip(a)
                await a_errors.none(within=0.5)

                await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t_cut)))
                expired = [ln.strip() for ln in srv.log_lines[log_from:]
                           if "resumption timed out" in ln]
                print(f"natterd after 3 s: {expired or 'no timeout logged'}")

                resumed = Events(b, "session_resumed")
                started = Events(b, "session_start")
                failed = Events(b, "sm_failed")
                enabled2 = Events(b, "sm_enabled")
                h_of = {body: h for body, h, _ in rec.messages}
                rec.messages.clear()
                await reconnect(b, srv)
                fail = await failed.next()
                print(f"resume answered with: {fail}")
                await started.next()
                b.send_presence()  # initial presence -> offline flush
                ev2 = await enabled2.next()
                assert ev2["id"] and ev2["id"] != old_id

                await rec.wait_bodies(second)
                await asyncio.sleep(1.0)
                await resumed.none(within=0.1)
                print("after new login (body, h, delayed):", rec.messages)
                for body, _, delayed in rec.messages:
                    if body in second:
                        assert delayed, f"{body!r} redelivered without XEP-0203 delay"
                bodies = rec.bodies()
                assert sorted(b_ for b_ in bodies if b_ in second) == sorted(second), bodies
                # Pre-cut messages may come again only if B had not acked them.
                for body in set(bodies) & set(first):
                    print(f"pre-cut {body!r} (stanza {h_of[body]}) redelivered; "
                          f"B had acked h={acked_h}")
                    assert h_of[body] > acked_h, (
                        f"{body!r} redelivered though B acked h={acked_h}")
        finally:
            await disconnect(b)
        print(f"test took {time.monotonic() - t0:.2f}s")

    run(main())


def test_resume_while_old_connection_still_open(server, accounts):
    """The old TCP connection silently dies (natterd does not notice): B resumes
    on a new one, and what natterd wrote into the dead one comes again."""
    alice, bob = accounts("alice", "bob")
    first = [f"before switch {i}" for i in range(3)]
    second = [f"into dead link {i}" for i in range(3)]

    async def main():
        b = sm_client(bob, "b")
        enabled = Events(b, "sm_enabled")
        rec = Recorder(b)
        await connect(b, server)
        await enabled.next()
        sm = b.plugin["xep_0198"]
        zombie = None
        try:
            async with session(alice, server, "a") as a:
                for body in first:
                    a.send_message(mto=f"{bob.jid}/b", mbody=body, mtype="chat")
                await rec.wait_bodies(first)
                await asyncio.sleep(0.3)

                # Keep the socket open behind slixmpp's back: no FIN, no RST.
                disconnected = Events(b, "disconnected")
                zombie = b.transport.get_extra_info("socket").dup()
                b.transport.abort()
                await disconnected.next()

                log_from = len(server.log_lines)
                for body in second:
                    a.send_message(mto=f"{bob.jid}/b", mbody=body, mtype="chat")
                await ping_roundtrip(a)
                assert not any("session kept for resumption" in ln
                               for ln in server.log_lines[log_from:]), "natterd noticed"

                resumed = Events(b, "session_resumed")
                started = Events(b, "session_start")
                await reconnect(b, server)
                ev = await resumed.next()
                print(f"<resumed/> while old connection open: {ev}")
                await rec.wait_bodies(first + second)
                await asyncio.sleep(1.0)
                await started.none(within=0.1)
                bodies = rec.bodies()
                dups = {x: bodies.count(x) for x in set(bodies) if bodies.count(x) > 1}
                print(f"received {len(bodies)} bodies, duplicates: {dups or 'none'}")
                assert not dups, f"duplicates after resume with h={sm.handled}: {dups}"
                assert sorted(bodies) == sorted(first + second)
                # The old connection was closed by natterd.
                zombie.settimeout(5)
                rest = b""
                try:
                    while chunk := zombie.recv(65536):
                        rest += chunk
                except (ConnectionResetError, TimeoutError) as e:
                    print(f"old connection: {e!r}")
                print(f"old connection: {len(rest)} bytes (TLS) then closed")

                a_msgs = Events(a, "message")
                b.send_message(mto=f"{alice.jid}/a", mbody="new link", mtype="chat")
                await a_msgs.next(lambda m: m["body"] == "new link")
        finally:
            if zombie is not None:
                zombie.close()
            await disconnect(b)

    run(main())
