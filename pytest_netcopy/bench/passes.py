"""The untimed passes after the measured rounds: syscalls per message, user-mode CPU time.

Each pass runs rounds of its own with an instrument on that would slow a timed
round (a syscall tracepoint slows every syscall on the machine; a 10 kHz
sampler slows rounds by 16-21%), so neither ever overlaps a measured round.
The instruments only switch around a round and read; the rounds are run here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from pytest_netcopy.bench.measure import SyscallFigures
from pytest_netcopy.instruments.counters import SyscallCounters
from pytest_netcopy.instruments.perf_abi import SamplingSys
from pytest_netcopy.instruments.status import LOST, NOT_COUNTED, OK, THROTTLED, CounterValue
from pytest_netcopy.instruments.usertime import SAMPLE_PERIOD_NS, Drained, SamplerError, UserTime
from pytest_netcopy.results.record import UserTimeFigures
from pytest_netcopy.transport.pool import SenderPool

#: what the sender threads may call during a round (Python's send/sendall is sendto)
SENDER_SYSCALLS = ("sendto", "sendmsg", "recvmsg", "poll", "setsockopt")
#: what a sink thread calls to receive (recv_into is recvfrom)
SINK_SYSCALLS = ("recvfrom",)

#: untimed rounds of the user-time pass by default (6 + 6 rounds: an exact
#: Mann-Whitney test can reach p = 0.002 < the gate's 0.01)
DEFAULT_ROUNDS = 6
#: the reason recorded (in the JSON, word for word) for a user-time pass of no
#: rounds; the bench knows which setting that is
NO_ROUNDS_REASON = "no rounds (--netcopy-user-rounds=0)"


def syscall_pass(pool: SenderPool, count: int) -> SyscallFigures:
    """One extra, untimed round with syscall tracepoints on senders and sink threads.

    An open syscall tracepoint slows every syscall on the machine, so this never
    overlaps a timed round. Returns per-message counts by name (plus ``total``)
    for the senders and for the sink; a name that could not be counted is None.
    """
    senders = SyscallCounters(pool.tids, SENDER_SYSCALLS)
    if not pool.sink.local_threads:  # issue 14: a sink on another host
        return _remote_sink_pass(pool, count, senders)
    sinks = SyscallCounters(pool.sink_tids, SINK_SYSCALLS)
    with senders, sinks:  # entering opens them
        before = (senders.read(), sinks.read())
        senders.enable()
        sinks.enable()
        try:
            result = pool.run_round(count)
        finally:
            senders.disable()
            sinks.disable()
        counted = (senders.delta(before[0], senders.read()), sinks.delta(before[1], sinks.read()))
    return _per_message(counted[0], result.messages), _per_message(counted[1], result.messages)


#: why the sink's syscalls go uncounted with a peer on another host (recorded word for word)
REMOTE_SINK_REASON = "not counted: the sink runs on the peer, its threads are not this machine's"


def _remote_sink_pass(pool: SenderPool, count: int, senders: SyscallCounters) -> SyscallFigures:
    """The syscall pass on the senders only; the sink's names None with the reason."""
    with senders:
        before = senders.read()
        senders.enable()
        try:
            result = pool.run_round(count)
        finally:
            senders.disable()
        counted = senders.delta(before, senders.read())
    sink: dict[str, Any] = dict.fromkeys(SINK_SYSCALLS)
    sink.update(total=None, not_counted=dict.fromkeys(SINK_SYSCALLS, REMOTE_SINK_REASON))
    return _per_message(counted, result.messages), sink


def _per_message(counts: Mapping[str, CounterValue], messages: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in counts.items():
        out[name] = None if value["value"] is None else value["value"] / messages
    known = [v for v in out.values() if v is not None]
    out["total"] = sum(known) if known else None
    status = {name: v["status"] for name, v in counts.items() if v["value"] is None}
    if status:
        out["not_counted"] = status
    return out


def user_pass(
    pool: SenderPool,
    count: int,
    rounds: int = DEFAULT_ROUNDS,
    *,
    sys: SamplingSys | None = None,
    period_ns: int = SAMPLE_PERIOD_NS,
) -> UserTimeFigures:
    """``rounds`` untimed rounds of ``count`` messages per thread with the samplers on.

    The figure is the median of the rounds' user ns per byte, None unless
    status ``ok``; the per-round values are the gate's samples. Without
    permission no round runs.
    """
    per_round: list[float] = []
    total = Drained()
    with UserTime(pool.tids, period_ns=period_ns, sys=sys) as sampler:
        status, reason = sampler.status, sampler.reason
        if status == OK:
            try:
                for _ in range(rounds):
                    with sampler.region() as got:
                        result = pool.run_round(count)
                    total.add(got)
                    per_round.append(got.taken * period_ns / result.bytes)
            except SamplerError as exc:
                status, reason = NOT_COUNTED, f"the user-mode samplers failed: {exc}"
    if status == OK:
        status, reason = _judge(total, per_round)
    ok = status == OK
    ran = bool(per_round)
    return UserTimeFigures(
        status=status,
        reason=reason,
        rounds=len(per_round),
        sample_period_ns=period_ns,
        samples=total.samples if ran else None,
        lost=total.lost if ran else None,
        throttled=total.throttled if ran else None,
        user_cpu_ns_per_byte=statistics.median(per_round) if ok else None,
        pass_rounds=per_round if ok else [],
    )


def _judge(total: Drained, per_round: list[float]) -> tuple[str, str | None]:
    """The status of a pass whose samplers worked: ``ok`` unless samples went missing."""
    if total.throttled:
        return THROTTLED, (
            f"the kernel throttled the samplers {total.throttled} time(s) "
            "(kernel.perf_event_max_sample_rate below 10 kHz?): samples are missing"
        )
    if total.lost or total.full:
        return LOST, (
            f"a sampler's ring buffer filled up ({total.lost} samples reported lost, "
            f"{total.full} ring(s) full at the end of a round): samples are missing"
        )
    if not per_round:
        return NOT_COUNTED, NO_ROUNDS_REASON
    return OK, None
