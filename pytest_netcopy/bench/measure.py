"""Counters around a benchmark's rounds: per sender thread, scoped to each round.

The perf binding is :mod:`pytest_netcopy.instruments.counters`; this module
decides *when* it counts and turns the counts into the figures a reader wants
(CPU ns per byte, cycles per byte, IPC, ...), never inventing a number for
something that was not counted. The untimed passes (syscalls, user time) are
in :mod:`.passes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_netcopy.instruments.counters import ThreadCounters
from pytest_netcopy.instruments.status import (
    NOT_COUNTED,
    NOT_PERMITTED,
    NOT_SUPPORTED,
    OK,
    SCALED,
    USER_ONLY,
    CounterValue,
)
from pytest_netcopy.results.record import CounterFigures, PerByte
from pytest_netcopy.transport.pool import RoundResult, SenderPool

#: the syscall pass's counts per message by name (plus ``total``, maybe ``not_counted``),
#: for the senders and for the sink
SyscallFigures = tuple[dict[str, Any], dict[str, Any]]

_MISSING_ORDER = (NOT_PERMITTED, NOT_SUPPORTED, NOT_COUNTED)


def combine(per_round: Sequence[Mapping[str, CounterValue]]) -> dict[str, CounterValue]:
    """Counts of several rounds as one: summed where every round counted, else why not."""
    if not per_round:
        return {}
    out: dict[str, CounterValue] = {}
    for event in per_round[0]:
        values = [r[event] for r in per_round]
        missing = [v["status"] for v in values if v["value"] is None]
        fractions = [v["running_fraction"] for v in values if v["running_fraction"] is not None]
        fraction = min(fractions) if fractions else None
        if missing:
            status = next(s for s in (*_MISSING_ORDER, *missing) if s in missing)
            out[event] = CounterValue(value=None, status=status, running_fraction=fraction)
            continue
        statuses = {v["status"] for v in values}
        status = USER_ONLY if USER_ONLY in statuses else SCALED if SCALED in statuses else OK
        total = sum(float(v["value"] or 0.0) for v in values)
        out[event] = CounterValue(value=total, status=status, running_fraction=fraction)
    return out


class RoundCounters:
    """Hardware and software counters on a pool's sender threads, one region per round."""

    def __init__(self, pool: SenderPool, events: Sequence[str]) -> None:
        self.pool = pool
        self.counters = ThreadCounters(pool.tids, events) if events else None
        self.per_round: list[dict[str, CounterValue]] = []

    def __enter__(self) -> RoundCounters:
        if self.counters is not None:
            self.counters.open()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.counters is not None:
            self.counters.close()

    def run(self, round_: Callable[[], RoundResult]) -> RoundResult:
        """One round with the counters enabled only while it runs."""
        c = self.counters
        if c is None:
            return round_()
        before = c.read()
        c.enable()
        try:
            result = round_()
        finally:
            c.disable()
        self.per_round.append(c.delta(before, c.read()))
        return result

    def fallback_hint(self) -> str | None:
        return self.counters.fallback_hint() if self.counters is not None else None


def sink_counters(rounds: Sequence[RoundResult]) -> dict[str, CounterValue]:
    """The sink's receiving threads, from what each measured itself per round.

    task-clock is the threads' CPU time (CLOCK_THREAD_CPUTIME_ID, what perf's
    task-clock counts), context switches are getrusage(RUSAGE_THREAD)'s
    voluntary + involuntary switches: the sink stays standard-library only.
    """
    cpu = sum(a.cpu_ns for r in rounds for a in r.acks)
    switches = sum(a.voluntary_switches + a.involuntary_switches for r in rounds for a in r.acks)
    return {
        "task-clock": CounterValue(value=float(cpu), status=OK, running_fraction=1.0),
        "context-switches": CounterValue(value=float(switches), status=OK, running_fraction=1.0),
    }


def _value(counters: Mapping[str, CounterValue], event: str) -> float | None:
    entry = counters.get(event)
    return None if entry is None else entry["value"]


def _ratio(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b * scale


def derived(
    counters: Mapping[str, CounterValue],
    sink: Mapping[str, CounterValue],
    total_bytes: int,
) -> PerByte:
    """The per-byte figures; None wherever the counter behind one was not counted."""
    cycles = _value(counters, "cycles")
    instructions = _value(counters, "instructions")
    return PerByte(
        cpu_ns_per_byte=_ratio(_value(counters, "task-clock"), total_bytes),
        sink_cpu_ns_per_byte=_ratio(_value(sink, "task-clock"), total_bytes),
        cycles_per_byte=_ratio(cycles, total_bytes),
        instructions_per_byte=_ratio(instructions, total_bytes),
        ipc=_ratio(instructions, cycles),
        context_switches_per_mb=_ratio(_value(counters, "context-switches"), total_bytes, 1e6),
    )


def per_round_cpu_ns_per_byte(
    per_round: Sequence[Mapping[str, CounterValue]], bytes_per_round: int
) -> list[float | None]:
    return [_ratio(_value(r, "task-clock"), bytes_per_round) for r in per_round]


def counter_figures(
    per_round: Sequence[Mapping[str, CounterValue]],
    rounds: Sequence[RoundResult],
    bytes_per_round: int,
    syscalls: SyscallFigures | None = None,
) -> CounterFigures:
    """The measured rounds' counts (``per_round``, one per round) and what they mean.

    ``syscalls`` is the syscall pass's per-message counts (senders, sink); None
    when there was none.
    """
    counters = combine(per_round)
    sink = sink_counters(rounds)
    return CounterFigures(
        counters=counters,
        sink_counters=sink,
        per_byte=derived(counters, sink, bytes_per_round * len(rounds)),
        syscalls_per_message=syscalls[0] if syscalls is not None else None,
        sink_syscalls_per_message=syscalls[1] if syscalls is not None else None,
        rounds_cpu_ns_per_byte=(
            per_round_cpu_ns_per_byte(per_round, bytes_per_round) if per_round else None
        ),
    )
