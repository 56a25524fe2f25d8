"""The untimed passes after the measured rounds: syscalls per message, user-mode CPU time,
user-mode instructions per message.

Each pass runs rounds of its own with an instrument on that would slow a timed
round (a syscall tracepoint slows every syscall on the machine; a 10 kHz
sampler slows rounds by 16-21%), so neither ever overlaps a measured round.
The instruments only switch around a round and read; the rounds are run here.
"""

from __future__ import annotations

import atexit
import pickle
import statistics
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pytest_netcopy.bench.measure import SyscallFigures
from pytest_netcopy.instruments.cachegrind import (
    VALGRIND_HINT,
    CachegrindServer,
    CountError,
    find_valgrind,
    real_python,
)
from pytest_netcopy.instruments.counters import SyscallCounters
from pytest_netcopy.instruments.instructions import EVENT as INSTRUCTIONS
from pytest_netcopy.instruments.instructions import UserInstructions
from pytest_netcopy.instruments.perf_abi import PerfSys, SamplingSys
from pytest_netcopy.instruments.status import LOST, NOT_COUNTED, OK, THROTTLED, CounterValue
from pytest_netcopy.instruments.usertime import SAMPLE_PERIOD_NS, Drained, SamplerError, UserTime
from pytest_netcopy.results.record import UserInstructionFigures, UserTimeFigures
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
#: why with the transmit-only (blackhole) target
NO_SINK_REASON = "not counted: transmit only, nothing receives"


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
    why = NO_SINK_REASON if getattr(pool, "transmit_only", None) else REMOTE_SINK_REASON
    sink.update(total=None, not_counted=dict.fromkeys(SINK_SYSCALLS, why))
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


# ---------------------------------------------------------------------------
# The instruction-count pass (user_instructions_per_message)

#: messages in the first of the two counting passes (the second sends twice as many)
INSTRUCTION_MESSAGES = 100
#: seconds a counting child may take under valgrind (a count takes 0.3-2.6 s on our VM);
#: a mode slower than that is not counted, with the reason
COUNT_LIMIT = 10.0
#: the program the valgrind counting process runs
COUNT_PROGRAM = "pytest_netcopy.bench.countproc"
PMU, VALGRIND = "pmu", "valgrind-cachegrind"


def pmu_instruction_pass(
    pool: SenderPool, count: int, *, sys: PerfSys | None = None
) -> UserInstructionFigures | None:
    """Two untimed rounds of ``count`` and ``2 * count`` messages per thread with
    user-mode ``instructions`` on the sender threads; None where there is no PMU."""
    counted: list[tuple[float, int]] = []
    with UserInstructions(pool.tids, sys=sys) as counter:
        for n in (count, 2 * count):
            with counter.region() as got:
                result = pool.run_round(n)
            value = got[INSTRUCTIONS]["value"]
            if value is None:
                return None
            counted.append((value, result.messages))
    (first, m1), (second, m2) = counted
    per_message = (second - first) / (m2 - m1)
    return UserInstructionFigures(OK, PMU, m1, 2, None, per_message)


class InstructionCounter:
    """Counts a mode's user-mode instructions per message under valgrind: one counting
    process for the session (started on first use), one count per mode and size."""

    def __init__(
        self,
        timeout: float,
        *,
        which: Callable[[], str | None] = find_valgrind,
        messages: int = INSTRUCTION_MESSAGES,
    ) -> None:
        self.timeout = timeout
        self.which = which
        self.messages = messages
        self.server: CachegrindServer | None = None
        self._counted: dict[tuple[bytes, int], UserInstructionFigures] = {}

    def count(self, mode: object, size: int) -> UserInstructionFigures:
        """The count of ``mode`` at ``size`` bytes per message (one connection)."""
        try:
            key = (pickle.dumps(mode), size)
        except Exception as exc:
            return self._failed(f"the mode cannot be loaded in another process: {exc}")
        if key not in self._counted:
            self._counted[key] = self._count(key[0], size)
        return self._counted[key]

    def forget(self) -> None:
        """Count again from now on (the stability script measures repeated counts)."""
        self._counted.clear()

    def _count(self, mode: bytes, size: int) -> UserInstructionFigures:
        try:
            server = self._server()
            first, second = server.count(mode, size, self.messages, sys.path)
        except CountError as exc:
            return self._failed(str(exc))
        per_message = (second - first) / self.messages
        return UserInstructionFigures(OK, VALGRIND, self.messages, 2, None, per_message)

    def _server(self) -> CachegrindServer:
        if self.server is None:
            valgrind = self.which()
            if valgrind is None:
                raise CountError(VALGRIND_HINT)
            limit = min(self.timeout, COUNT_LIMIT)
            server = CachegrindServer(valgrind, real_python(), COUNT_PROGRAM, limit)
            try:
                server.start()
            except BaseException:
                server.close()
                raise
            self.server = server
        return self.server

    def _failed(self, reason: str) -> UserInstructionFigures:
        method = None if reason == VALGRIND_HINT else VALGRIND
        return UserInstructionFigures(NOT_COUNTED, method, None, 2, reason, None)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


_shared: InstructionCounter | None = None


def shared_counter(timeout: float) -> InstructionCounter:
    """The process's one :class:`InstructionCounter` (closed at exit)."""
    global _shared
    if _shared is None:
        _shared = InstructionCounter(timeout)
        atexit.register(close_shared_counter)
    return _shared


def close_shared_counter() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None
