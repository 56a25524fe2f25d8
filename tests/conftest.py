"""Shared fixtures. pytester itself is enabled in pyproject.toml (``-p pytester``)."""

from __future__ import annotations

from collections.abc import Iterator

import netns
import pytest
from _support import perf_fds

from pytest_netcopy.transport.local import SinkProcess


@pytest.fixture(autouse=True)
def _no_xdist_env_in_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest runs are not xdist workers, even when this run is one.

    pytest-benchmark disables itself when PYTEST_XDIST_WORKER is set, and the
    netcopy fixtures refuse to run under xdist; the variables must not leak into
    the subprocesses that pytester starts.
    """
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_leaked_perf_fds() -> Iterator[None]:
    """Every test closes the perf counters it opened."""
    before = perf_fds()
    yield
    assert perf_fds() <= before, "perf fds left open"


@pytest.fixture(scope="module")
def sink() -> Iterator[SinkProcess]:
    """A local sink process, shared by the module's tests (a module may define its own)."""
    peer = SinkProcess(timeout=10)
    peer.ensure_running()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
def two_hosts() -> Iterator[netns.TwoHosts]:
    """A network namespace and a veth pair (tests/netns.py), removed at the end."""
    reason = netns.why_not()
    if reason:
        pytest.skip(reason)
    hosts = netns.build()
    try:
        yield hosts
    finally:
        netns.remove(hosts.ns)


@pytest.fixture(scope="module")
def sshd(
    two_hosts: netns.TwoHosts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[netns.Sshd]:
    """A real sshd in the namespace (198.18.0.2:22), throwaway keys; stopped after the module
    (other modules check that nothing runs in the namespace)."""
    reason = netns.sshd_why_not()
    if reason:
        pytest.skip(reason)
    server = netns.start_sshd(two_hosts, str(tmp_path_factory.mktemp("sshd")))
    try:
        yield server
    finally:
        netns.stop_sshd(server)
