"""pytest-netcopy's pytest plugin: options, fixtures, parametrization, summary. Thin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_netcopy.bench.runner import Netcopy, NetcopySession
from pytest_netcopy.instruments.counters import perf_machine_info
from pytest_netcopy.instruments.machine import machine_facts
from pytest_netcopy.plugin import gate as gateplugin
from pytest_netcopy.plugin import hookspecs as hooks
from pytest_netcopy.plugin.options import (
    add_options,
    parse_modes,
    parse_sizes,
    parse_threads,
    resolve,
)
from pytest_netcopy.send.modes import Mode, builtin_registry
from pytest_netcopy.transport.transfer import plan_placement

SESSION_KEY = pytest.StashKey[NetcopySession]()
GRID = ("netcopy_mode", "netcopy_size", "netcopy_threads")
XDIST_MESSAGE = (
    "pytest-netcopy benchmarks cannot run under pytest-xdist: parallel workers share the "
    "CPUs the senders and the sink are pinned to, so every figure would be wrong. "
    "Run the benchmarks with -n0 (or without -n), e.g. `pytest benchmarks/ -p no:xdist`."
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    gateplugin.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "netcopy(sizes=None, threads=None, modes=None, gate=None): restrict the netcopy grid "
        "of one test; gate='RULES' replaces the session's gate rules for the metrics it "
        "names on this test's benchmarks",
    )
    settings = resolve(config)
    registry = builtin_registry()
    config.hook.pytest_netcopy_add_modes(registry=registry)
    unknown = [m for m in settings.modes if m not in registry]
    if unknown:
        raise pytest.UsageError(
            f"{settings.describe('modes')}={','.join(settings.modes)!r}: unknown mode(s) "
            f"{', '.join(unknown)}; expected names from: {', '.join(registry.names())}"
        )
    session = NetcopySession(
        settings=settings,
        registry=registry,
        placement=plan_placement(settings.pin == "auto"),
    )
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(gateplugin.GatePlugin(config, session), "netcopy-gate")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def _in_xdist(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _marker_list(metafunc: pytest.Metafunc, key: str, default: list[Any]) -> list[Any]:
    """The marker's value for ``key`` (a value or a list), checked like the option."""
    marker = metafunc.definition.get_closest_marker("netcopy")
    if marker is None or marker.kwargs.get(key) is None:
        return default
    value = marker.kwargs[key]
    items = [value] if isinstance(value, (str, int)) else list(value)
    text = ",".join(str(v) for v in items)
    parsers: dict[str, Callable[[str], list[Any]]] = {
        "sizes": parse_sizes,
        "threads": parse_threads,
        "modes": parse_modes,
    }
    parse = parsers[key]
    try:
        parsed: list[Any] = parse(text)
    except ValueError as exc:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: netcopy({key}={value!r}): {exc}"
        ) from None
    if key == "modes":
        registry = metafunc.config.stash[SESSION_KEY].registry
        unknown = [m for m in parsed if m not in registry]
        if unknown:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: netcopy(modes={value!r}): unknown mode(s) "
                f"{', '.join(unknown)}; expected names from: {', '.join(registry.names())}"
            )
    return parsed


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    used = [name for name in GRID if name in metafunc.fixturenames]
    if not used:
        return
    settings = metafunc.config.stash[SESSION_KEY].settings
    modes = _marker_list(metafunc, "modes", settings.modes)
    sizes = _marker_list(metafunc, "sizes", settings.sizes)
    threads = _marker_list(metafunc, "threads", settings.threads)
    values, ids = [], []
    for size in sizes if "netcopy_size" in used else [None]:
        for count in threads if "netcopy_threads" in used else [None]:
            for mode in modes if "netcopy_mode" in used else [None]:
                row = {"netcopy_mode": mode, "netcopy_size": size, "netcopy_threads": count}
                values.append(tuple(row[name] for name in used))
                parts = [mode, f"{size}B" if size else None, f"{count}t" if count else None]
                ids.append("-".join(p for p in parts if p))
    metafunc.parametrize(
        used, values, ids=ids, indirect=["netcopy_mode"] if "netcopy_mode" in used else False
    )


@pytest.fixture
def netcopy_mode(request: pytest.FixtureRequest) -> Mode:
    """The send mode under test (parametrized from --netcopy-modes)."""
    session = request.config.stash[SESSION_KEY]
    name = getattr(request, "param", None) or session.settings.modes[0]
    return session.registry.get(name)


@pytest.fixture(scope="session")
def netcopy_sink(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's receiver process (started on first use, restarted if it died)."""
    session = request.config.stash[SESSION_KEY]
    yield session.get_sink()


@pytest.fixture
def netcopy(request: pytest.FixtureRequest, benchmark: Any, netcopy_sink: Any) -> Netcopy:
    """Runs a send mode through pytest-benchmark against the session's sink."""
    if _in_xdist(request.config):
        pytest.fail(XDIST_MESSAGE, pytrace=False)
    session = request.config.stash[SESSION_KEY]
    defaults: dict[str, Any] = {}
    params = getattr(request.node, "callspec", None)
    if params is not None:
        if "netcopy_mode" in params.params:
            defaults["mode"] = params.params["netcopy_mode"]
        if "netcopy_size" in params.params:
            defaults["size"] = params.params["netcopy_size"]
        if "netcopy_threads" in params.params:
            defaults["threads"] = params.params["netcopy_threads"]
    return Netcopy(session, benchmark, defaults)


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.results:
        return  # a suite that does not use netcopy gets nothing added
    facts = machine_facts()
    facts.update(perf_machine_info())
    facts["placement"] = session.placement.as_dict()
    machine_info["netcopy"] = facts


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.results:
        return
    from pytest_netcopy.report.tables import crossovers, modes_table, render_crossovers

    tr = terminalreporter
    tr.write_sep("-", "netcopy: throughput by size x threads (median round, all connections)")
    tr.write_line(modes_table(session.results))
    lines = render_crossovers(crossovers(session.results))
    if lines:
        tr.write_line(lines)
    for hint in sorted(session.hints):
        tr.write_line(f"netcopy: {hint}", yellow=True)
    nagle = "off (TCP_NODELAY set)" if session.settings.nodelay else "on (the default)"
    tr.write_line(
        f"Nagle {nagle}; ns/msg is round time / messages (inverse throughput), not latency."
    )
