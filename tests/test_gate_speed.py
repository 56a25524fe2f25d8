"""The speed guard by rounds (gate/speed.py): which rounds of two runs ran at a common speed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_netcopy.gate.policy import MIN_MATCHED_ROUNDS, SPEED_REASON
from pytest_netcopy.gate.speed import (
    Matched,
    Unmatched,
    band_rounds,
    comparable_rounds,
    restrict,
    round_control_speeds,
    widest_common_band,
)
from pytest_netcopy.results.runs import Result


def result(control: list[float] | None, rounds: int | None = None, **metrics: Any) -> Result:
    """A two_copy result whose control rounds ran at ``control`` Gbps (rounds + 1 of them)."""
    n = rounds if rounds is not None else (len(control) - 1 if control else 3)
    extra: dict[str, Any] = {
        "mode": "two_copy",
        "size": 4096,
        "threads": 1,
        "rounds": {"throughput_gbps": [10.0] * n, **metrics},
    }
    if control is not None:
        extra["control"] = {
            "throughput_gbps": sorted(control)[len(control) // 2],
            "rounds": {"throughput_gbps": control},
        }
    return Result("test_send_path[two_copy-4096B-1t]", None, extra, {})


def test_a_round_takes_the_control_rounds_its_ratio_divides_by() -> None:
    # round i sits between control rounds i and i + 1: two before, two after it
    speeds = round_control_speeds(result([10.0, 20.0, 30.0, 40.0, 50.0]))
    assert speeds == pytest.approx((20.0, 25.0, 35.0, 40.0))


@pytest.mark.parametrize(
    "extra",
    [
        {"rounds": {"throughput_gbps": [1.0, 2.0]}},  # no control at all
        {"rounds": {"throughput_gbps": [1.0, 2.0]}, "control": {"throughput_gbps": 5.0}},
        {
            "rounds": {"throughput_gbps": [1.0, 2.0]},
            "control": {"rounds": {"throughput_gbps": [5.0, 5.0]}},
        },
        {
            "rounds": {"throughput_gbps": [1.0]},
            "control": {"rounds": {"throughput_gbps": [5.0, 0.0]}},
        },
        {
            "rounds": {"throughput_gbps": [1.0]},
            "control": {"rounds": {"throughput_gbps": [5.0, None]}},
        },
        {
            "rounds": {"throughput_gbps": [1.0]},
            "control": {"rounds": {"throughput_gbps": [5.0, math.nan]}},
        },
        {"control": {"rounds": {"throughput_gbps": [5.0, 5.0]}}},  # no measured rounds
    ],
    ids=["no-control", "median-only", "lengths", "zero", "null", "nan", "no-rounds"],
)
def test_without_per_round_control_data_the_guard_by_medians_stays(extra: dict[str, Any]) -> None:
    r = Result("x", None, {"mode": "two_copy", "size": 1, "threads": 1, **extra}, {})
    assert round_control_speeds(r) is None
    assert comparable_rounds(r, r, 0.05, 5) is None


def test_identical_speeds_match_every_round() -> None:
    base = result([40.0] * 11)
    match = comparable_rounds(base, result([40.0] * 11), 0.05, 5)
    assert isinstance(match, Matched)
    assert match.baseline == match.current == tuple(range(10))
    assert match.every_round and match.note() == ""


def test_medians_within_the_tolerance_keep_every_round() -> None:
    """Today's guard passes: nothing is dropped, however the single rounds scatter
    (the band alone would hold only a few of them)."""
    scattered = [20.0 + 5 * i for i in range(11)]  # a ramp, 20 to 70 Gbps
    shifted = [s * 1.04 for s in reversed(scattered)]
    match = comparable_rounds(result(scattered), result(shifted), 0.05, 5)
    assert isinstance(match, Matched) and match.every_round
    assert match.baseline == match.current == tuple(range(10))
    assert isinstance(band_rounds(result(scattered), result(shifted), 0.05, 5), Unmatched)


def test_disjoint_speeds_give_the_reason() -> None:
    match = comparable_rounds(result([46.0] * 11), result([62.0] * 11), 0.05, 5)
    assert isinstance(match, Unmatched)
    assert match.reason.startswith(SPEED_REASON)  # GateOutcome.speed_changed counts it
    assert match.reason == (
        "the machine ran at another speed (control 46 -> 62 Gbps, +34.8%, beyond 5%): "
        "only 10 and 0 rounds ran at a common speed (46-48 Gbps, within 5%; 5 needed)"
    )


def test_the_band_with_most_rounds_of_both_runs_wins() -> None:
    # baseline: 6 rounds at 46, 4 at 62; current: 3 at 46, 7 at 62 -> 62 holds min(4, 7) = 4
    # rounds, 46 holds min(6, 3) = 3
    base = [46.0] * 6 + [62.0] * 4
    cur = [46.0] * 3 + [62.0] * 7
    band = widest_common_band(base, cur, 0.05)
    assert band is not None
    assert band.baseline == (6, 7, 8, 9) and band.current == tuple(range(3, 10))


def test_min_rounds_decides() -> None:
    control_a = [46.0] * 6 + [62.0] * 5  # rounds 0-4 at 46, round 5 between, 6-9 at 62
    control_b = [62.0] * 11
    assert isinstance(comparable_rounds(result(control_a), result(control_b), 0.05, 5), Unmatched)
    match = comparable_rounds(result(control_a), result(control_b), 0.05, 4)
    assert isinstance(match, Matched)
    assert match.baseline == (6, 7, 8, 9)
    assert match.note() == "rounds at 62-65 Gbps: 4 of 10 and 10 of 10"


def test_tolerance_edge_is_inclusive() -> None:
    band = widest_common_band([40.0], [42.0], 0.05)
    assert band is not None and band.baseline == (0,) and band.current == (0,)
    band = widest_common_band([40.0], [42.1], 0.05)
    assert band is not None and min(len(band.baseline), len(band.current)) == 0


def test_empty_sides_have_no_band() -> None:
    assert widest_common_band([], [1.0], 0.05) is None


def test_restrict_takes_the_matched_rounds_only() -> None:
    r = result(
        [10.0] * 5,
        throughput_vs_control=[1.0, 2.0, 3.0, 4.0],
        cpu_vs_control=[1.0, None, 3.0, math.nan],
    )
    assert restrict(r, "throughput_vs_control", (1, 3)).samples == (2.0, 4.0)
    assert restrict(r, "throughput_vs_control", (1, 3)).value == 3.0
    assert restrict(r, "cpu_vs_control", (0, 1, 3)).samples == (1.0,)
    none = restrict(r, "cpu_vs_control", (1, 3))
    assert none.value is None and none.reason
    # no per-round samples: the whole metric, as metric_value reads it
    r2 = Result("x", None, {**r.extra, "syscalls_per_message": {"total": 1.5}}, {})
    assert restrict(r2, "syscalls_per_message", (0,)).value == 1.5


def test_the_policy_minimum_can_reach_significance() -> None:
    assert 2 / math.comb(2 * MIN_MATCHED_ROUNDS, MIN_MATCHED_ROUNDS) < 0.01


speeds = st.lists(st.floats(1.0, 100.0, allow_nan=False), min_size=1, max_size=12)


def _brute(base: list[float], cur: list[float], tol: float) -> int:
    """The best min(count) over every band starting at any speed (or between)."""
    best = 0
    for low in [*base, *cur]:
        high = low * (1 + tol) * (1 + 1e-9)
        best = max(
            best, min(sum(low <= s <= high for s in base), sum(low <= s <= high for s in cur))
        )
    return best


@given(speeds, speeds, st.floats(0.0, 0.5))
def test_band_properties(base: list[float], cur: list[float], tol: float) -> None:
    band = widest_common_band(base, cur, tol)
    assert band is not None
    chosen = [base[i] for i in band.baseline] + [cur[i] for i in band.current]
    for s in chosen:  # everything in it lies in the band
        assert band.low <= s <= band.high * (1 + 1e-9)
    # every round in the band is taken, and no band holds more of both runs
    assert len(band.baseline) == sum(band.low <= s <= band.high * (1 + 1e-9) for s in base)
    assert min(len(band.baseline), len(band.current)) == _brute(base, cur, tol)
    # swapping the runs swaps the answer's score
    swapped = widest_common_band(cur, base, tol)
    assert swapped is not None
    assert min(len(swapped.baseline), len(swapped.current)) == min(
        len(band.baseline), len(band.current)
    )


@given(speeds, st.floats(0.5, 4.0))
def test_the_same_run_matches_itself_whole_at_any_scale(base: list[float], k: float) -> None:
    band = widest_common_band(base, [s * k for s in base], 0.0)
    assert band is not None
    if k == 1.0:
        assert band.baseline == band.current


@given(st.lists(st.floats(1.0, 100.0), min_size=2, max_size=12), st.integers(1, 12))
def test_matched_means_enough_rounds(control: list[float], min_rounds: int) -> None:
    r = result(control)
    assert isinstance(comparable_rounds(r, r, 0.05, min_rounds), Matched)  # medians agree
    other = result([s * 1.5 for s in control])
    match = band_rounds(r, other, 0.05, min_rounds)
    assert match is not None
    if isinstance(match, Matched):
        assert min(len(match.baseline), len(match.current)) >= min_rounds
    else:
        assert match.band is not None
        assert min(len(match.band.baseline), len(match.band.current)) < min_rounds
