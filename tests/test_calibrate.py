"""runner.messages_for: the message count that makes a round last the target.

Driven by a model of a round (a fixed overhead plus a per-message time) in
place of a pool, so every rate from a few messages per second to many millions
can be tried: what is checked is the length of the round the count gives, and
how much probing it took to find it.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from pytest_netcopy.runner import (
    CALIBRATION_MARGIN,
    CALIBRATION_PROBE,
    CALIBRATION_STEPS,
    lengthen,
    messages_for,
)


class Model:
    """A round of ``n`` messages lasts ``overhead + n * per_message`` seconds."""

    def __init__(self, overhead: float, per_message: float) -> None:
        self.overhead = overhead
        self.per_message = per_message
        self.probes: list[float] = []

    def seconds(self, n: int) -> float:
        return self.overhead + n * self.per_message

    def __call__(self, n: int) -> float:
        seconds = self.seconds(n)
        self.probes.append(seconds)
        return seconds


targets = st.sampled_from([0.002, 0.01, 0.05, 0.1, 0.5])
per_message = st.floats(min_value=1e-8, max_value=1e-2)
starts = st.integers(min_value=1, max_value=4096)


@given(target=targets, per=per_message, start=starts)
def test_a_round_lasts_about_the_target_and_probing_costs_little(
    target: float, per: float, start: int
) -> None:
    model = Model(0.0, per)
    n = messages_for(model, target, start)
    if n == 1:
        assert model.seconds(1) >= target  # one message already fills a round
    else:
        assert target <= model.seconds(n) <= CALIBRATION_MARGIN * target + per
    if model.probes[0] < CALIBRATION_PROBE * target:
        # found by rounds shorter than a round
        assert all(p < target for p in model.probes)
        assert len(model.probes) <= CALIBRATION_STEPS
    else:
        assert len(model.probes) == 1  # the first round already measured the rate


@given(target=targets, per=per_message, start=starts, share=st.floats(0.0, 0.02))
def test_a_small_fixed_cost_per_round_keeps_the_round_near_the_target(
    target: float, per: float, start: int, share: float
) -> None:
    # barrier, acks and the end-of-round push cost the same for any count
    model = Model(share * target, per)
    n = messages_for(model, target, start)
    if model.probes[0] < CALIBRATION_PROBE * target:
        assert 0.95 * target <= model.seconds(n) <= 1.1 * target + per


def test_fast_sends_grow_by_at_most_64_per_probe() -> None:
    model = Model(0.0, 1e-9)
    n = messages_for(model, 0.05, 8)
    counts = [round(p / 1e-9) for p in model.probes]
    assert counts[0] == 8
    assert all(b <= 64 * a for a, b in itertools.pairwise(counts))
    assert 0.05 <= model.seconds(n) <= 0.05 * CALIBRATION_MARGIN + 1e-9


def test_one_slow_message_per_round_is_one_message() -> None:
    # a round of one message already lasts ten targets: no count below 1
    model = Model(0.0, 0.5)
    assert messages_for(model, 0.05, 1) == 1
    assert len(model.probes) == 1


def test_a_probe_that_never_gets_long_enough_stops_after_the_step_limit() -> None:
    calls: list[int] = []

    def stuck(n: int) -> float:
        calls.append(n)
        return 1e-5  # a broken clock, or a round that does nothing

    n = messages_for(stuck, 0.05, 8)
    assert len(calls) == CALIBRATION_STEPS
    assert n > calls[-1]


@given(
    count=st.integers(1, 10**6),
    seconds=st.floats(1e-5, 10.0),
    target=targets,
)
def test_a_warm_up_round_only_ever_lengthens_the_count(
    count: int, seconds: float, target: float
) -> None:
    new = lengthen(count, seconds, target)
    if seconds >= target:
        assert new == count  # long enough, or slowed by a stall: left alone
    else:
        assert new > count
        # at the warm-up round's rate, the new count lasts at least the target
        assert new * seconds / count >= target


def test_a_short_probe_that_underrates_the_rate_is_corrected_by_the_warm_up_round() -> None:
    # 8 threads: waking them, the acks and the end-of-round push cost ~5 ms a round,
    # a fifth of a 25 ms probe but a tenth of a 50 ms round
    model = Model(0.005, 1e-6)
    n = messages_for(model, 0.05, 8)
    assert model.seconds(n) < 0.05  # the probe alone gives short rounds
    n = lengthen(n, model.seconds(n), 0.05)
    assert model.seconds(n) >= 0.05
