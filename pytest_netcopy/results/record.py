"""What one benchmark records: typed pieces, and the one place they become ``extra_info``.

The bench computes the pieces (:class:`Throughput` from the measured rounds,
:class:`CounterFigures` from the counters, :class:`ControlFigures` from the
control rounds, :class:`UserTimeFigures` from the user-time pass,
:class:`UserInstructionFigures` from the instruction-count pass); a
:class:`BenchmarkRecord` lays them out as pytest-benchmark's ``extra_info``
(docs/results-schema.md). The key order is the order readers see in the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_netcopy.results.rr import RrFigures
from pytest_netcopy.results.schema import SCHEMA_VERSION
from pytest_netcopy.results.tcpinfo import TcpInfoFigures
from pytest_netcopy.results.udp import UdpFigures

#: per event: ``{"value", "status", "running_fraction"}``
Counts = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Throughput:
    """The measured rounds: how many messages, how fast, how much the sink checked."""

    mode: str
    size: int
    threads: int
    messages_per_round: int
    messages_per_connection: int
    bytes_per_round: int
    throughput_gbps: float
    throughput_gbps_per_connection: float
    messages_per_second: float
    ns_per_message: float
    round_seconds: list[float]
    round_throughput_gbps: list[float]
    round_steal_ms: list[float | None]
    verified_bytes: int
    #: over all rounds; None unless known for every round
    steal_ms: float | None
    #: segments the senders retransmitted per round, and in all (None: not known, and why)
    round_retransmits: Sequence[int | None] = ()
    retransmits: int | None = None
    retransmits_not_counted: str | None = None


@dataclass(frozen=True)
class Setup:
    """How the benchmark ran: placement, socket options, round length."""

    placement: Mapping[str, object]
    #: None: no sink (the transmit-only target)
    sink_recv_buffer: int | None
    tcp_nodelay: bool
    round_target_seconds: float
    tcp_congestion: str
    #: the zero-copy senders' totals over the measured rounds (zero_copy only)
    zerocopy: Mapping[str, int] | None = None
    #: the sink ran on another host through a peer command (--netcopy-peer)
    peer: bool = False
    #: where the senders sent: "sink" (verified) or "blackhole" (transmit only, issue 15)
    target: str = "sink"


@dataclass(frozen=True)
class PerByte:
    """The figures derived from counts; None wherever a count behind one is missing."""

    cpu_ns_per_byte: float | None
    sink_cpu_ns_per_byte: float | None
    cycles_per_byte: float | None
    instructions_per_byte: float | None
    ipc: float | None
    context_switches_per_mb: float | None

    def to_extra_info(self) -> dict[str, float | None]:
        return {
            "cpu_ns_per_byte": self.cpu_ns_per_byte,
            "sink_cpu_ns_per_byte": self.sink_cpu_ns_per_byte,
            "cycles_per_byte": self.cycles_per_byte,
            "instructions_per_byte": self.instructions_per_byte,
            "ipc": self.ipc,
            "context_switches_per_mb": self.context_switches_per_mb,
        }


@dataclass(frozen=True)
class CounterFigures:
    """The counters of the measured rounds and the syscall pass."""

    counters: Counts
    sink_counters: Counts
    per_byte: PerByte
    #: per-message syscall counts by name (None: no pass)
    syscalls_per_message: Mapping[str, Any] | None = None
    sink_syscalls_per_message: Mapping[str, Any] | None = None
    #: per measured round (None: nothing counted per round)
    rounds_cpu_ns_per_byte: list[float | None] | None = None

    def to_extra_info(self) -> dict[str, Any]:
        """The top-level entries (the per-round ones are :meth:`round_entries`)."""
        return {
            "counters": dict(self.counters),
            "sink_counters": dict(self.sink_counters),
            **self.per_byte.to_extra_info(),
            "syscalls_per_message": _plain(self.syscalls_per_message),
            "sink_syscalls_per_message": _plain(self.sink_syscalls_per_message),
        }

    def round_entries(self) -> dict[str, Any]:
        if self.rounds_cpu_ns_per_byte is None:
            return {}
        return {"cpu_ns_per_byte": self.rounds_cpu_ns_per_byte}


@dataclass(frozen=True)
class ControlFigures:
    """The control's own figures, and the measured rounds' ratios to it."""

    mode: str
    messages_per_round: int
    throughput_gbps: float
    cpu_ns_per_byte: float | None
    verified_bytes: int
    rounds_throughput_gbps: list[float]
    rounds_cpu_ns_per_byte: list[float | None] | None
    throughput_vs_control: float | None
    cpu_vs_control: float | None
    rounds_throughput_vs_control: list[float | None]
    rounds_cpu_vs_control: list[float | None] | None

    def to_extra_info(self) -> dict[str, Any]:
        """The top-level entries (the per-round ratios are :meth:`round_entries`)."""
        control = {
            "mode": self.mode,
            "messages_per_round": self.messages_per_round,
            "throughput_gbps": self.throughput_gbps,
            "cpu_ns_per_byte": self.cpu_ns_per_byte,
            "verified_bytes": self.verified_bytes,
            "rounds": {
                "throughput_gbps": self.rounds_throughput_gbps,
                "cpu_ns_per_byte": self.rounds_cpu_ns_per_byte,
            },
        }
        return {
            "control": control,
            "throughput_vs_control": self.throughput_vs_control,
            "cpu_vs_control": self.cpu_vs_control,
        }

    def round_entries(self) -> dict[str, Any]:
        return {
            "throughput_vs_control": self.rounds_throughput_vs_control,
            "cpu_vs_control": self.rounds_cpu_vs_control,
        }


@dataclass(frozen=True)
class UserTimeFigures:
    """The user-time pass: the figure (None unless status ``ok``) and how it was measured."""

    status: str
    reason: str | None
    #: sampled rounds that ran
    rounds: int
    sample_period_ns: int
    #: what the samplers recorded; None when no sampled round ran
    samples: int | None
    lost: int | None
    throttled: int | None
    user_cpu_ns_per_byte: float | None
    #: per round, the gate's samples (empty unless status ``ok``)
    pass_rounds: list[float]

    def to_extra_info(self) -> dict[str, Any]:
        return {
            "user_cpu_ns_per_byte": self.user_cpu_ns_per_byte,
            "user_time": {
                "status": self.status,
                "reason": self.reason,
                "rounds": self.rounds,
                "sample_period_ns": self.sample_period_ns,
                "samples": self.samples,
                "lost": self.lost,
                "throttled": self.throttled,
            },
            "pass_rounds": {"user_cpu_ns_per_byte": self.pass_rounds},
        }


@dataclass(frozen=True)
class UserInstructionFigures:
    """The instruction-count pass: the sender's user-mode instructions per message.

    A count, not a timing: (I(2N) - I(N)) / N of two passes of N and 2N messages
    (docs/instruction-counts.md). None unless status ``ok``.
    """

    status: str
    #: "pmu" or "valgrind-cachegrind"; None: no way to count was available
    method: str | None
    #: N, the messages of the first pass (the second sends 2N)
    messages: int | None
    passes: int
    reason: str | None
    user_instructions_per_message: float | None

    def to_extra_info(self) -> dict[str, Any]:
        return {
            "user_instructions_per_message": self.user_instructions_per_message,
            "user_instructions": {
                "status": self.status,
                "method": self.method,
                "messages": self.messages,
                "passes": self.passes,
                "reason": self.reason,
            },
        }


@dataclass(frozen=True)
class GateRounds:
    """Rounds measured beyond ``--netcopy-rounds`` because the gate was undecided (issue 12):
    how many, the round counts at each look, the budget, and why they stopped."""

    added: int
    looks: list[int]
    max_rounds: int
    reason: str

    def to_extra_info(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "looks": list(self.looks),
            "max_rounds": self.max_rounds,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class BenchmarkRecord:
    """Everything one benchmark records (docs/results-schema.md)."""

    throughput: Throughput
    setup: Setup
    counters: CounterFigures
    #: None: ran without a control
    control: ControlFigures | None = None
    #: None: no user-time pass
    user: UserTimeFigures | None = None
    #: None: no instruction-count pass (--netcopy-instructions)
    instructions: UserInstructionFigures | None = None
    #: None: no look by the gate (no gate, or no baseline)
    gate_rounds: GateRounds | None = None
    #: None: TCP_INFO not read (no TCP connections)
    tcp_info: TcpInfoFigures | None = None
    #: None: a stream; a request/response benchmark's round trips (issue 16)
    rr: RrFigures | None = None
    #: "tcp" or "udp" (the mode's transport)
    transport: str = "tcp"
    #: None: TCP, or a UDP benchmark where nothing receives (docs/udp.md)
    udp: UdpFigures | None = None

    def to_extra_info(self) -> dict[str, Any]:
        t, s = self.throughput, self.setup
        info: dict[str, Any] = {
            "netcopy_schema": SCHEMA_VERSION,
            "mode": t.mode,
            "size": t.size,
            "threads": t.threads,
            "pattern": "stream" if self.rr is None else "rr",
            "messages_per_round": t.messages_per_round,
            "messages_per_connection": t.messages_per_connection,
            "bytes_per_round": t.bytes_per_round,
            "throughput_gbps": t.throughput_gbps,
            "throughput_gbps_per_connection": t.throughput_gbps_per_connection,
            "messages_per_second": t.messages_per_second,
            "ns_per_message": t.ns_per_message,
            "rounds": self._rounds(),
            "integrity": integrity_entry(s.target, t.verified_bytes),
            "steal_ms": t.steal_ms,
            "retransmits": t.retransmits,
            "placement": dict(s.placement),
            "sink_recv_buffer": s.sink_recv_buffer,
            "tcp_nodelay": s.tcp_nodelay,
            "round_target_seconds": s.round_target_seconds,
            "peer": s.peer,
            "target": s.target,
            "transport": self.transport,
        }
        if self.udp is not None:
            info["udp"] = self.udp.to_extra_info()
        if t.retransmits is None and t.retransmits_not_counted:
            info["retransmits_not_counted"] = t.retransmits_not_counted
        if s.zerocopy is not None:
            info.update(zerocopy_entries(s.zerocopy))
        info["tcp_congestion"] = s.tcp_congestion
        if self.tcp_info is not None:
            info["tcp_info"] = self.tcp_info.to_extra_info()
        if self.rr is not None:
            info.update(self.rr.to_extra_info())
        info.update(self.counters.to_extra_info())
        if self.control is not None:
            info.update(self.control.to_extra_info())
        if self.user is not None:
            info.update(self.user.to_extra_info())
        if self.instructions is not None:
            info.update(self.instructions.to_extra_info())
        if self.gate_rounds is not None:
            info["gate_rounds"] = self.gate_rounds.to_extra_info()
        return info

    def _rounds(self) -> dict[str, Any]:
        t = self.throughput
        rounds: dict[str, Any] = {
            "seconds": t.round_seconds,
            "throughput_gbps": t.round_throughput_gbps,
            "steal_ms": t.round_steal_ms,
            "retransmits": list(t.round_retransmits),
            **self.counters.round_entries(),
            **(self.tcp_info.round_entries() if self.tcp_info is not None else {}),
        }
        if self.control is not None:
            rounds.update(self.control.round_entries())
        if self.rr is not None:
            rounds.update(self.rr.round_entries())
        if self.udp is not None:
            rounds.update(self.udp.round_entries())
        return rounds


@dataclass(frozen=True)
class IntegrityFailure:
    """What a benchmark whose payload arrived corrupted records: who, and the sink's words."""

    mode: str
    size: int
    threads: int
    error: str
    pattern: str = "stream"

    def to_extra_info(self) -> dict[str, Any]:
        return {
            "netcopy_schema": SCHEMA_VERSION,
            "mode": self.mode,
            "size": self.size,
            "threads": self.threads,
            "pattern": self.pattern,
            "integrity": {"ok": False, "error": self.error},
        }


#: the integrity note of a result on the transmit-only (blackhole) target
TRANSMIT_ONLY_NOTE = "transmit only: nothing receives, payload not verified"
#: what a kernel that copies forwarded zero-copy datagrams gets told (issue 15)
KERNEL_COPIES_NOTE = (
    "this kernel copies forwarded zero-copy datagrams: zero-copy never takes effect on one host "
    "here"
)


def integrity_entry(target: str, verified_bytes: int) -> dict[str, Any]:
    """``integrity``: the sink's verdict, or on the transmit-only target none (``ok`` null)."""
    if target == "blackhole":
        return {"ok": None, "verified_bytes": 0, "note": TRANSMIT_ONLY_NOTE}
    return {"ok": True, "verified_bytes": verified_bytes}


def zerocopy_entries(totals: Mapping[str, int]) -> dict[str, Any]:
    """``zerocopy`` with its ``copied_fraction`` (None without completions), and
    ``zerocopy_effective``: completions came back and the kernel copied none of them."""
    completions, copied = totals.get("completions", 0), totals.get("copied", 0)
    fraction = copied / completions if completions else None
    return {
        "zerocopy": {**totals, "copied_fraction": fraction},
        "zerocopy_effective": completions > 0 and copied == 0,
    }


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)
