"""The fixtures: netcopy_mode, netcopy_sink and netcopy (the benchmark runner)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_netcopy.bench.runner import Netcopy
from pytest_netcopy.plugin.state import STATE_KEY
from pytest_netcopy.send.modes import Mode

XDIST_MESSAGE = (
    "pytest-netcopy benchmarks cannot run under pytest-xdist: parallel workers share the "
    "CPUs the senders and the sink are pinned to, so every figure would be wrong. "
    "Run the benchmarks with -n0 (or without -n), e.g. `pytest benchmarks/ -p no:xdist`."
)
#: grid fixture -> the netcopy.run() argument it gives a default
RUN_DEFAULTS = {"netcopy_mode": "mode", "netcopy_size": "size", "netcopy_threads": "threads"}


def in_xdist(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.fixture
def netcopy_mode(request: pytest.FixtureRequest) -> Mode:
    """The send mode under test (parametrized from --netcopy-modes)."""
    session = request.config.stash[STATE_KEY].session
    name = getattr(request, "param", None) or session.settings.modes[0]
    return session.registry.get(name)


@pytest.fixture(scope="session")
def netcopy_sink(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's receiver process (started on first use, restarted if it died)."""
    session = request.config.stash[STATE_KEY].session
    yield session.get_sink()


@pytest.fixture
def netcopy(request: pytest.FixtureRequest, benchmark: Any, netcopy_sink: Any) -> Iterator[Netcopy]:
    """Runs a send mode through pytest-benchmark against the session's sink."""
    if in_xdist(request.config):
        pytest.fail(XDIST_MESSAGE, pytrace=False)
    state = request.config.stash[STATE_KEY]
    defaults: dict[str, Any] = {}
    params = getattr(request.node, "callspec", None)
    if params is not None:
        for fixture, argument in RUN_DEFAULTS.items():
            if fixture in params.params:
                defaults[argument] = params.params[fixture]
    runner = Netcopy(state.session, benchmark, defaults)
    yield runner
    if runner.result is not None:  # the test's benchmark, kept with the test's nodeid
        state.record(request.node.nodeid, request.node.name, runner.result.extra_info)
