"""Issue 12, three verdicts: the interval on the change, the smallest detectable change,
and regression / no regression / undecided (pure functions, no sockets)."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_netcopy.gate.compare import compare_runs
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.row import (
    BEYOND_NOT_SIGNIFICANT,
    NO_REGRESSION,
    NOT_COMPARABLE,
    REGRESSION,
    STRADDLES,
    TOO_FEW_ROUNDS,
    UNDECIDED,
)
from pytest_netcopy.gate.rules import Rule, parse_rules
from pytest_netcopy.gate.stats import _rank_k, _u_cdf, detectable_change, shift_interval
from pytest_netcopy.results.runs import Result, Run


def result(rounds: dict[str, list[float]] | None = None, **extra: Any) -> Result:
    info: dict[str, Any] = {"netcopy_schema": 1, "mode": "two_copy", "size": 4096, "threads": 1}
    info["rounds"] = rounds or {}
    info.update(extra)
    return Result("test_send_path[two_copy-4096B-1t]", "4096B-1t", info, {})


def run(*results: Result) -> Run:
    return Run(Path("run.json"), {}, {}, None, list(results))


def judge(old: list[float], new: list[float], rule: str = "x:+10%", **kw: Any) -> GateOutcome:
    return compare_runs(run(result({"x": old})), run(result({"x": new})), parse_rules(rule), **kw)


# ---------------------------------------------------------------------------
# the interval


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 3), (4, 4), (3, 6)])
def test_the_null_distribution_of_u_counts_every_subset(n: int, m: int) -> None:
    counts = [0] * (n * m + 1)
    for chosen in itertools.combinations(range(n + m), n):
        # U of the chosen (x) values: pairs with a y above them
        counts[sum(1 for i in chosen for j in range(n + m) if j not in chosen and j > i)] += 1
    assert list(_u_cdf(n, m)) == list(itertools.accumulate(counts))


def test_the_order_statistic_matches_the_tables() -> None:
    # two-sided critical values of U (P(U <= c) <= alpha / 2): 16 for 10+10 at 0.01,
    # 23 for 10+10 at 0.05, 2 for 6+6 at 0.01; k is one more
    assert _rank_k(10, 10, 0.01) == 17
    assert _rank_k(10, 10, 0.05) == 24
    assert _rank_k(6, 6, 0.01) == 3
    assert _rank_k(3, 3, 0.01) == 0  # no interval: 3+3 rounds are too few at 1%


@pytest.mark.parametrize("ratio", [False, True])
def test_the_interval_contains_the_true_shift_at_the_nominal_rate(ratio: bool) -> None:
    rng = random.Random(12)
    alpha, draws, shift = 0.05, 400, 0.3
    covered = 0
    for _ in range(draws):
        old = [rng.gauss(0, 1) for _ in range(10)]
        new = [rng.gauss(shift, 1) for _ in range(12)]
        if ratio:  # the same on the log scale: a change by a factor of e**shift
            old, new = [math.exp(v) for v in old], [math.exp(v) for v in new]
        interval = shift_interval(old, new, alpha, ratio=ratio)
        assert interval is not None
        truth = math.expm1(shift) if ratio else shift
        covered += interval[0] <= truth <= interval[1]
    # nominal 95% (the exact construction is conservative); 400 draws: sd ~1.1%
    assert covered / draws >= 0.92


def test_the_interval_is_none_when_the_rounds_are_too_few() -> None:
    assert shift_interval([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.01, ratio=False) is None
    assert shift_interval([1.0] * 5, [1.0] * 5, 0.01, ratio=False) == (0.0, 0.0)


# ---------------------------------------------------------------------------
# the smallest detectable change


def test_the_detectable_change_follows_the_noise_and_the_rounds() -> None:
    base = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0, 1.01, 0.99]
    quiet = detectable_change(base, base, 0.01, ratio=True, direction=1)
    noisy = detectable_change(
        [v**3 for v in base], [v**3 for v in base], 0.01, ratio=True, direction=1
    )
    longer = detectable_change(base, base * 3, 0.01, ratio=True, direction=1)
    assert quiet is not None and noisy is not None and longer is not None
    assert noisy == pytest.approx(math.expm1(3 * math.log1p(quiet)), rel=1e-9)
    assert longer < quiet
    assert detectable_change([1.0] * 5, [1.0] * 5, 0.01, ratio=True, direction=1) == 0.0
    assert detectable_change([1.0], [1.0, 2.0], 0.01, ratio=False, direction=1) is None
    drop = detectable_change(base, base, 0.01, ratio=True, direction=-1)
    assert drop is not None and 0 < drop < quiet  # a drop by a factor: 1 - 1/(1 + rise)


# ---------------------------------------------------------------------------
# the three verdicts

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(positive, min_size=1, max_size=20),
    threshold=st.floats(min_value=0, max_value=50),
    direction=st.sampled_from(["+", "-"]),
)
def test_equal_samples_never_give_a_regression(
    samples: list[float], threshold: float, direction: str
) -> None:
    outcome = judge(samples, samples, f"x:{direction}{threshold}%", two_sided=True)
    (row,) = outcome.rows
    assert row.verdict in (NO_REGRESSION, UNDECIDED)
    assert not outcome.failed
    if len(samples) >= 5:  # enough for an interval at 1%, and it holds no change
        assert row.interval is not None and row.interval[0] <= 0 <= row.interval[1]
    if len(set(samples)) == 1 and len(samples) >= 5:
        assert row.verdict == NO_REGRESSION and row.interval == (0.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    base=st.lists(st.floats(min_value=1, max_value=1.05), min_size=6, max_size=15),
    factor=st.floats(min_value=1.2, max_value=10),
    size=st.integers(min_value=6, max_value=15),
)
def test_strictly_separated_samples_beyond_the_threshold_give_a_regression(
    base: list[float], factor: float, size: int
) -> None:
    new = [max(base) * factor * (1 + 0.001 * i) for i in range(size)]  # all above, +20% or more
    outcome = judge(base, new, "x:+10%")
    assert [r.verdict for r in outcome.rows] == [REGRESSION]
    assert outcome.failed


def test_a_change_within_the_threshold_is_no_regression_with_what_it_could_see() -> None:
    base = [10.0 + 0.01 * i for i in range(10)]
    outcome = judge(base, [v * 1.01 for v in base])
    (row,) = outcome.rows
    assert row.verdict == NO_REGRESSION
    assert row.interval is not None and row.interval[1] <= 0.10
    assert row.detectable is not None and 0 < row.detectable < 0.10
    assert row.reason.startswith("no change beyond ") and row.reason.endswith("at 80% power")
    assert f"no regression ({row.reason})" in outcome.render()
    assert outcome.summary() == "netcopy gate: no regression in 1 benchmark"


def test_an_interval_across_the_threshold_is_undecided() -> None:
    base = [1.0, 1.3, 0.8, 1.1, 0.9, 1.2, 0.7, 1.05, 0.95, 1.15]
    new = [v * 1.05 for v in base]  # +5%, noise of +-30%: cannot say it is within 10%
    outcome = judge(base, new)
    (row,) = outcome.rows
    assert (row.verdict, row.why) == (UNDECIDED, STRADDLES)
    assert "the change is" in row.reason and "the threshold +10%" in row.reason
    assert "it could see a rise of" in row.reason
    assert not outcome.failed
    assert outcome.summary() == (
        "netcopy gate: nothing judged: all 1 row of 1 benchmark undecided or not comparable"
    )
    assert judge(base, new, strict=True).failed


def test_too_few_rounds_are_undecided_and_say_so() -> None:
    (row,) = judge([1.0, 1.01, 0.99], [1.0, 1.01, 0.99]).rows
    assert (row.verdict, row.why) == (UNDECIDED, TOO_FEW_ROUNDS)
    assert row.reason == "too few comparable rounds (3+3) for an interval at 0.01"


def test_beyond_the_threshold_but_not_significant_is_undecided() -> None:
    base = [10, 12, 8, 11, 9, 10.5, 9.5, 13, 7, 10]
    (row,) = judge(base, [v * 1.12 for v in base[::-1]]).rows
    assert (row.verdict, row.why) == (UNDECIDED, BEYOND_NOT_SIGNIFICANT)


def test_counts_are_judged_by_the_threshold_alone() -> None:
    rule = [Rule("syscalls_per_message", 1, 10, True)]
    same = result(syscalls_per_message={"total": 2.0})
    more = result(syscalls_per_message={"total": 4.0})
    (row,) = compare_runs(run(same), run(same), rule).rows
    assert (row.verdict, row.reason) == (NO_REGRESSION, "count; threshold alone")
    assert (
        "no regression (count; threshold alone)"
        in compare_runs(run(same), run(same), rule).render()
    )
    (row,) = compare_runs(run(same), run(more), rule).rows
    assert row.verdict == REGRESSION


def test_the_last_line_counts_all_three_and_names_the_undecided() -> None:
    base = [10.0 + 0.01 * i for i in range(10)]
    rules = parse_rules("x:+10% y:+10% z:+10%")
    rounds_old = {"x": base, "y": base[:3], "z": base}
    rounds_new = {"x": base, "y": base[:3], "z": [v * 2 for v in base]}
    outcome = compare_runs(run(result(rounds_old)), run(result(rounds_new)), rules)
    assert [r.verdict for r in outcome.rows] == [NO_REGRESSION, UNDECIDED, REGRESSION]
    assert outcome.summary() == (
        "netcopy gate: 1 regression in two_copy-4096B-1t (z); 1 undecided: "
        "two_copy-4096B-1t (y: too few comparable rounds)"
    )
    calm = compare_runs(run(result(rounds_old)), run(result(rounds_old)), rules[:2], strict=True)
    assert calm.failed and calm.summary() == (
        "netcopy gate: no regression in 1 benchmark; 1 undecided (fails a strict gate): "
        "two_copy-4096B-1t (y: too few comparable rounds)"
    )


def test_not_comparable_rows_are_counted_as_undecided() -> None:
    outcome = judge([1.0] * 10, [1.0] * 10, "x:+10% w:+10%")
    assert [r.verdict for r in outcome.rows] == [NO_REGRESSION, NOT_COMPARABLE]
    assert outcome.summary() == (
        "netcopy gate: no regression in 1 benchmark; 1 undecided: two_copy-4096B-1t "
        "(w: baseline: not recorded; current: not recorded)"
    )


def test_a_baseline_without_instruction_counts_says_how_to_record_them() -> None:
    rule = parse_rules("user_instructions_per_message:+10%")
    counted = result(user_instructions_per_message=51234.0)
    (row,) = compare_runs(run(result()), run(counted), rule).rows
    assert row.verdict == NOT_COMPARABLE
    assert row.reason == (
        "baseline: not recorded (counted only when the run is gated or saved "
        "(--benchmark-save, --benchmark-autosave) or with --netcopy-instructions=on)"
    )
    (same,) = compare_runs(run(counted), run(counted), rule).rows
    assert same.verdict == NO_REGRESSION


def test_the_level_of_a_run_that_took_several_looks_is_its_last_looks_share() -> None:
    base = [10.0 + 0.01 * i for i in range(10)]
    design = {"added": 10, "looks": [10, 15, 20], "max_rounds": 30, "reason": "decided"}
    looked = result({"x": base * 2}, gate_rounds=design)
    (row,) = compare_runs(run(result({"x": base})), run(looked), parse_rules("x:+10%")).rows
    assert row.alpha is not None and row.alpha < 0.002
    (plain,) = compare_runs(run(result({"x": base})), run(result({"x": base * 2})),
                            parse_rules("x:+10%")).rows  # fmt: skip
    assert plain.alpha == 0.01
