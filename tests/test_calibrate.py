"""calibration: messages_for / lengthen / warm_up, the count that makes a round last the target.

Driven by a model of a round (a fixed overhead plus a per-message time) in
place of a pool, so every rate from a few messages per second to many millions
can be tried: what is checked is the length of the round the count gives, and
how much probing it took to find it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_netcopy.bench.calibration import (
    CALIBRATION_MARGIN,
    CALIBRATION_PROBE,
    CALIBRATION_STEPS,
    lengthen,
    messages_for,
    warm_up,
)
from pytest_netcopy.transport.errors import TransferError


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
starts = st.integers(min_value=1, max_value=4096)
#: float rounding allowance on the bounds
ULP = 1 + 1e-9
#: how much of the probe threshold the first probe reaches: every start below it
short_first = st.floats(min_value=1e-7, max_value=0.99)


@given(target=targets, start=starts, first=short_first)
def test_short_probes_find_a_round_of_the_target_for_less_than_a_round(
    target: float, start: int, first: float
) -> None:
    per = first * CALIBRATION_PROBE * target / start  # the first probe is short
    model = Model(0.0, per)
    n = messages_for(model, target, start)
    assert target / ULP <= model.seconds(n) <= (CALIBRATION_MARGIN * target + per) * ULP
    # probes grow at least 2x, each aims at half a round: all of them cost less than one round
    assert all(p < target for p in model.probes)
    assert sum(model.probes) < target + per


@given(target=targets, start=starts, over=st.floats(min_value=1.001, max_value=1e4))
def test_a_first_probe_already_long_enough_is_the_only_one(
    target: float, start: int, over: float
) -> None:
    per = over * CALIBRATION_PROBE * target / start  # the first probe reaches the threshold
    model = Model(0.0, per)
    n = messages_for(model, target, start)
    assert len(model.probes) == 1
    if n > 1:
        assert target / ULP <= model.seconds(n) <= (CALIBRATION_MARGIN * target + per) * ULP
    else:
        assert model.seconds(1) >= CALIBRATION_MARGIN * target  # one message fills a round


@given(target=targets, start=starts, first=short_first, share=st.floats(0.0, 0.02))
def test_a_small_fixed_cost_per_round_keeps_the_round_near_the_target(
    target: float, start: int, first: float, share: float
) -> None:
    # barrier, acks and the end-of-round push cost the same for any count
    per = first * CALIBRATION_PROBE * target * (1 - share) / start
    model = Model(share * CALIBRATION_PROBE * target, per)
    n = messages_for(model, target, start)
    assert 0.95 * target <= model.seconds(n) <= 1.1 * target + per


def test_fast_sends_grow_by_at_most_64_per_probe() -> None:
    model = Model(0.0, 1e-9)
    n = messages_for(model, 0.05, 8)
    counts = [round(p / 1e-9) for p in model.probes]
    assert counts[0] == 8
    assert all(b <= 64 * a for a, b in itertools.pairwise(counts))
    assert 0.05 <= model.seconds(n) <= 0.05 * CALIBRATION_MARGIN + 1e-9


def test_rounds_that_never_get_longer_fail_calibration_clearly() -> None:
    calls: list[int] = []

    def stuck(n: int) -> float:
        calls.append(n)
        return 1e-5  # a send function that sends nothing: no count makes a round longer

    with pytest.raises(TransferError) as info:
        messages_for(stuck, 0.05, 8)
    assert len(calls) == CALIBRATION_STEPS
    message = str(info.value)
    assert message.startswith(f"calibration: {CALIBRATION_STEPS} probe rounds, the last")
    assert f"the last {calls[-1]} messages" in message
    assert "never reached 12.5 ms" in message


@given(
    count=st.integers(1, 10**6),
    seconds=st.floats(0.0, 10.0),
    target=targets,
)
def test_a_warm_up_round_only_ever_lengthens_the_count(
    count: int, seconds: float, target: float
) -> None:
    new = lengthen(count, seconds, target)
    if seconds >= target:
        assert new == count  # long enough, or slowed by a stall: left alone
        return
    assert count < new <= 64 * count  # never more than a calibration step
    if seconds > 0 and CALIBRATION_MARGIN * target / seconds <= 64:
        # at the warm-up round's rate, the new count lasts at least the target
        assert new * seconds / count >= target


def test_a_short_probe_that_underrates_the_rate_is_corrected_by_the_warm_up_round() -> None:
    # 8 threads: waking them, the acks and the end-of-round push cost ~5 ms a round,
    # a fifth of a 25 ms probe but a tenth of a 50 ms round
    model = Model(0.005, 1e-6)
    n = messages_for(model, 0.05, 8)
    assert model.seconds(n) < 0.05  # the probe alone gives short rounds
    n, _ = warm_up(lambda k, _control: model(k), n, None, 1, 0.05)
    assert model.seconds(n) >= 0.05


class Pool:
    """Mode and control rounds of one model each; records what ran."""

    def __init__(self, mode: Model, control: Model) -> None:
        self.mode, self.control = mode, control
        self.ran: list[tuple[int, bool]] = []

    def __call__(self, n: int, control: bool) -> float:
        self.ran.append((n, control))
        return (self.control if control else self.mode)(n)


def test_warm_up_runs_a_round_even_when_none_are_asked_for() -> None:
    pool = Pool(Model(0.0, 1e-6), Model(0.0, 0.5e-6))
    # both probes gave 20 ms rounds: each count is lengthened by 1.05 x 50 / 20
    assert warm_up(pool, 20_000, 40_000, 0, 0.05) == (52_500, 105_000)
    assert pool.ran == [(20_000, False), (40_000, True)]
    # without a control, only mode rounds
    alone = Pool(Model(0.0, 1e-6), Model(0.0, 1e-6))
    assert warm_up(alone, 100_000, None, 3, 0.05) == (100_000, None)
    assert alone.ran == [(100_000, False)] * 3


@given(
    mode_per=st.floats(1e-8, 1e-4),
    control_per=st.floats(1e-8, 1e-4),
    count=st.integers(1, 10**5),
    control_count=st.integers(1, 10**5),
    rounds=st.integers(0, 3),
)
def test_warm_up_never_leaves_the_control_fewer_messages_than_the_mode(
    mode_per: float, control_per: float, count: int, control_count: int, rounds: int
) -> None:
    pool = Pool(Model(0.001, mode_per), Model(0.001, control_per))
    new_count, new_control = warm_up(pool, count, max(count, control_count), rounds, 0.05)
    assert new_control is not None and new_control >= new_count >= count
    assert len(pool.ran) == 2 * max(1, rounds)
