"""Authentication: SCRAM over STARTTLS, direct TLS (XEP-0368), wrong password."""

import ssl

import pytest

from helpers import Events, connect, disconnect, make_client, run


def _tls_version(client) -> str:
    sock = client.socket
    assert isinstance(sock, (ssl.SSLObject, ssl.SSLSocket)), f"stream is not TLS: {sock!r}"
    return sock.version()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_over_starttls(server, accounts, mech):
    (alice,) = accounts("alice")

    async def main():
        client = make_client(alice, "login", mechs=[mech])
        await connect(client, server)
        try:
            assert client.used_mech == mech
            assert _tls_version(client) in ("TLSv1.2", "TLSv1.3")
            assert client.boundjid.bare == alice.jid
            assert client.boundjid.resource == "login"
        finally:
            await disconnect(client)

    run(main())


def test_default_mechanism_and_plus(server, accounts):
    """Unrestricted, slixmpp picks the strongest mechanism it can complete.

    slixmpp can only produce tls-unique (TLS <= 1.2) or tls-exporter channel
    binding, and tls-exporter only where Python's ssl module exposes it (not in
    Python 3.11-3.13). So -PLUS is expected only when ssl offers tls-exporter.
    """
    (alice,) = accounts("alice")

    async def main():
        client = make_client(alice, "default")
        await connect(client, server)
        try:
            offered = client.plugin["feature_mechanisms"].mech_list
            version = _tls_version(client)
            print(f"offered={sorted(offered)} used={client.used_mech} tls={version}")
            assert {"SCRAM-SHA-1", "SCRAM-SHA-256"} <= offered
            assert "PLAIN" in offered  # over TLS
            if version == "TLSv1.3" and "tls-exporter" in ssl.CHANNEL_BINDING_TYPES:
                assert client.used_mech == "SCRAM-SHA-256-PLUS"
            else:
                assert client.used_mech == "SCRAM-SHA-256"
        finally:
            await disconnect(client)

    run(main())


def test_scram_plus_offer_on_tls12(server, accounts):
    """On TLS 1.2 slixmpp sends SCRAM-*-PLUS with p=tls-unique if -PLUS is offered.

    natterd supports tls-exporter (TLS 1.3 only) and tls-server-end-point, not
    tls-unique; RFC 5802 §6 says the server then fails the exchange, and the
    client may fall back. The login must still end in a session.
    """
    (alice,) = accounts("alice")

    async def main():
        client = make_client(alice, "tls12", tls_max=ssl.TLSVersion.TLSv1_2)
        fails = Events(client, "failed_auth")
        await connect(client, server, timeout=20)
        try:
            assert _tls_version(client) == "TLSv1.2"
            offered = client.plugin["feature_mechanisms"].mech_list
            failed = [f["condition"] for f in fails.drain()]
            print(f"offered={sorted(offered)} used={client.used_mech} failed_first={failed}")
            assert not client.used_mech.endswith("-PLUS")
        finally:
            await disconnect(client)

    run(main())


def test_direct_tls(server, accounts):
    (alice,) = accounts("alice")

    async def main():
        client = make_client(alice, "direct")
        await connect(client, server, direct_tls=True)
        try:
            assert _tls_version(client) in ("TLSv1.2", "TLSv1.3")
            assert client.used_mech.startswith("SCRAM-SHA-")
            # The stream works: the server answers a ping.
            await client.plugin["xep_0199"].ping(timeout=10)
        finally:
            await disconnect(client)

    run(main())


def test_wrong_password(server, accounts):
    (alice,) = accounts("alice")
    alice.password = "not-" + alice.password

    async def main():
        client = make_client(alice, "wrong")
        failed = Events(client, "failed_auth")
        all_failed = Events(client, "failed_all_auth")
        started = Events(client, "session_start")
        client.enable_direct_tls = False
        client.connect("127.0.0.1", server.c2s_port)
        try:
            first = await failed.next()
            assert first["condition"] == "not-authorized", str(first)
            # slixmpp then retries with its other mechanisms; all must fail.
            await all_failed.next(timeout=30)
            for f in failed.drain():
                assert f["condition"] == "not-authorized", str(f)
            await started.none(within=0.5)
            assert not client.authenticated
        finally:
            await disconnect(client)

    run(main())
