"""What the session adds to pytest's output: the terminal summary and machine_info."""

from __future__ import annotations

from typing import Any

from pytest_netcopy.bench.runner import NetcopySession
from pytest_netcopy.instruments.machine import machine_facts
from pytest_netcopy.instruments.perf_abi import perf_machine_info


def netcopy_machine_info(session: NetcopySession) -> dict[str, Any]:
    """``machine_info["netcopy"]`` of pytest-benchmark's JSON: this machine's facts."""
    facts = machine_facts()
    facts.update(perf_machine_info())
    facts["placement"] = session.placement.as_dict()
    return facts


def write_summary(tr: Any, session: NetcopySession) -> None:
    """The throughput table, the crossovers, the hints and the Nagle note."""
    from pytest_netcopy.report.crossovers import crossovers, render_crossovers
    from pytest_netcopy.report.tables import modes_table

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
