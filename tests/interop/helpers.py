"""Helpers for the slixmpp interop tests: a natterd process and slixmpp clients.

Each test is a plain (sync) pytest function that calls ``run(coro)``: the
coroutine creates its slixmpp clients inside a fresh event loop, so no
pytest-asyncio is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import slixmpp

log = logging.getLogger("interop")

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "localhost"
# How long one step (connect, one awaited stanza or event) may take.
STEP_TIMEOUT = 10.0


def natterd_bin() -> str:
    """The natterd binary: $NATTERD_BIN, else the workspace's debug build."""
    env = os.environ.get("NATTERD_BIN")
    if env:
        return env
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target) / "debug" / "natterd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Account:
    jid: str
    password: str

    @property
    def user(self) -> str:
        return self.jid.split("@", 1)[0]


@dataclass
class Natterd:
    """One natterd process with its own data dir and ports."""

    data_dir: Path
    c2s_port: int = field(default_factory=free_port)
    c2s_tls_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    #: Extra lines appended to the ``[c2s]`` table, e.g. ``"resume_timeout_secs = 2\n"``.
    c2s_extra: str = ""
    proc: subprocess.Popen | None = None
    log_lines: list[str] = field(default_factory=list)
    _serving: threading.Event = field(default_factory=threading.Event)

    @property
    def config_path(self) -> Path:
        return self.data_dir / "natterd.toml"

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f'domain = "{DOMAIN}"\n'
            f'data_dir = "{self.data_dir / "data"}"\n'
            'log_level = "debug"\n'
            "[listen]\n"
            f'c2s = "127.0.0.1:{self.c2s_port}"\n'
            f'c2s_tls = "127.0.0.1:{self.c2s_tls_port}"\n'
            f'http = "127.0.0.1:{self.http_port}"\n'
            f'admin = "127.0.0.1:{self.admin_port}"\n'
            # WebSocket clients on the http listener count as behind a
            # TLS-terminating proxy, as in a deployment behind nginx.
            "[http]\n"
            "behind_tls_proxy = true\n"
            "[c2s]\n"
            "require_tls = true\n"
            + self.c2s_extra
        )

    def cli(self, *args: str, stdin: str | None = None) -> str:
        res = subprocess.run(
            [natterd_bin(), "--config", str(self.config_path), *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )
        if res.returncode != 0:
            raise RuntimeError(f"natterd {' '.join(args)} failed ({res.returncode}): "
                               f"{res.stdout}{res.stderr}")
        return res.stdout

    def add_user(self, user: str, password: str | None = None) -> Account:
        password = password or f"pw-{user}-secret"
        jid = f"{user}@{DOMAIN}"
        self.cli("user", "add", jid, "--password", password)
        return Account(jid, password)

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        self.proc = subprocess.Popen(
            [natterd_bin(), "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors="replace",
        )
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._serving.wait(timeout):
            self.kill()
            raise RuntimeError("natterd did not log 'natterd serving' in time:\n"
                               + self.log_tail())
        if self.proc.poll() is not None:
            raise RuntimeError(f"natterd exited with {self.proc.returncode}:\n" + self.log_tail())

    def _pump(self) -> None:
        assert self.proc and self.proc.stderr
        with (self.data_dir / "natterd.log").open("w") as out:
            for line in self.proc.stderr:
                self.log_lines.append(line)
                out.write(line)
                out.flush()
                if "natterd serving" in line:
                    self._serving.set()
        self._serving.set()  # EOF: let start() notice the exit

    async def wait_log(self, *needles: str, timeout: float = STEP_TIMEOUT,
                       start: int = 0) -> str:
        """Waits for a log line (from index ``start``) containing every needle."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines[start:]:
                if all(n in line for n in needles):
                    return line
            if time.monotonic() > deadline:
                raise TimeoutError(f"no natterd log line with {needles} within {timeout}s:\n"
                                   + self.log_tail())
            await asyncio.sleep(0.05)

    def log_tail(self, n: int = 40) -> str:
        return "".join(self.log_lines[-n:])

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait; SIGKILL if it hangs. Returns the exit code."""
        assert self.proc
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"natterd ignored SIGTERM for {timeout}s; killed")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# --------------------------------------------------------------------------
# slixmpp clients

DEFAULT_PLUGINS = ("xep_0030", "xep_0199", "xep_0184", "xep_0092", "xep_0054",
                   "xep_0012", "xep_0203", "xep_0359", "xep_0202")


def make_client(account: Account, resource: str | None = None, *,
                mechs: list[str] | None = None, tls_max: ssl.TLSVersion | None = None,
                plugins: tuple[str, ...] = DEFAULT_PLUGINS,
                auto_receipts: bool = False) -> slixmpp.ClientXMPP:
    """A ClientXMPP that trusts natterd's self-signed certificate.

    ``mechs`` restricts SASL to these mechanisms (slixmpp's ``use_mechs``).
    """
    jid = account.jid + (f"/{resource}" if resource else "")
    plugin_config = {}
    if mechs is not None:
        plugin_config["feature_mechanisms"] = {"use_mechs": list(mechs)}
    client = slixmpp.ClientXMPP(jid, account.password, plugin_config=plugin_config)
    # natterd's certificate is self-signed: do not verify it (slixmpp >= 1.8
    # exposes the SSLContext it will use as ``ssl_context``).
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    if tls_max is not None:
        client.ssl_context.maximum_version = tls_max
    for p in plugins:
        client.register_plugin(p)
    if "xep_0184" in plugins:
        client.plugin["xep_0184"].auto_ack = auto_receipts
        client.plugin["xep_0184"].auto_request = False
    # Subscriptions are handled explicitly by the tests.
    client.roster.auto_authorize = None
    client.roster.auto_subscribe = False
    # Record which SASL mechanism was used.
    client.add_event_handler(
        "auth_success",
        lambda _s: setattr(client, "used_mech", client.plugin["feature_mechanisms"].mech.name))
    return client


class Events:
    """Queues every occurrence of one slixmpp event, for awaiting in order."""

    def __init__(self, client: slixmpp.ClientXMPP, event: str):
        self.event = event
        self.queue: asyncio.Queue = asyncio.Queue()
        client.add_event_handler(event, self.queue.put_nowait)

    async def next(self, pred: Callable[[Any], bool] | None = None,
                   timeout: float = STEP_TIMEOUT) -> Any:
        """The next occurrence matching ``pred`` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching {self.event!r} event within {timeout}s")
            try:
                item = await asyncio.wait_for(self.queue.get(), left)
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"no matching {self.event!r} event within {timeout}s") from None
            if pred is None or pred(item):
                return item

    async def none(self, pred: Callable[[Any], bool] | None = None,
                   within: float = 2.0) -> None:
        """Asserts no matching occurrence arrives within ``within`` seconds."""
        try:
            item = await self.next(pred, timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {self.event!r}: {item}")

    def drain(self) -> list[Any]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


async def connect(client: slixmpp.ClientXMPP, server: Natterd, *, direct_tls: bool = False,
                  send_presence: bool = True, timeout: float = STEP_TIMEOUT) -> None:
    """Connects (STARTTLS on c2s, or direct TLS on c2s_tls) until session_start.

    Raises with the failure events seen if the session does not start.
    """
    started = Events(client, "session_start")
    failures: list[str] = []
    for ev in ("failed_auth", "failed_all_auth", "connection_failed", "ssl_invalid_chain",
               "stream_error", "disconnected"):
        client.add_event_handler(ev, lambda arg, ev=ev: failures.append(f"{ev}: {arg}"))
    # slixmpp tries direct TLS and then STARTTLS on a custom address; allow only
    # the one this port speaks.
    client.enable_direct_tls = direct_tls
    client.enable_starttls = not direct_tls
    client.enable_plaintext = False
    port = server.c2s_tls_port if direct_tls else server.c2s_port
    client.connect("127.0.0.1", port)
    try:
        await started.next(timeout=timeout)
    except TimeoutError:
        client.cancel_connection_attempt()
        client.abort()
        raise AssertionError(f"{client.requested_jid}: no session_start; saw {failures}\n"
                             f"natterd log tail:\n{server.log_tail()}") from None
    if send_presence:
        client.send_presence()


async def disconnect(client: slixmpp.ClientXMPP, timeout: float = 5.0) -> None:
    client.cancel_connection_attempt()
    if client.transport is None:
        return
    fut = client.disconnect()
    try:
        await asyncio.wait_for(asyncio.shield(fut), timeout)
    except asyncio.TimeoutError:
        client.abort()


@contextlib.asynccontextmanager
async def session(account: Account, server: Natterd, resource: str | None = None,
                  **kw: Any) -> AsyncIterator[slixmpp.ClientXMPP]:
    """A logged-in client (initial presence sent) for the duration of a block."""
    connect_kw = {k: kw.pop(k) for k in ("direct_tls", "send_presence") if k in kw}
    client = make_client(account, resource, **kw)
    await connect(client, server, **connect_kw)
    try:
        yield client
    finally:
        await disconnect(client)


def run(coro, timeout: float = 50.0):
    """Runs one test coroutine in a fresh event loop with an overall timeout."""
    async def main():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(main())


async def get_roster(client: slixmpp.ClientXMPP) -> dict[str, dict]:
    """A full roster get (no ver), as {bare jid: {subscription, ask, name, groups}}."""
    iq = client.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    res = await iq.send(timeout=STEP_TIMEOUT)
    return {str(j): dict(v) for j, v in res["roster"]["items"].items()}


async def subscribe(a: slixmpp.ClientXMPP, b: slixmpp.ClientXMPP) -> None:
    """``a`` subscribes to ``b``'s presence and ``b`` approves (one direction)."""
    b_requests = Events(b, "presence_subscribe")
    a_approved = Events(a, "presence_subscribed")
    a.send_presence(pto=b.boundjid.bare, ptype="subscribe")
    await b_requests.next(lambda p: p["from"].bare == a.boundjid.bare)
    b.send_presence(pto=a.boundjid.bare, ptype="subscribed")
    await a_approved.next(lambda p: p["from"].bare == b.boundjid.bare)
