"""Issue 12, decisions that take the rounds they need: alpha spent over looks, the budget,
and a seeded simulation that repeated looks keep the false-alarm rate at alpha."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from pytest_netcopy.gate.compare import judge_benchmark
from pytest_netcopy.gate.row import REGRESSION
from pytest_netcopy.gate.rules import parse_rules
from pytest_netcopy.gate.sequential import Budget, look_alpha, next_rounds, spent
from pytest_netcopy.results.runs import Result

ALPHA = 0.01


def result(values: list[float], looks: list[int] | None = None, top: int = 30) -> Result:
    info: dict[str, Any] = {"netcopy_schema": 1, "mode": "two_copy", "size": 4096, "threads": 1}
    info["rounds"] = {"x": values}
    if looks is not None:
        info["gate_rounds"] = {"added": looks[-1] - looks[0], "looks": looks, "max_rounds": top}
    return Result("test_send_path[two_copy-4096B-1t]", "4096B-1t", info, {})


def test_the_spending_function_spends_alpha_by_the_end_and_no_more() -> None:
    assert spent(ALPHA, 0) == 0 and spent(ALPHA, 1) == pytest.approx(ALPHA)
    assert spent(ALPHA, 2) == pytest.approx(ALPHA)  # past the budget: nothing more
    looks = [10, 15, 20, 25, 30]
    levels = [look_alpha(ALPHA, looks[: i + 1], 30) for i in range(len(looks))]
    assert sum(levels) == pytest.approx(ALPHA)
    assert levels[0] == pytest.approx(0.00453, abs=1e-5)  # a third of the budget: 45%
    assert all(a > b for a, b in itertools.pairwise(levels))
    assert look_alpha(ALPHA, [], 30) == ALPHA


def test_next_rounds_stops_when_decided_or_out_of_budget() -> None:
    base = [10.0 + 0.01 * i for i in range(10)]
    noisy = [1.0, 1.3, 0.8, 1.1, 0.9, 1.2, 0.7, 1.05, 0.95, 1.15]
    rules = parse_rules("x:+10%")
    decided = judge_benchmark(result(base), result(base, [10]), rules)
    assert next_rounds(decided, ["x"], 10, 10, 0.0, Budget()) == (0, "decided")
    open_ = judge_benchmark(result(noisy), result([v * 1.05 for v in noisy], [10]), rules)
    assert next_rounds(open_, ["x"], 10, 10, 0.0, Budget()) == (5, "undecided: x")
    assert next_rounds(open_, ["x"], 28, 10, 0.0, Budget()) == (2, "undecided: x")
    assert next_rounds(open_, ["x"], 30, 10, 0.0, Budget()) == (
        0, "undecided (x) at the budget of 30 rounds",
    )  # fmt: skip
    assert next_rounds(open_, ["x"], 10, 10, 11.0, Budget()) == (
        0, "undecided (x) at the time budget of 10 s",
    )  # fmt: skip
    # more rounds do not grow a metric of an untimed pass: nothing to wait for
    assert next_rounds(open_, ["y"], 10, 10, 0.0, Budget()) == (0, "decided")


def simulate(pairs: int, spend: bool, seed: int = 1212) -> int:
    """A/A comparisons from one distribution, looked at after 10, 15, ... 30 rounds until
    decided, with a 0% threshold both ways (the test alone decides): regressions found."""
    rng = random.Random(seed)
    rules = parse_rules("x:+0% x:-0%")
    budget = Budget(max_rounds=30)
    alarms = 0
    for _ in range(pairs):
        old = result([rng.lognormvariate(0, 0.1) for _ in range(10)])
        values = [rng.lognormvariate(0, 0.1) for _ in range(10)]
        looks = [10]
        while True:
            new = result(values, looks if spend else None)
            rows = judge_benchmark(old, new, rules, alpha=ALPHA)
            if any(r.verdict == REGRESSION for r in rows):
                alarms += 1
                break
            more, _ = next_rounds(rows, ["x"], len(values), 10, 0.0, budget)
            if not more:
                break
            values += [rng.lognormvariate(0, 0.1) for _ in range(more)]
            looks.append(len(values))
    return alarms


def test_repeated_looks_keep_the_false_alarm_rate_at_alpha() -> None:
    pairs = 2000
    alarms = simulate(pairs, spend=True)
    # at most alpha = 1% (20 of 2000), with a margin of two standard deviations (~9)
    assert alarms <= pairs * ALPHA + 9, alarms
    # the same looks, each at the full alpha, alarm more often: what the spending prevents
    assert simulate(pairs, spend=False) > alarms
