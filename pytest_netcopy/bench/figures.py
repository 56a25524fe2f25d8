"""What the measured rounds mean: throughput, steal, zero-copy totals, the ratios to the control.

Each function turns rounds into one typed piece of :mod:`pytest_netcopy.results.record`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pytest_netcopy.results.record import ControlFigures, Throughput
from pytest_netcopy.send.builtin import BareSend
from pytest_netcopy.transport.pool import RoundResult

#: a sender's zero-copy stats (None: not a zero-copy sender)
ZerocopyStats = dict[str, int] | None


def throughput(
    mode: str, size: int, threads: int, count: int, rounds: Sequence[RoundResult]
) -> Throughput:
    """The figures of ``rounds`` of ``count`` messages per connection: the median round's."""
    bytes_per_round = count * threads * size
    messages = count * threads
    seconds = [r.seconds for r in rounds]
    median = statistics.median(seconds)
    gbps = bytes_per_round * 8 / median / 1e9
    return Throughput(
        mode=mode,
        size=size,
        threads=threads,
        messages_per_round=messages,
        messages_per_connection=count,
        bytes_per_round=bytes_per_round,
        throughput_gbps=gbps,
        throughput_gbps_per_connection=gbps / threads,
        messages_per_second=messages / median,
        ns_per_message=median / messages * 1e9,
        round_seconds=seconds,
        round_throughput_gbps=[bytes_per_round * 8 / s / 1e9 for s in seconds],
        round_steal_ms=[r.steal_ms for r in rounds],
        verified_bytes=sum(r.verified_bytes for r in rounds),
        steal_ms=total_steal_ms(rounds),
        round_retransmits=[r.retransmits for r in rounds],
        **total_retransmits(rounds),
    )


def total_retransmits(rounds: Sequence[RoundResult]) -> dict[str, Any]:
    """Retransmitted segments over the measured rounds; None (and why) unless known for each."""
    unknown = [r for r in rounds if r.retransmits is None]
    if unknown or not rounds:
        why = unknown[0].retransmits_not_counted if unknown else "no measured rounds"
        return {"retransmits": None, "retransmits_not_counted": why}
    return {"retransmits": sum(r.retransmits or 0 for r in rounds)}


def total_steal_ms(rounds: Sequence[RoundResult]) -> float | None:
    """Hypervisor steal over the measured rounds (ms); None unless known for every round."""
    values = [r.steal_ms for r in rounds]
    if not values or any(v is None for v in values):
        return None
    return math.fsum(v for v in values if v is not None)


def zerocopy_totals(
    before: Sequence[ZerocopyStats], after: Sequence[ZerocopyStats]
) -> dict[str, int] | None:
    """What the zero-copy senders counted between two reads of their stats, summed."""
    if not after or after[0] is None:
        return None
    totals: dict[str, int] = {}
    for b, a in zip(before, after, strict=True):
        assert a is not None
        for key, value in a.items():
            totals[key] = totals.get(key, 0) + value - (b or {}).get(key, 0)
    return totals


def compare_to_control(
    rounds: Sequence[RoundResult],
    cpu: Sequence[float | None] | None,
    control_rounds: Sequence[RoundResult],
    control_cpu: list[float | None] | None,
) -> ControlFigures:
    """The control's own figures and the measured rounds' ratios to it.

    The control runs one round before every measured round and one after the
    last (``len(rounds) + 1`` control rounds), so measured round i sits
    between control rounds i and i+1. It is divided by the median of the
    control rounds nearest to it, up to two on each side (i-1 .. i+2): they saw
    the machine in the same state, a steady drift cancels, and one disturbed
    control round does not skew the ratios of its neighbours. The headline
    ratios are the medians of the per-round ratios.
    """
    if len(control_rounds) != len(rounds) + 1:
        raise ValueError(
            f"{len(control_rounds)} control rounds for {len(rounds)} rounds: "
            "expected one before each and one after the last"
        )
    control_gbps = [_gbps(r) for r in control_rounds]
    tp_ratio = _ratios([_gbps(r) for r in rounds], control_gbps)
    cpu_ratio = _ratios(cpu, control_cpu) if cpu is not None and control_cpu is not None else None
    return ControlFigures(
        mode=BareSend.name,
        messages_per_round=control_rounds[0].messages,
        throughput_gbps=statistics.median(control_gbps),
        cpu_ns_per_byte=_median(control_cpu),
        verified_bytes=sum(r.verified_bytes for r in control_rounds),
        rounds_throughput_gbps=control_gbps,
        rounds_cpu_ns_per_byte=control_cpu,
        throughput_vs_control=_median(tp_ratio),
        cpu_vs_control=_median(cpu_ratio),
        rounds_throughput_vs_control=tp_ratio,
        rounds_cpu_vs_control=cpu_ratio,
    )


def control_figures(
    rounds: Sequence[RoundResult],
    cpu: Sequence[float | None] | None,
    control_rounds: Sequence[RoundResult],
    control_cpu: list[float | None] | None,
) -> dict[str, Any]:
    """:func:`compare_to_control` as its part of ``extra_info``, its per-round entries under
    ``rounds`` (for scripts that write results of their own, like the gate's fixtures)."""
    figures = compare_to_control(rounds, cpu, control_rounds, control_cpu)
    return {**figures.to_extra_info(), "rounds": figures.round_entries()}


def _gbps(r: RoundResult) -> float:
    return r.bytes * 8 / r.seconds / 1e9


def _ratios(own: Sequence[float | None], ref: Sequence[float | None]) -> list[float | None]:
    """Round i over the median of the control rounds i-1 .. i+2 that have a value."""
    out: list[float | None] = []
    for i, value in enumerate(own):
        known = [v for v in ref[max(0, i - 1) : i + 3] if v is not None]
        near = statistics.median(known) if known else None
        out.append(None if value is None or not near else value / near)
    return out


def _median(values: Sequence[float | None] | None) -> float | None:
    known = [v for v in values or [] if v is not None]
    return statistics.median(known) if known else None
