"""What the session adds to pytest's output: the terminal summary and machine_info."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_netcopy.bench.runner import NetcopySession
from pytest_netcopy.instruments.machine import machine_facts
from pytest_netcopy.instruments.perf_abi import perf_machine_info, tracefs_hint
from pytest_netcopy.instruments.status import NOT_PERMITTED, NOT_SUPPORTED
from pytest_netcopy.plugin.options import OPTIONS
from pytest_netcopy.plugin.parsers import AVAILABLE_CONGESTION
from pytest_netcopy.plugin.target import target_lines
from pytest_netcopy.transport.placement import AUTO_CONGESTION

ALLOWED_CONGESTION = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"


def netcopy_machine_info(session: NetcopySession) -> dict[str, Any]:
    """``machine_info["netcopy"]`` of pytest-benchmark's JSON: this machine's facts."""
    facts = machine_facts()
    facts.update(perf_machine_info())
    facts["placement"] = session.placement.as_dict()
    facts.update(session.peer_facts(facts["placement"]))  # issue 14: the peer and the link
    facts["target"] = session.target_facts()  # issue 15: sink, or the blackhole and its probe
    return facts


def write_summary(
    tr: Any,
    session: NetcopySession,
    failed: Collection[tuple[str, int, int]] = (),
    *,
    sysfs_root: str | Path = "/sys",
) -> None:
    """The throughput table (``failed``: the benchmarks that failed), the crossovers, the
    notes of ``netcopy report``, the hints (with why syscalls went uncounted), what
    congestion control ``auto`` could not get, and the Nagle note."""
    from pytest_netcopy.report.crossovers import (
        crossovers,
        render_cpu_crossovers,
        render_crossovers,
    )
    from pytest_netcopy.report.document import report_notes
    from pytest_netcopy.report.latency import rr_results, stream_results
    from pytest_netcopy.report.tables import modes_table

    streams, rr = stream_results(session.results), rr_results(session.results)
    if streams or failed or not rr:
        tr.write_sep("-", "netcopy: throughput by size x threads (median round, all connections)")
        tr.write_line(modes_table(streams, failed=failed))
    lines = render_crossovers(crossovers(streams))
    if lines:
        tr.write_line(lines)
    for line in target_lines(session) + render_cpu_crossovers(session.results):  # issue 15
        tr.write_line(f"netcopy: {line}")
    if rr:  # issue 16: request/response
        write_latency(tr, rr)
    for line in report_notes(session.results):
        tr.write_line(f"netcopy: {line}", yellow=True)
    hints = set(session.hints)
    tracefs = syscall_hint(session.results, sysfs_root)
    if tracefs:
        hints.add(tracefs)
    for hint in sorted(hints):
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


def write_latency(tr: Any, rr: list[Mapping[str, Any]]) -> None:
    """The request/response latency table and its legend (issue 16)."""
    from pytest_netcopy.report.latency import latency_legend, latency_table

    tr.write_sep("-", "netcopy: request/response latency by size x threads (round trip, µs)")
    tr.write_line(latency_table(rr))
    for line in latency_legend(rr):
        tr.write_line(line)


#: the result keys whose ``not_counted`` says why a syscall count is missing
SYSCALL_KEYS = ("syscalls_per_message", "sink_syscalls_per_message")


def syscall_hint(
    results: Iterable[Mapping[str, Any]],
    sysfs_root: str | Path = "/sys",
    listdir: Callable[[Path], object] = os.listdir,
) -> str | None:
    """Why syscalls went uncounted and the fix, when a result says tracefs let it down
    (``not supported`` or ``not permitted``) and tracefs is missing or unreadable here."""
    statuses = {
        status
        for r in results
        for key in SYSCALL_KEYS
        if isinstance(r.get(key), dict)
        for status in (r[key].get("not_counted") or {}).values()
    }
    if not statuses & {NOT_SUPPORTED, NOT_PERMITTED}:
        return None
    return tracefs_hint(sysfs_root, listdir)


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
