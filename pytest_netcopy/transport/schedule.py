"""The open-loop schedule of request/response (``--netcopy-rr-rate``), with an injectable clock.

Transaction k of a round is due at ``start + k * interval``. The sender waits for it when
early; when late (a slow response, a stall) it sends at once to catch up. Each latency is
measured from when the transaction was DUE, not from when it was sent, so a stall of S
shows in every transaction that came due during it (S, S - interval, S - 2 x interval,
...): no coordinated omission (wrk2; HdrHistogram's expected-interval correction).
docs/latency.md.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

#: the last stretch before a due time is spun, not slept (sleep's timer slack is ~50 µs)
SPIN_NS = 100_000
#: a transaction is late when it starts more than this many intervals after it was due
LATE_INTERVALS = 1.0
#: the schedule counts as kept unless the achieved rate falls short of the offered one
#: by more than this fraction ...
RATE_SHORTFALL = 0.05
#: ... or more than this fraction of the transactions were late
LATE_FRACTION = 0.05

Clock = Callable[[], int]


def wait_until(due: int, clock: Clock = time.perf_counter_ns) -> None:
    """Return at ``due`` (ns of ``clock``): sleep most of the way, spin the rest."""
    left = due - clock()
    if left > SPIN_NS:
        time.sleep((left - SPIN_NS) / 1e9)
    while clock() < due:
        pass


@dataclass
class ScheduleRun:
    """One connection's round on the schedule."""

    transactions: int
    #: transactions that started more than LATE_INTERVALS intervals after they were due
    late: int
    #: ns from the first transaction's due time to the last one's end
    span_ns: int


@dataclass
class Schedule:
    """A fixed rate per connection; ``clock``/``wait`` are injectable (tests use a fake clock)."""

    rate: float
    clock: Clock = time.perf_counter_ns
    wait: Callable[[int], None] | None = None

    @property
    def interval_ns(self) -> float:
        return 1e9 / self.rate

    def run(
        self,
        count: int,
        transact: Callable[[int], None],
        out: array[int],
        check: Callable[[int], None] | None = None,
    ) -> ScheduleRun:
        """``transact(k)`` for k in 0..count-1, each when due; ``out[k]``: its latency in ns
        from its due time to its end; then ``check(k)`` (untimed)."""
        clock, interval = self.clock, self.interval_ns
        wait = self.wait or (lambda due: wait_until(due, clock))
        late_ns = LATE_INTERVALS * interval
        late = 0
        start = clock()
        end = start
        for k in range(count):
            due = start + round(k * interval)
            now = clock()
            if now < due:
                wait(due)
            elif now - due > late_ns:
                late += 1
            transact(k)
            end = clock()
            out[k] = end - due
            if check is not None:
                check(k)
        return ScheduleRun(count, late, end - start)


def kept_schedule(offered: float, achieved: float, late_fraction: float) -> bool:
    """Whether the senders kept the offered rate (see RATE_SHORTFALL and LATE_FRACTION)."""
    return achieved >= offered * (1 - RATE_SHORTFALL) and late_fraction <= LATE_FRACTION
