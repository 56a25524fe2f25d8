"""One request/response benchmark (issue 16): the run's steps for the ``rr`` pattern.

Like a stream's (:class:`~pytest_netcopy.bench.run.BenchmarkRun`): open, calibrate, warm up,
measured rounds (timed by pytest-benchmark), record. Differences: the connections are an
:class:`~pytest_netcopy.transport.rr.RrPool`; there is no control send; the rounds are long
enough for the tail: the measured rounds hold at least ``rr_transactions`` transactions in
all (docs/latency.md). The counters are not on the measured rounds: an enabled perf event
adds its work to every context switch of the thread, and a round trip is two of them on
the sender (measured +1.1 to +5.6 µs at p50, docs/latency.md). They count one round after
the measured ones instead, as long as the warm-up round, on the same connections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_netcopy.bench.calibration import messages_for
from pytest_netcopy.bench.measure import RoundCounters, counter_figures
from pytest_netcopy.bench.run import BenchmarkRun, Connections
from pytest_netcopy.results.record import BenchmarkRecord, IntegrityFailure
from pytest_netcopy.results.rr import BEYOND, PERCENTILES, RrFigures, RrRate
from pytest_netcopy.send.modes import ModeUnsupported
from pytest_netcopy.transport.pool import RoundResult
from pytest_netcopy.transport.rr import RrPool, RrRound, new_histogram
from pytest_netcopy.transport.schedule import kept_schedule

#: transactions per connection in the first closed-loop probe round
PROBE_START = 50


def transactions_per_round(by_time: int, minimum: int, rounds: int, threads: int) -> int:
    """Transactions per connection in a measured round: ``by_time`` (rounds of the target
    length), raised so that ``rounds`` rounds over ``threads`` connections hold ``minimum``."""
    return max(1, by_time, math.ceil(minimum / (max(1, rounds) * threads)))


@dataclass
class RrRun(BenchmarkRun):
    """A request/response benchmark of ``mode``: ``size``-byte requests over ``threads``
    connections, closed loop or at ``rate`` transactions/s per connection."""

    rate: float | None = None
    rr_rounds: list[RrRound] = field(default_factory=list)
    #: transactions per connection in the counted round (the warm-up round's)
    counted_count: int = 0
    #: the counted round, once it ran (None: not yet, or counters off)
    counted: RoundResult | None = None

    @property
    def pool(self) -> RrPool:
        pool = self.opened.pool
        assert isinstance(pool, RrPool)
        return pool

    def open(self) -> Connections:
        s = self.settings
        if self.sink is None:
            raise ModeUnsupported("request/response needs a sink (the blackhole target only sends)")
        pool = self._stack.enter_context(
            RrPool(
                self.sink, self.mode, self.size, self.threads,
                response_size=s.response_size, timeout=s.timeout, rate=self.rate,
                nodelay=s.rr_nodelay, congestion=s.congestion,
                cpus=self.placement.sender_cpus if self.placement.pinned else (),
            )
        )  # fmt: skip
        # not entered here: the counters are opened for the counted round only (passes)
        return Connections(pool, RoundCounters(pool, s.counters), None)

    def calibrate(self, opened: Connections) -> None:
        """Closed loop: probe rounds for the round length; open: the rate sets it. Then
        at least enough for ``rr_transactions``, and the warm-up rounds."""
        s, pool = self.settings, opened.pool
        if self.rate is None:
            by_time = messages_for(lambda n: pool.run_round(n).seconds, s.round_time, PROBE_START)
        else:
            by_time = math.ceil(self.rate * s.round_time)
        opened.count = transactions_per_round(by_time, s.rr_transactions, s.rounds, self.threads)
        self.counted_count = min(opened.count, by_time)
        for _ in range(max(1, s.warmup_rounds)):
            pool.run_round(self.counted_count)

    def control_round(self) -> None:
        """Request/response has no control rounds."""

    def measured_round(self) -> None:
        """The timed round, without counters (the module's docstring says why)."""
        pool = self.pool
        self.rounds.append(pool.run_round(self.opened.count))
        last = pool.last
        assert last is not None
        self.rr_rounds.append(last)

    def passes(self) -> None:
        """The counted round (with counters), then the end of the connections."""
        opened = self.opened
        self.zerocopy_after = [sender.stats() for sender in opened.pool.senders]
        if self.settings.counters:
            pool, count = opened.pool, self.counted_count
            with opened.counters:
                self.counted = opened.counters.run(lambda: pool.run_round(count))
        opened.pool.finish_stream()

    def record(self) -> BenchmarkRecord:
        base = super().record()
        setup = replace(base.setup, tcp_nodelay=self.settings.rr_nodelay)
        counters, counted = base.counters, self.counted
        if counted is not None:  # the counters and the sink's figures of the counted round
            counters = counter_figures(self.opened.counters.per_round, [counted], counted.bytes)
            counters = replace(counters, rounds_cpu_ns_per_byte=None)
        counted_transactions = None if counted is None else counted.messages
        rr = replace(self.rr_figures(), counted_transactions=counted_transactions)
        return replace(base, setup=setup, counters=counters, rr=rr)

    def rr_figures(self) -> RrFigures:
        return rr_figures(
            self.rr_rounds, self.settings.response_size, self.settings.rr_nodelay,
            self.rate, self.threads,
        )  # fmt: skip

    def integrity_failure(self, error: str) -> IntegrityFailure:
        return IntegrityFailure(self.mode.name, self.size, self.threads, error, pattern="rr")


def rr_figures(
    rounds: list[RrRound], response_size: int, nodelay: bool, rate: float | None, threads: int
) -> RrFigures:
    """The benchmark's figures from its measured rounds (histograms merged)."""
    merged = new_histogram()
    for r in rounds:
        merged.add(r.histogram)
    transactions = sum(r.transactions for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    return RrFigures(
        response_size=response_size,
        tcp_nodelay=nodelay,
        transactions=transactions,
        transactions_per_second=transactions / seconds if seconds > 0 else 0.0,
        percentiles_us={k: _us(merged.get_value_at_percentile(p)) for k, p in PERCENTILES.items()},
        max_us=_us(merged.get_max_value()),
        mean_us=_us(merged.get_mean_value()),
        stddev_us=_us(merged.get_stddev()),
        beyond={k: beyond(merged, PERCENTILES[k]) for k in BEYOND},
        histogram=merged.encode().decode("ascii"),
        rate=None if rate is None else rate_figures(rounds, rate, threads),
        round_p50_us=[_us(r.histogram.get_value_at_percentile(50.0)) for r in rounds],
        round_p99_us=[_us(r.histogram.get_value_at_percentile(99.0)) for r in rounds],
        round_transactions=[r.transactions for r in rounds],
        round_transactions_per_second=[r.transactions / r.seconds for r in rounds],
    )


def rate_figures(rounds: list[RrRound], rate: float, threads: int) -> RrRate:
    """Offered against achieved per connection, and the late fraction (transport/schedule.py)."""
    transactions = sum(r.transactions for r in rounds)
    span = sum(r.span_ns for r in rounds) / 1e9  # summed over the connections too
    achieved = transactions / span if span > 0 else 0.0
    late = sum(r.late for r in rounds) / transactions if transactions else 0.0
    return RrRate(rate, achieved, kept_schedule(rate, achieved, late), late)


def beyond(histogram: Any, percentile: float) -> int:
    """How many recorded values lie above the value at ``percentile``."""
    top = histogram.get_value_at_percentile(percentile)
    at_or_below = sum(
        item.count_at_value_iterated_to
        for item in histogram.get_recorded_iterator()
        if item.value_iterated_to <= top
    )
    return int(histogram.get_total_count() - at_or_below)


def _us(ns: float) -> float:
    return float(ns) / 1000.0
