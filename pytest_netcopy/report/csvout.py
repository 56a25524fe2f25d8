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

from pytest_netcopy.report.figures import (
    Extra,
    copied_fraction,
    counter_status,
    integrity_word,
    measured_rounds,
    per_message,
    round_samples,
    syscalls_total,
)
from pytest_netcopy.report.latency import LATENCY_COLUMNS, latency_columns, offered_rate, pattern_of
from pytest_netcopy.report.ranking import mode_rank
from pytest_netcopy.report.tcpinfo import LIMITED_COLUMNS, TCP_INFO_COLUMNS, tcp_info_columns
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
#: issue 16, appended (both groups) to a run with request/response results or TCP_INFO
LATENCY_TCP_COLUMNS = (*LATENCY_COLUMNS, *TCP_INFO_COLUMNS, *LIMITED_COLUMNS)

#: column -> the ``extra_info`` key of a recorded number it shows as is
NUMBER_COLUMNS = {
    "Throughput_Gbps": "throughput_gbps",
    "TimePerMessage_ns": "ns_per_message",
    "Throughput_Gbps_PerConnection": "throughput_gbps_per_connection",
    "MessagesPerSecond": "messages_per_second",
    "Throughput_vs_Control": "throughput_vs_control",
    "CPU_vs_Control": "cpu_vs_control",
    "User_CPU_ns_per_byte": "user_cpu_ns_per_byte",
    "Host_Steal_ms": "steal_ms",
    "CPU_ns_per_byte": "cpu_ns_per_byte",
    "Sink_CPU_ns_per_byte": "sink_cpu_ns_per_byte",
    "Cycles_per_byte": "cycles_per_byte",
    "Instructions_per_byte": "instructions_per_byte",
    "IPC": "ipc",
    "ContextSwitches_per_MB": "context_switches_per_mb",
}

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
  means not counted or not applicable: never a fake 0.
  A run with request/response results or TCP_INFO figures gets more columns:
  Pattern (stream or rr), ResponseSize, Transactions, TransactionsPerSecond,
  the round-trip percentiles p50_us, p90_us, p99_us, p999_us, p9999_us, max_us,
  mean_us, stddev_us, the open loop's Offered/AchievedRate_per_connection and
  KeptSchedule (empty for a stream or a closed loop); then TCP_RTT_us,
  TCP_RTTVar_us, TCP_SndCwnd, TCP_DeliveryRate_bps, TCP_Retrans, TCP_Busy_us and
  Limited_ReceiveWindow_pct, Limited_SendBuffer_pct, Limited_Sender_pct (shares
  of busy time; empty where the kernel gave no chrono fields)."""


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


def _mapping(extra: Extra, key: str) -> Mapping[str, Any]:
    value = extra.get(key)
    return value if isinstance(value, Mapping) else {}


def _number_columns(extra: Extra) -> dict[str, Any]:
    """The columns that are one recorded number each, under their CSV names."""
    return {column: as_float(extra.get(key)) for column, key in NUMBER_COLUMNS.items()}


def _round_columns(extra: Extra) -> dict[str, Any]:
    round_gbps = round_samples(extra, "throughput_gbps")
    return {
        "Throughput_Gbps_RoundMin": min(round_gbps) if round_gbps else None,
        "Throughput_Gbps_RoundMax": max(round_gbps) if round_gbps else None,
        "MessagesPerRound": extra.get("messages_per_round"),
        "BytesPerRound": extra.get("bytes_per_round"),
        "Rounds": measured_rounds(extra) or None,
    }


def _control_columns(extra: Extra) -> dict[str, Any]:
    ctl = _mapping(extra, "control")
    return {
        "Control_Mode": ctl.get("mode"),
        "Control_Throughput_Gbps": as_float(ctl.get("throughput_gbps")),
        "Control_CPU_ns_per_byte": as_float(ctl.get("cpu_ns_per_byte")),
    }


def _check_columns(extra: Extra) -> dict[str, Any]:
    """Syscalls, zero-copy, integrity, socket option and placement columns."""
    copied = copied_fraction(extra)
    integrity = extra.get("integrity")
    zerocopy = extra.get("zerocopy")
    place = _mapping(extra, "placement")
    return {
        "Syscalls_per_message": syscalls_total(extra),
        "Sink_Syscalls_per_message": syscalls_total(extra, "sink_syscalls_per_message"),
        "ZeroCopy_Copied_pct": None if copied is None else 100.0 * copied,
        "ZeroCopy_ENOBUFS": zerocopy.get("enobufs") if isinstance(zerocopy, Mapping) else None,
        "Integrity": integrity_word(extra),
        "VerifiedBytes": integrity.get("verified_bytes")
        if isinstance(integrity, Mapping)
        else None,
        "TCP_NoDelay": extra.get("tcp_nodelay"),
        "Pinned": place.get("pinned"),
        "SenderCPUs": place.get("sender_cpus"),
        "SinkCPUs": place.get("sink_cpus"),
        "CounterStatus": counter_status(extra),
    }


def csv_row(extra: Extra, columns: Sequence[str] = COLUMNS) -> dict[str, str]:
    values: dict[str, Any] = {
        "Implementation": extra["mode"],
        "MessageSize": int(extra["size"]),
        "NumThreads": int(extra["threads"]),
        **{column: per_message(extra, event) for column, event in COUNTER_COLUMNS.items()},
        **_number_columns(extra),
        **_round_columns(extra),
        **_control_columns(extra),
        **_check_columns(extra),
        **latency_columns(extra),
        **tcp_info_columns(extra),
    }
    return {column: _cell(values[column]) for column in columns}


def csv_columns(results: Sequence[Extra]) -> tuple[str, ...]:
    """The columns of a run: the latency and TCP_INFO ones too where it has such figures
    (a run made before them keeps its columns exactly)."""
    if any(pattern_of(e) != "stream" or "tcp_info" in e for e in results):
        return COLUMNS + LATENCY_TCP_COLUMNS
    return COLUMNS


def write_csv(results: Sequence[Extra], out: TextIO) -> int:
    """Write the header and one row per result (sorted by size, threads, mode); return the rows."""
    ordered = sorted(
        results,
        key=lambda e: (
            pattern_of(e) != "stream",
            int(e["size"]),
            int(e["threads"]),
            offered_rate(e) or 0.0,
            mode_rank(str(e["mode"])),
        ),
    )
    columns = csv_columns(ordered)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for extra in ordered:
        writer.writerow(csv_row(extra, columns))
    return len(ordered)
