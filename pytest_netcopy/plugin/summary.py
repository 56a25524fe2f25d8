"""What the session adds to pytest's output: the terminal summary and machine_info."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pytest_netcopy.bench.runner import NetcopySession
from pytest_netcopy.instruments.machine import machine_facts
from pytest_netcopy.instruments.perf_abi import perf_machine_info
from pytest_netcopy.plugin.options import OPTIONS
from pytest_netcopy.plugin.parsers import AVAILABLE_CONGESTION
from pytest_netcopy.transport.placement import AUTO_CONGESTION

ALLOWED_CONGESTION = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"


def netcopy_machine_info(session: NetcopySession) -> dict[str, Any]:
    """``machine_info["netcopy"]`` of pytest-benchmark's JSON: this machine's facts."""
    facts = machine_facts()
    facts.update(perf_machine_info())
    facts["placement"] = session.placement.as_dict()
    return facts


def write_summary(
    tr: Any, session: NetcopySession, failed: Collection[tuple[str, int, int]] = ()
) -> None:
    """The throughput table (``failed``: the benchmarks that failed), the crossovers, the
    hints, what congestion control ``auto`` could not get, and the Nagle note."""
    from pytest_netcopy.report.crossovers import crossovers, render_crossovers
    from pytest_netcopy.report.tables import modes_table

    tr.write_sep("-", "netcopy: throughput by size x threads (median round, all connections)")
    tr.write_line(modes_table(session.results, failed=failed))
    lines = render_crossovers(crossovers(session.results))
    if lines:
        tr.write_line(lines)
    for hint in sorted(session.hints):
        tr.write_line(f"netcopy: {hint}", yellow=True)
    refused = session.refused_strangers()  # issue 13: the sink's strangers
    if refused:
        tr.write_line(f"netcopy: refused {refused} connections without the session token")
    used = {str(r.get("tcp_congestion")) for r in session.results if r.get("tcp_congestion")}
    note = auto_congestion_note(
        session.settings.congestion, used, _proc(ALLOWED_CONGESTION), _proc(AVAILABLE_CONGESTION)
    )
    if note:
        tr.write_line(f"netcopy: {note}", yellow=True)
    nagle = "off (TCP_NODELAY set)" if session.settings.nodelay else "on (the default)"
    tr.write_line(
        f"Nagle {nagle}; ns/msg is round time / messages (inverse throughput), not latency."
    )


def _proc(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def auto_congestion_note(
    choice: str, used: Collection[str], allowed: str | None, available: str | None
) -> str | None:
    """Why ``auto`` did not get cubic, when it did not (None when it did, or was not asked).

    ``allowed``/``available``: net.ipv4.tcp_allowed_congestion_control and
    tcp_available_congestion_control (None: unknown).
    """
    others = sorted(set(used) - {AUTO_CONGESTION})
    if choice != "auto" or not others:
        return None
    if available is not None and AUTO_CONGESTION not in available.split():
        why = (
            f"it is not available (net.ipv4.tcp_available_congestion_control is {available!r}) "
            "and only root can load its module"
        )
    elif allowed is not None and AUTO_CONGESTION not in allowed.split():
        why = (
            "this account may only choose from net.ipv4.tcp_allowed_congestion_control "
            f"({allowed!r}); root may choose any available one"
        )
    else:
        why = "the kernel refused it"
    return (
        f"{OPTIONS['congestion'].cli}=auto could not get {AUTO_CONGESTION}: {why}; the sender "
        f"sockets used {', '.join(others)} (the system default), whose pacing can make "
        "loopback rounds bistable"
    )
