"""The open-loop schedule (--netcopy-rr-rate) against a fake clock: no coordinated omission.

A stall of known length must show in the tail exactly as HdrHistogram's expected-interval
correction predicts; the expected values are computed here independently (a sorted list).
"""

from __future__ import annotations

from array import array

import pytest
from hdrh.histogram import HdrHistogram

from pytest_netcopy.bench.rr import beyond, rate_figures
from pytest_netcopy.transport.rr import RrRound, new_histogram, record_all
from pytest_netcopy.transport.schedule import Schedule, kept_schedule

INTERVAL = 1_000_000  # 1 ms: 1000 transactions/s
N = 2000


class FakeClock:
    """Time in ns that moves only when told: by a wait, or by a transaction's length."""

    def __init__(self) -> None:
        self.now = 10_000_000

    def __call__(self) -> int:
        return self.now

    def wait(self, due: int) -> None:
        assert due > self.now  # the schedule waits only when early
        self.now = due


def run_schedule(service: dict[int, int], base: int) -> tuple[list[int], int]:
    """Run N transactions at 1000/s on a fake clock; transaction k takes service.get(k, base)
    ns. Returns the recorded latencies and the late count."""
    clock = FakeClock()
    schedule = Schedule(1e9 / INTERVAL, clock=clock, wait=clock.wait)
    out = array("q", bytes(8 * N))

    def transact(k: int) -> None:
        clock.now += service.get(k, base)

    run = schedule.run(N, transact, out)
    assert run.transactions == N
    return list(out), run.late


def percentile(values: list[int], p: float) -> int:
    """HdrHistogram's definition: the smallest value with at least p% of the count at or
    below it (computed on the exact list)."""
    ordered = sorted(values)
    rank = max(1, int(p / 100 * len(ordered) + 0.5))
    return ordered[rank - 1]


def test_a_stall_shows_in_every_transaction_that_came_due_during_it() -> None:
    stall_at, m = 500, 50  # one transaction takes 50 intervals
    latencies, late = run_schedule({stall_at: m * INTERVAL}, base=0)
    # independently: the stalled one waits S, the ones due during it S - j x interval
    expected = [0] * N
    for j in range(m):
        expected[stall_at + j] = (m - j) * INTERVAL
    assert latencies == expected
    # followers j that started more than one interval after they were due: j = 1 .. m-2
    assert late == m - 2


def test_the_tail_is_what_hdrhistograms_expected_interval_correction_predicts() -> None:
    stall_at, m = 700, 80
    latencies, _ = run_schedule({stall_at: m * INTERVAL}, base=0)
    ours = new_histogram()
    record_all(ours, latencies)
    # the coordinated tester: it would have sent N - (m - 1) requests (none while stalled),
    # seen the stall once, and corrected it with the expected interval
    corrected = HdrHistogram(1_000, 60_000_000_000, 3)
    for _ in range(N - m):
        corrected.record_value(0)
    corrected.record_corrected_value(m * INTERVAL, INTERVAL)
    assert corrected.get_total_count() == ours.get_total_count() == N
    for p in (50.0, 90.0, 96.0, 97.0, 98.0, 99.0, 99.9, 99.99, 100.0):
        exact = percentile(latencies, p)
        assert ours.get_value_at_percentile(p) == corrected.get_value_at_percentile(p)
        assert ours.values_are_equivalent(ours.get_value_at_percentile(p), exact), p
    # the stall: 4% of the transactions waited at least one interval
    assert percentile(latencies, 95.0) == 0
    assert percentile(latencies, 96.5) > 0
    assert ours.get_max_value() == ours.get_highest_equivalent_value(m * INTERVAL)


def test_with_a_service_time_the_followers_catch_up_by_the_spare_time() -> None:
    base, stall_at, stall = 200_000, 100, 30 * INTERVAL
    latencies, _ = run_schedule({stall_at: stall}, base=base)
    # follower j starts when j-1 ends: latency S + j x base - j x interval, while positive
    expected = [base] * N
    expected[stall_at] = stall
    j = 1
    while stall + j * base - j * INTERVAL > base:
        expected[stall_at + j] = stall + j * base - j * INTERVAL
        j += 1
    assert latencies == expected
    histogram = new_histogram()
    record_all(histogram, latencies)
    top = sorted(latencies)[-1 - int(N * 0.01)]  # p99 of the exact list
    assert histogram.values_are_equivalent(histogram.get_value_at_percentile(99.0), top)
    assert beyond(histogram, 99.0) == sum(
        1 for v in latencies if not histogram.values_are_equivalent(v, top) and v > top
    )


def test_a_coordinated_measurement_would_have_hidden_the_stall() -> None:
    """The same stall timed from when each request was SENT: one slow sample only."""
    m = 50
    latencies, _ = run_schedule({500: m * INTERVAL}, base=0)
    sent_timed = [0] * N
    sent_timed[500] = m * INTERVAL
    assert percentile(sent_timed, 99.0) == 0  # the flattering tail
    assert percentile(latencies, 99.0) >= 30 * INTERVAL  # the honest one


def test_kept_schedule_is_false_when_short_of_the_rate_or_often_late() -> None:
    assert kept_schedule(1000.0, 990.0, 0.0)
    assert not kept_schedule(1000.0, 940.0, 0.0)
    assert not kept_schedule(1000.0, 1000.0, 0.06)
    assert kept_schedule(1000.0, 1000.0, 0.05)


def test_rate_figures_from_the_rounds() -> None:
    # two connections, 1000 each in 1.0 s and 1.25 s of schedule: 2000 / 2.25 s per connection
    rnd = RrRound(new_histogram(), transactions=2000, seconds=1.25, late=150,
                  span_ns=2_250_000_000)  # fmt: skip
    rate = rate_figures([rnd], 1000.0, 2)
    assert rate.achieved_per_connection == pytest.approx(2000 / 2.25)
    assert rate.late_fraction == pytest.approx(150 / 2000)
    assert rate.kept_schedule is False
    assert rate.offered_per_connection == 1000.0


def test_a_sender_that_keeps_up_waits_for_each_due_time() -> None:
    clock = FakeClock()
    waits: list[int] = []

    def wait(due: int) -> None:
        waits.append(due - clock.now)
        clock.wait(due)

    schedule = Schedule(2000.0, clock=clock, wait=wait)
    out = array("q", bytes(8 * 10))

    def transact(k: int) -> None:
        clock.now += 100_000

    run = schedule.run(10, transact, out)
    assert list(out) == [100_000] * 10
    assert waits == [400_000] * 9  # 500 µs apart, 100 µs of work
    assert run.late == 0
    assert run.span_ns == 9 * 500_000 + 100_000
