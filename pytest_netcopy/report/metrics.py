"""The metric lines of a table cell: what each shows, how, and which a run gets.

A :class:`Metric` reads one figure from a result (``report.figures``) and
formats it; :func:`select_metrics` picks the lines a set of results has data
for, with notes naming the counter lines it left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_netcopy.report.figures import (
    Extra,
    copied_fraction,
    counter_statuses,
    integrity_word,
    round_spread,
    syscalls_total,
)
from pytest_netcopy.report.tcpinfo import limited_by_cell
from pytest_netcopy.results.schema import as_float

Counters = bool | Literal["auto"]

NA = "n/a"

#: round spread (stddev / mean of the rounds' Gbps, %) above which a cell is marked
SPREAD_LIMIT = 5.0
SPREAD_MARK = "!"


# ---------------------------------------------------------------------------
# number formatting


def sig(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, never in exponent form."""
    if value == 0:
        return "0"
    value = float(f"{value:.{digits}g}")  # round first: 99.96 -> 100, not "100.0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"


def fmt_gbps(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else sig(value, 2)


def fmt_rate(value: float) -> str:
    """Messages per second with an SI prefix: ``1.23 M``, ``45.7 k``, ``512``."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{sig(value / factor)} {prefix}"
    return sig(value)


def fmt_ns(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else sig(value)


# ---------------------------------------------------------------------------
# the metrics


@dataclass(frozen=True)
class Metric:
    label: str
    get: Callable[[Extra], Any]
    show: Callable[[Any], str]
    #: kind of change shown between runs: relative (%), points (pt) or text
    change: Literal["relative", "points", "text"] = "relative"
    #: the counter event (in ``counters`` or ``sink_counters``) behind a counter line
    event: tuple[str, str] | None = None


def _key(name: str) -> Callable[[Extra], Any]:
    return lambda extra: as_float(extra.get(name))


def _show_integrity(value: Any) -> str:
    return NA if value is None else str(value)


def _copied_pct(extra: Extra) -> float | None:
    fraction = copied_fraction(extra)
    return None if fraction is None else 100.0 * fraction


def _show_spread(value: float) -> str:
    return f"{SPREAD_MARK} {value:.1f}" if value > SPREAD_LIMIT else f"{value:.1f}"


def _show_steal(value: float) -> str:
    return f"{value:.0f}"


GBPS = Metric("Gbps", _key("throughput_gbps"), fmt_gbps)
#: hypervisor steal on the benchmark's CPUs during its measured rounds (ms)
STEAL = Metric("host steal ms", _key("steal_ms"), _show_steal, change="text")
#: segments the senders retransmitted during the measured rounds (TCP_INFO)
RETRANSMITS = Metric("retransmits", _key("retransmits"), lambda v: f"{v:.0f}", change="text")
#: shares of the senders' busy time limited by rwnd / sndbuf / the sender (TCP_INFO)
LIMITED_BY = Metric("limited by % (rwnd / sndbuf / sender)", limited_by_cell, str, change="text")
SPREAD = Metric("round spread %", round_spread, _show_spread, change="points")


def _udp_cell(extra: Extra) -> str | None:
    """``goodput Gbps / loss %`` of a UDP result over a sink (docs/udp.md); None otherwise."""
    udp = extra.get("udp")
    if not isinstance(udp, Mapping):
        return None
    goodput, loss = as_float(udp.get("goodput_gbps")), as_float(udp.get("loss_fraction"))
    if goodput is None or loss is None:
        return None
    return f"{fmt_gbps(goodput)} / {100 * loss:.2f}%"


#: UDP: what the sink verified per second, and the datagrams it never got
UDP = Metric("UDP goodput Gbps / loss %", _udp_cell, str, change="text")
BASE_METRICS = (
    GBPS,
    Metric("messages/s", _key("messages_per_second"), fmt_rate),
    Metric("ns per message", _key("ns_per_message"), fmt_ns),
)
COPIED = Metric("zero-copy copied %", _copied_pct, lambda v: f"{v:.1f}", change="points")
VS_CONTROL = Metric("Gbps vs control", _key("throughput_vs_control"), lambda v: f"{v:.2f}")
INTEGRITY = Metric("integrity", integrity_word, _show_integrity, change="text")
COUNTER_METRICS = (
    Metric(
        "sender CPU ns/byte",
        _key("cpu_ns_per_byte"),
        sig,
        event=("counters", "task-clock"),
    ),
    Metric(
        "sink CPU ns/byte",
        _key("sink_cpu_ns_per_byte"),
        sig,
        event=("sink_counters", "task-clock"),
    ),
    Metric("syscalls/message", syscalls_total, sig),
    Metric("cycles/byte", _key("cycles_per_byte"), sig, event=("counters", "cycles")),
)
#: from the untimed user-time pass (usertime.py), not a perf count of the measured rounds
USER_CPU = Metric("sender user CPU ns/byte", _key("user_cpu_ns_per_byte"), sig)
COUNTER_KEYS = (
    "cpu_ns_per_byte",
    "sink_cpu_ns_per_byte",
    "syscalls_per_message",
    "cycles_per_byte",
)


def cell_line(metric: Metric, extra: Extra | None, mode: str) -> str:
    """One metric's line in the cell of ``mode`` (blank where the mode did not run)."""
    if extra is None:
        return ""
    if metric is COPIED and mode != "zero_copy" and not isinstance(extra.get("zerocopy"), Mapping):
        return ""  # not applicable: leave blank rather than n/a
    value = metric.get(extra)
    if metric is INTEGRITY:
        return metric.show(value)
    return NA if value is None else metric.show(value)


# ---------------------------------------------------------------------------
# which metrics a table shows


def _counter_status(results: Sequence[Extra], metric: Metric) -> str | None:
    """Why a counter line has no value anywhere, from the counters' statuses."""
    if metric.event is None:
        return None
    section, event = metric.event
    statuses = counter_statuses(results, event, section)
    return f"{event}: {', '.join(statuses)}" if statuses else None


def _after_sender_cpu(metrics: list[Metric], metric: Metric) -> None:
    anchor = COUNTER_METRICS[0]
    metrics.insert(metrics.index(anchor) + 1 if anchor in metrics else len(metrics), metric)


def _user_time_status(results: Sequence[Extra]) -> str:
    """Why the user-time line has no value anywhere, from the passes' statuses."""
    found = {
        str(r["user_time"].get("status"))
        for r in results
        if isinstance(r.get("user_time"), Mapping)
    }
    return ", ".join(sorted(found)) or "no pass"


def _counted_metrics(results: Sequence[Extra], metrics: list[Metric]) -> list[str]:
    """Append the counter lines with a value somewhere; return the ones left out, with why."""
    left_out = []
    for metric in COUNTER_METRICS:
        if any(metric.get(r) is not None for r in results):
            metrics.append(metric)
        elif any(key in r for r in results for key in COUNTER_KEYS):
            status = _counter_status(results, metric)
            left_out.append(f"{metric.label} ({status})" if status else metric.label)
    if any(USER_CPU.get(r) is not None for r in results):
        _after_sender_cpu(metrics, USER_CPU)
    elif any("user_cpu_ns_per_byte" in r for r in results):
        left_out.append(f"{USER_CPU.label} ({_user_time_status(results)})")
    return left_out


def select_metrics(
    results: Sequence[Extra], counters: Counters = "auto"
) -> tuple[list[Metric], list[str]]:
    """The metric lines to show, and notes about counter lines left out (auto mode)."""
    metrics = list(BASE_METRICS)
    if any(UDP.get(r) is not None for r in results):
        metrics.insert(1, UDP)  # beside Gbps: what arrived, against what was sent
    if any(SPREAD.get(r) is not None for r in results):
        metrics.append(SPREAD)
    if any((STEAL.get(r) or 0) > 0 for r in results):
        metrics.append(STEAL)  # only on a machine whose host took CPU time: bare metal never
    if any((RETRANSMITS.get(r) or 0) > 0 for r in results):
        metrics.append(RETRANSMITS)  # only where a link lost or delayed segments
    if any(LIMITED_BY.get(r) is not None for r in results):
        metrics.append(LIMITED_BY)  # only runs that read TCP_INFO's chrono fields
    if any(VS_CONTROL.get(r) is not None for r in results):
        metrics.append(VS_CONTROL)
    if any(isinstance(r.get("zerocopy"), Mapping) or r.get("mode") == "zero_copy" for r in results):
        metrics.append(COPIED)
    metrics.append(INTEGRITY)
    notes: list[str] = []
    if counters is True:
        metrics.extend(COUNTER_METRICS)
        _after_sender_cpu(metrics, USER_CPU)
    elif counters == "auto":
        left_out = _counted_metrics(results, metrics)
        if left_out:
            notes.append("not counted in this run: " + "; ".join(left_out))
    return metrics, notes
