"""pytest fixtures: one natterd per test module."""

from __future__ import annotations

import itertools
import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Natterd, natterd_bin  # noqa: E402


def pytest_configure(config):
    if not os.path.exists(natterd_bin()):
        raise pytest.UsageError(
            f"natterd binary not found at {natterd_bin()}: build it "
            "(cargo build -p natterd) or set NATTERD_BIN")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running natterd (STARTTLS + direct TLS, require_tls) for one test module.

    Stopped with SIGTERM at the end of the module; it must exit 0.
    """
    srv = Natterd(tmp_path_factory.mktemp("natterd"))
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, f"natterd exited with {code} after SIGTERM:\n{srv.log_tail()}"


_names = itertools.count(1)


@pytest.fixture
def accounts(server, request):
    """A factory of fresh accounts: accounts('alice', 'bob') -> [Account, Account]."""
    def make(*names: str):
        n = next(_names)
        return [server.add_user(f"{name}{n}") for name in names]
    return make


@pytest.fixture(autouse=True)
def _dump_log_on_failure(request, server):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"--- natterd log tail ({server.data_dir}/natterd.log) ---")
        print(server.log_tail(60))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
