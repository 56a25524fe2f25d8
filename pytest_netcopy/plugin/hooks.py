"""pytest-netcopy's pytest plugin (the entry point): the hook implementations. Thin.

Options: plugin/options.py; grid: plugin/grid.py; fixtures: plugin/fixtures.py;
terminal summary: plugin/summary.py; regression gate: plugin/gate.py.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

import pytest

from pytest_netcopy.bench.runner import NetcopySession
from pytest_netcopy.bench.settings import Settings
from pytest_netcopy.plugin import hookspecs
from pytest_netcopy.plugin.fixtures import (
    XdistRefusal,
    netcopy,
    netcopy_mode,
    netcopy_pattern,
    netcopy_rr_rate,
    netcopy_sink,
)
from pytest_netcopy.plugin.gate import GatePlugin
from pytest_netcopy.plugin.grid import parametrize
from pytest_netcopy.plugin.options import OPTIONS, add_options, resolve
from pytest_netcopy.plugin.state import STATE_KEY, PluginState
from pytest_netcopy.plugin.summary import netcopy_machine_info, write_summary
from pytest_netcopy.plugin.target import check_target
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.send.modes import ModeRegistry
from pytest_netcopy.sink.wire import MAX_DATAGRAM
from pytest_netcopy.transport.errors import CongestionRefused, TransferError
from pytest_netcopy.transport.placement import plan_placement

#: the fixtures are the plugin's through this module (pytest collects them here)
__all__ = ["netcopy", "netcopy_mode", "netcopy_pattern", "netcopy_rr_rate", "netcopy_sink"]

MARKER = (
    "netcopy(sizes=None, threads=None, modes=None, gate=None): restrict the netcopy grid "
    "of one test; gate='RULES' replaces the session's gate rules for the metrics it "
    "names on this test's benchmarks"
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    settings, sources = resolve(config)
    registry = builtin_registry()
    config.hook.pytest_netcopy_add_modes(registry=registry)
    unknown = [m for m in settings.modes if m not in registry]
    if unknown:
        raise pytest.UsageError(
            f"{sources['modes']}={','.join(settings.modes)!r}: unknown mode(s) "
            f"{', '.join(unknown)}; expected names from: {', '.join(registry.names())}"
        )
    check_target(settings, sources)  # issue 15: blackhole needs root and no peer
    check_datagram_sizes(settings, sources, registry)  # issue 15: a UDP mode's size limit
    session = NetcopySession(
        settings=settings,
        registry=registry,
        placement=plan_placement(settings.pin == "auto"),
        explain=explain_transfer_error,
    )
    state = PluginState(session=session, sources=sources)
    config.stash[STATE_KEY] = state
    gate = GatePlugin(config, state)
    config.pluginmanager.register(gate, "netcopy-gate")
    session.decide_rounds = gate.rounds_callback()  # more rounds where undecided (issue 12)
    if settings.instructions == "auto":  # the instruction-count pass: when the gate is on,
        # or when the run is kept as a possible baseline (so a later gate has the count)
        saved = bool(config.getoption("benchmark_save", None)) or bool(
            config.getoption("benchmark_autosave", None)
        )
        on = gate.settings.enabled or saved
        session.settings = replace(settings, instructions="on" if on else "off")
    config.pluginmanager.register(XdistRefusal(config), "netcopy-xdist")


def check_datagram_sizes(
    settings: Settings, sources: dict[str, str], registry: ModeRegistry
) -> None:
    """A size above the datagram limit with a UDP mode in the grid is a usage error."""
    udp = [m for m in settings.modes if registry.get(m).transport == "udp"]
    big = [size for size in settings.sizes if size > MAX_DATAGRAM]
    if udp and big:
        raise pytest.UsageError(
            f"{sources['sizes']}={','.join(map(str, settings.sizes))!r}: {big[0]} B does not fit "
            f"in one UDP datagram (the UDP mode(s) {', '.join(udp)} send one message per "
            f"datagram): expected sizes up to {MAX_DATAGRAM} B"
        )


def explain_transfer_error(exc: TransferError) -> str:
    """A failed transfer in the user's terms: a refused setting names its option."""
    if isinstance(exc, CongestionRefused):
        return exc.describe(option=OPTIONS["congestion"].cli)
    return str(exc)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        state.session.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize(metafunc)


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.session.results:
        return  # a suite that does not use netcopy gets nothing added
    machine_info["netcopy"] = netcopy_machine_info(state.session)


def _per_message(bench: Any) -> bool:
    """Whether a row of pytest-benchmark's table is a netcopy benchmark timed per message."""
    extra = bench.get("extra_info")
    return (
        isinstance(extra, dict)
        and "netcopy_schema" in extra
        and bench.get("iterations") == extra.get("messages_per_round")
    )


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_scale_unit(
    config: pytest.Config | None, unit: str, benchmarks: list[Any], best: Any, worst: Any, sort: str
) -> Generator[None, tuple[str, float], tuple[str, float]]:
    """Say in pytest-benchmark's table that netcopy's times are per message (runner.py's
    per_message_stats): its header reads ``Name (time in per-message us)``."""
    prefix, scale = yield
    netcopy = [_per_message(bench) for bench in benchmarks]
    if unit != "seconds" or not any(netcopy):
        return prefix, scale
    if all(netcopy):
        return f"per-message {prefix}", scale
    return f"{prefix}s per call; netcopy rows: per message, in {prefix}", scale


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.session.results:
        return
    write_summary(terminalreporter, state.session, state.failed)
