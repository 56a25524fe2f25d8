"""The fixtures: netcopy_mode, netcopy_sink and netcopy (the benchmark runner)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_netcopy.bench.run import BenchmarkRun
from pytest_netcopy.bench.runner import Netcopy, RunResult
from pytest_netcopy.plugin.state import STATE_KEY, PluginState
from pytest_netcopy.plugin.target import skip_reason
from pytest_netcopy.send.modes import Mode
from pytest_netcopy.transport.blackhole import BlackholeError

XDIST_MESSAGE = (
    "pytest-netcopy benchmarks cannot run under pytest-xdist: parallel workers share the "
    "CPUs the senders and the sink are pinned to, so every figure would be wrong. "
    "Run the benchmarks with -n0 (or without -n), e.g. `pytest benchmarks/ -p no:xdist`."
)
#: grid fixture -> the netcopy.run() argument it gives a default
RUN_DEFAULTS = {
    "netcopy_mode": "mode",
    "netcopy_size": "size",
    "netcopy_threads": "threads",
    "netcopy_pattern": "pattern",
    "netcopy_rr_rate": "rate",
}


def in_xdist(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class XdistRefusal:
    """Refuses netcopy benchmarks under xdist once, before any runs: exit status 4.

    The workers collect, the controller does not: a worker that collects a test
    using the ``netcopy`` fixture runs none of its tests and sends the controller a
    failed collection report carrying :data:`XDIST_MESSAGE`; the controller turns
    it into a UsageError. A session under xdist without netcopy benchmarks runs.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if in_xdist(self.config) and any(_benchmark(item) for item in items):
            report = pytest.CollectReport("", "failed", XDIST_MESSAGE, [])
            self.config.hook.pytest_collectreport(report=report)
            items.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """On the controller (tryfirst: no other plugin reports it as a collection error)."""
        if not in_xdist(self.config) and report.failed and report.longrepr == XDIST_MESSAGE:
            raise pytest.UsageError(XDIST_MESSAGE)


def _benchmark(item: pytest.Item) -> bool:
    """Whether ``item`` takes this plugin's ``netcopy`` fixture (not a test's own of that name,
    nor a parameter so named)."""
    info = getattr(item, "_fixtureinfo", None)  # pytest has no public way to ask
    if info is None:
        return "netcopy" in getattr(item, "fixturenames", ())
    defs = info.name2fixturedefs.get("netcopy", ())
    func = getattr(defs[-1], "func", None) if defs else None
    return func is not None and (func.__module__, func.__name__) == (__name__, "netcopy")


@pytest.fixture
def netcopy_mode(request: pytest.FixtureRequest) -> Mode:
    """The send mode under test (parametrized from --netcopy-modes)."""
    session = request.config.stash[STATE_KEY].session
    name = getattr(request, "param", None) or session.settings.modes[0]
    return session.registry.get(name)


@pytest.fixture
def netcopy_pattern(request: pytest.FixtureRequest) -> str:
    """The pattern under test: "stream" or "rr" (parametrized from --netcopy-patterns)."""
    return str(getattr(request, "param", None) or "stream")


@pytest.fixture
def netcopy_rr_rate(request: pytest.FixtureRequest) -> float | None:
    """Request/response transactions/s per connection (--netcopy-rr-rate); None: closed loop."""
    rate = getattr(request, "param", None)
    return None if rate is None else float(rate)


@pytest.fixture(scope="session")
def netcopy_sink(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's receiver process (started on first use, restarted if it died); with
    the blackhole target none (nothing receives): None."""
    session = request.config.stash[STATE_KEY].session
    yield None if session.settings.target == "blackhole" else session.get_sink()


class _Netcopy(Netcopy):
    """The fixture's runner: also notes which benchmark failed, for the terminal table."""

    def __init__(self, state: PluginState, benchmark: Any, defaults: dict[str, Any]) -> None:
        super().__init__(state.session, benchmark, defaults)
        self._state = state
        self._tried: BenchmarkRun | None = None

    def _new_run(self, mode: Any, size: int | None, threads: int | None) -> BenchmarkRun:
        mode_obj = self._mode(mode)
        pattern = self._point[0]  # set by run() before this
        skip = skip_reason(self._session.settings, mode_obj, pattern)  # on the blackhole target
        if skip is not None:
            pytest.skip(skip)
        try:
            self._tried = super()._new_run(mode_obj, size, threads)
        except BlackholeError as exc:  # the topology could not be built: one line, no trace
            pytest.fail(str(exc), pytrace=False)
        return self._tried

    def run(
        self,
        mode: Any = None,
        *,
        size: int | None = None,
        threads: int | None = None,
        pattern: str | None = None,
        rate: float | None = None,
    ) -> RunResult:
        self._tried = None
        try:
            return super().run(mode, size=size, threads=threads, pattern=pattern, rate=rate)
        except pytest.fail.Exception:
            if self._tried is not None:
                tried = self._tried
                self._state.failed.add((tried.mode.name, tried.size, tried.threads))
            raise


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
    runner = _Netcopy(state, benchmark, defaults)
    yield runner
    if runner.result is not None:  # the test's benchmark, kept with the test's nodeid
        state.record(request.node.nodeid, request.node.name, runner.result.extra_info)
