"""``netcopy csv``: one row per benchmark, the reference workload's columns first.

The reference exercise wrote ``Implementation, MessageSize, NumThreads,
Throughput_Gbps, <latency>, CPU_Cycles, Instructions, LLC_Misses, L1_Misses,
ContextSwitches``. We keep those names (so existing plotting scripts work)
with these meanings, then add our own columns:

* the "latency" column is ``TimePerMessage_ns``: median round time divided by
  the messages of the round, i.e. inverse throughput, not latency;
* the counter columns are **per message**: the sender threads' count over the
  measured rounds divided by the messages they sent (totals depend on the
  calibrated round length, per-message figures do not);
* a counter that was not counted leaves its cell empty, never 0; the
  ``CounterStatus`` column says why.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from pytest_netcopy.report.tables import (
    Extra,
    copied_fraction,
    integrity_ok,
    mode_rank,
    syscalls_total,
)
from pytest_netcopy.results.schema import as_float

#: reference column -> counter event, per message
COUNTER_COLUMNS = {
    "CPU_Cycles": "cycles",
    "Instructions": "instructions",
    "LLC_Misses": "LLC-load-misses",
    "L1_Misses": "L1-dcache-load-misses",
    "ContextSwitches": "context-switches",
}
REFERENCE_COLUMNS = (
    "Implementation",
    "MessageSize",
    "NumThreads",
    "Throughput_Gbps",
    "TimePerMessage_ns",
    *COUNTER_COLUMNS,
)
OUR_COLUMNS = (
    "Throughput_Gbps_PerConnection",
    "Throughput_Gbps_RoundMin",
    "Throughput_Gbps_RoundMax",
    "MessagesPerSecond",
    "MessagesPerRound",
    "BytesPerRound",
    "Rounds",
    "CPU_ns_per_byte",
    "Sink_CPU_ns_per_byte",
    "Cycles_per_byte",
    "Instructions_per_byte",
    "IPC",
    "ContextSwitches_per_MB",
    "Syscalls_per_message",
    "Sink_Syscalls_per_message",
    "ZeroCopy_Copied_pct",
    "ZeroCopy_ENOBUFS",
    "Integrity",
    "VerifiedBytes",
    "TCP_NoDelay",
    "Pinned",
    "SenderCPUs",
    "SinkCPUs",
    "CounterStatus",
    # added later: appended, so the columns before keep their positions
    "Throughput_vs_Control",
    "CPU_vs_Control",
    "Control_Mode",
    "Control_Throughput_Gbps",
    "Control_CPU_ns_per_byte",
    "User_CPU_ns_per_byte",
    "Host_Steal_ms",
)
COLUMNS = REFERENCE_COLUMNS + OUR_COLUMNS

#: shown by ``netcopy csv --help``
COLUMNS_HELP = """\
columns (one row per benchmark, sorted by size, threads, mode):
  Implementation        the mode (two_copy, one_copy, zero_copy, ...)
  MessageSize           bytes per message; NumThreads: sender threads = connections
  Throughput_Gbps       median round, all connections together
  TimePerMessage_ns     median round time / messages: inverse throughput, NOT latency
  CPU_Cycles, Instructions, LLC_Misses, L1_Misses, ContextSwitches
                        PER MESSAGE: the sender threads' count over the measured
                        rounds / messages sent (LLC = LLC-load-misses,
                        L1 = L1-dcache-load-misses)
  then ours: per-connection Gbps, min/max round Gbps, messages/s, round size,
  CPU ns/byte (sender, sink), cycles and instructions per byte, IPC, context
  switches per MB, syscalls/message (sender, sink), zero-copy copied %, ENOBUFS,
  integrity, TCP_NODELAY, placement, CounterStatus (event=status for every
  counter that was not counted), and last the ratios to the control send run
  around every round (Throughput_vs_Control, CPU_vs_Control: what the default
  gate rules use) with the control's own mode, Gbps and CPU ns/byte (empty with
  --netcopy-control=none), then User_CPU_ns_per_byte (the senders' user-mode CPU
  per byte, sampled in untimed rounds) and Host_Steal_ms (time the hypervisor
  took from the benchmark's CPUs during its measured rounds). An empty cell
  means not counted or not applicable: never a fake 0."""


def _counter_value(extra: Extra, event: str) -> float | None:
    counters = extra.get("counters")
    if not isinstance(counters, Mapping) or not isinstance(counters.get(event), Mapping):
        return None
    return as_float(counters[event].get("value"))


def measured_rounds(extra: Extra) -> int:
    """How many measured rounds the counter totals span: ``len(rounds.seconds)``."""
    rounds = extra.get("rounds")
    seconds = rounds.get("seconds") if isinstance(rounds, Mapping) else None
    return len(seconds) if isinstance(seconds, list) else 0


def per_message(extra: Extra, event: str) -> float | None:
    """A sender counter per message sent, or None where it was not counted.

    Counter values are totals over the measured rounds, all sender threads
    together, so per message = value / (messages_per_round x measured rounds).
    """
    value = _counter_value(extra, event)
    messages = as_float(extra.get("messages_per_round"))
    rounds = measured_rounds(extra)
    if value is None or not messages or not rounds:
        return None
    return value / (messages * rounds)


def counter_status(extra: Extra) -> str:
    """``event=status`` for each sender counter that has no value, ``;``-joined."""
    counters = extra.get("counters")
    if not isinstance(counters, Mapping):
        return ""
    missing = [
        f"{event}={entry.get('status')}"
        for event, entry in sorted(counters.items())
        if isinstance(entry, Mapping) and as_float(entry.get("value")) is None
    ]
    return ";".join(missing)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def csv_row(extra: Extra) -> dict[str, str]:
    rounds = extra.get("rounds")
    per_round = rounds.get("throughput_gbps") if isinstance(rounds, Mapping) else None
    round_gbps = [v for v in (as_float(x) for x in per_round or []) if v is not None]
    n_rounds = measured_rounds(extra)
    copied = copied_fraction(extra)
    ok = integrity_ok(extra)
    integrity = extra.get("integrity")
    zerocopy = extra.get("zerocopy")
    placement = extra.get("placement")
    place: Mapping[str, Any] = placement if isinstance(placement, Mapping) else {}
    control = extra.get("control")
    ctl: Mapping[str, Any] = control if isinstance(control, Mapping) else {}
    values: dict[str, Any] = {
        "Implementation": extra["mode"],
        "MessageSize": int(extra["size"]),
        "NumThreads": int(extra["threads"]),
        "Throughput_Gbps": as_float(extra.get("throughput_gbps")),
        "TimePerMessage_ns": as_float(extra.get("ns_per_message")),
        **{column: per_message(extra, event) for column, event in COUNTER_COLUMNS.items()},
        "Throughput_Gbps_PerConnection": as_float(extra.get("throughput_gbps_per_connection")),
        "Throughput_Gbps_RoundMin": min(round_gbps) if round_gbps else None,
        "Throughput_Gbps_RoundMax": max(round_gbps) if round_gbps else None,
        "MessagesPerSecond": as_float(extra.get("messages_per_second")),
        "MessagesPerRound": extra.get("messages_per_round"),
        "BytesPerRound": extra.get("bytes_per_round"),
        "Rounds": n_rounds or None,
        "Throughput_vs_Control": as_float(extra.get("throughput_vs_control")),
        "CPU_vs_Control": as_float(extra.get("cpu_vs_control")),
        "Control_Mode": ctl.get("mode"),
        "Control_Throughput_Gbps": as_float(ctl.get("throughput_gbps")),
        "Control_CPU_ns_per_byte": as_float(ctl.get("cpu_ns_per_byte")),
        "User_CPU_ns_per_byte": as_float(extra.get("user_cpu_ns_per_byte")),
        "Host_Steal_ms": as_float(extra.get("steal_ms")),
        "CPU_ns_per_byte": as_float(extra.get("cpu_ns_per_byte")),
        "Sink_CPU_ns_per_byte": as_float(extra.get("sink_cpu_ns_per_byte")),
        "Cycles_per_byte": as_float(extra.get("cycles_per_byte")),
        "Instructions_per_byte": as_float(extra.get("instructions_per_byte")),
        "IPC": as_float(extra.get("ipc")),
        "ContextSwitches_per_MB": as_float(extra.get("context_switches_per_mb")),
        "Syscalls_per_message": syscalls_total(extra),
        "Sink_Syscalls_per_message": syscalls_total(extra, "sink_syscalls_per_message"),
        "ZeroCopy_Copied_pct": None if copied is None else 100.0 * copied,
        "ZeroCopy_ENOBUFS": zerocopy.get("enobufs") if isinstance(zerocopy, Mapping) else None,
        "Integrity": None if ok is None else ("intact" if ok else "CORRUPT"),
        "VerifiedBytes": integrity.get("verified_bytes")
        if isinstance(integrity, Mapping)
        else None,
        "TCP_NoDelay": extra.get("tcp_nodelay"),
        "Pinned": place.get("pinned"),
        "SenderCPUs": place.get("sender_cpus"),
        "SinkCPUs": place.get("sink_cpus"),
        "CounterStatus": counter_status(extra),
    }
    return {column: _cell(values[column]) for column in COLUMNS}


def write_csv(results: Sequence[Extra], out: TextIO) -> int:
    """Write the header and one row per result (sorted by size, threads, mode); return the rows."""
    ordered = sorted(
        results, key=lambda e: (int(e["size"]), int(e["threads"]), mode_rank(str(e["mode"])))
    )
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for extra in ordered:
        writer.writerow(csv_row(extra))
    return len(ordered)
