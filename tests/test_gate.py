"""The gate's pure functions: rules, the Mann-Whitney U test, compare_runs, rendering."""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_netcopy.gate.catalog import check_rules
from pytest_netcopy.gate.compare import (
    MachineMismatch,
    benchmark_id,
    compare_runs,
    machine_differences,
)
from pytest_netcopy.gate.metrics import metric_value
from pytest_netcopy.gate.policy import DEFAULT_RULES, parse_speed_tolerance
from pytest_netcopy.gate.row import IMPROVEMENT, NOT_COMPARABLE, OK, REGRESSION, UNDECIDED
from pytest_netcopy.gate.rules import Rule, format_rules, parse_rules
from pytest_netcopy.gate.stats import mann_whitney_u, smallest_p
from pytest_netcopy.results.runs import Result, Run, load_run

DATA = Path(__file__).parent / "data" / "gate"

# ---------------------------------------------------------------------------
# helpers: runs from plain data


def make_result(
    mode: str = "two_copy",
    size: int = 4096,
    threads: int = 1,
    rounds: dict[str, list[Any]] | None = None,
    **metrics: Any,
) -> Result:
    extra: dict[str, Any] = {"netcopy_schema": 1, "mode": mode, "size": size, "threads": threads}
    extra["rounds"] = rounds or {}
    extra.update(metrics)
    pid = f"{mode}-{size}B-{threads}t"
    return Result(name=f"test_send_path[{pid}]", group=f"{size}B-{threads}t", extra=extra, stats={})


def make_run(*results: Result, machine: dict[str, Any] | None = None, name: str = "run") -> Run:
    return Run(
        path=Path(f"{name}.json"),
        machine_info=machine or {},
        commit_info={},
        datetime=None,
        results=list(results),
    )


def sampled(gbps: list[float], cpu: list[float], syscalls: Any = None, **kw: Any) -> Result:
    metrics: dict[str, Any] = {"throughput_gbps": gbps[len(gbps) // 2], "cpu_ns_per_byte": cpu[0]}
    if syscalls is not None:
        metrics["syscalls_per_message"] = syscalls
    return make_result(rounds={"throughput_gbps": gbps, "cpu_ns_per_byte": cpu}, **kw, **metrics)


def rows_by_metric(outcome: Any) -> dict[str, Any]:
    return {row.metric: row for row in outcome.rows}


# ---------------------------------------------------------------------------
# rules


def test_parse_rules_reads_the_issue_example() -> None:
    rules = parse_rules("throughput_gbps:-10% cpu_ns_per_byte:+10% syscalls_per_message:+0")
    assert rules == [
        Rule("throughput_gbps", -1, 10.0, True),
        Rule("cpu_ns_per_byte", 1, 10.0, True),
        Rule("syscalls_per_message", 1, 0.0, False),
    ]
    assert rules[0].limit == pytest.approx(0.1)
    assert rules[2].describe() == "any rise of syscalls_per_message is bad"
    assert rules[0].describe() == "a drop of throughput_gbps by more than 10% is bad"


def test_parse_rules_accepts_ini_layout_and_empty_text() -> None:
    text = "\n  throughput_gbps:-5%,\n  cycles_per_byte:+0.25\n"
    assert format_rules(parse_rules(text)) == "throughput_gbps:-5% cycles_per_byte:+0.25"
    assert parse_rules("") == []
    assert parse_rules("  \n ") == []


def test_default_rules_are_the_documented_ones() -> None:
    assert format_rules(DEFAULT_RULES) == (
        "throughput_vs_control:-15%@-zero_copy cpu_vs_control:+15%@-zero_copy "
        "throughput_vs_control:-25%@zero_copy cpu_vs_control:+25%@zero_copy "
        "syscalls_per_message:+10% user_instructions_per_message:+10%@-zero_copy "
        "user_instructions_per_message:+25%@zero_copy"
    )


#: the same kind of rules on the absolute figures (the properties below use these
#: metrics; what matters to them is the logic, not which figures the defaults name)
ABSOLUTE = tuple(parse_rules("throughput_gbps:-10% cpu_ns_per_byte:+10% syscalls_per_message:+10%"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("throughput_gbps", "no ':'"),
        ("throughput_gbps:10%", "needs a sign"),
        ("throughput_gbps:", "needs a sign"),
        (":-10%", "is not a metric name"),
        ("9lives:-10%", "is not a metric name"),
        ("throughput_gbps:-ten%", "'ten' is not a plain non-negative number"),
        ("throughput_gbps:--10%", "'-10' is not a plain"),
        ("throughput_gbps:-10%%", "'10%' is not a plain"),
        ("throughput_gbps:-inf", "'inf' is not a plain"),
        ("throughput_gbps:-nan%", "'nan' is not a plain"),
        ("throughput_gbps:-1e999", "too large"),
    ],
)
def test_parse_rules_errors_name_the_token_and_the_expected_form(text: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rules(f"cpu_ns_per_byte:+10% {text}")
    message = str(info.value)
    assert f"bad gate rule {text!r}" in message
    assert why in message
    assert "expected METRIC:-N%" in message


def test_parse_rules_rejects_the_same_rule_twice_but_allows_both_directions() -> None:
    with pytest.raises(ValueError, match="a rise of x is given twice"):
        parse_rules("x:+1% x:+2%")
    assert len(parse_rules("x:+5% x:-5%")) == 2


def test_rule_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="direction"):
        Rule("x", 0, 1.0, True)
    with pytest.raises(ValueError, match="threshold"):
        Rule("x", 1, -1.0, True)
    with pytest.raises(ValueError, match="metric"):
        Rule("not a name", 1, 1.0, True)


metric_names = st.from_regex(r"[a-z_][a-z0-9_]{0,15}(\.[a-z0-9_]{1,8})?", fullmatch=True)
mode_names = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
rule_st = st.builds(
    Rule,
    metric=metric_names,
    direction=st.sampled_from([1, -1]),
    threshold=st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    percent=st.booleans(),
).flatmap(
    lambda rule: st.one_of(
        st.just(rule),
        st.builds(
            Rule, st.just(rule.metric), st.just(rule.direction), st.just(rule.threshold),
            st.just(rule.percent),
            st.lists(mode_names, min_size=1, max_size=3, unique=True).map(tuple),
            st.booleans(),
        ),
    )
)  # fmt: skip
rule_lists = st.lists(rule_st, max_size=6, unique_by=lambda r: (r.metric, r.direction))


def test_a_rule_can_name_the_modes_it_judges() -> None:
    only, but = parse_rules(
        "cpu_vs_control:+5%@two_copy/one_copy user_cpu_ns_per_byte:+25%@-zero_copy"
    )
    assert (only.modes, only.except_modes) == (("two_copy", "one_copy"), False)
    assert [only.applies_to(m) for m in ("two_copy", "one_copy", "zero_copy")] == [
        True,
        True,
        False,
    ]
    assert [but.applies_to(m) for m in ("two_copy", "mine", "zero_copy")] == [True, True, False]
    assert but.describe() == (
        "a rise of user_cpu_ns_per_byte by more than 25% is bad (not for zero_copy)"
    )
    for bad in ("x:+5%@", "x:+5%@-", "x:+5%@two-copy", "x:+5%@a//b", "x:+5%@1mode"):
        with pytest.raises(ValueError, match="after '@' is not a list of modes"):
            parse_rules(bad)
    with pytest.raises(ValueError, match="except_modes needs the modes"):
        Rule("x", 1, 5.0, True, (), True)
    with pytest.raises(ValueError, match="expected a tuple of mode names"):
        Rule("x", 1, 5.0, True, "zero_copy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a mode is named twice"):
        Rule("x", 1, 5.0, True, ("a", "a"))
    with pytest.raises(ValueError, match="names a mode twice"):
        parse_rules("x:+5%@a/a")
    assert Rule("x", 1, 5.0, True, ["a"]).modes == ("a",)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("x:+25%@-zero_copy x:+60%@zero_copy", True),  # per mode: no overlap
        ("x:+5%@a/b x:+9%@c", True),
        ("x:+5%@a/b x:+9%@-a/b/c", True),
        ("x:+5%@a/b x:+9%@b", False),
        ("x:+5%@-a x:+9%@-b", False),  # every other mode is in both
        ("x:+5%@a/b x:+9%@-a", False),  # b is in both
        ("x:+5% x:+9%@a", False),
        ("x:+5% x:-9%@a", True),  # the other direction
    ],
)
def test_rules_for_one_metric_may_not_overlap(text: str, ok: bool) -> None:
    if ok:
        assert len(parse_rules(text)) == 2
    else:
        with pytest.raises(ValueError, match="is given twice"):
            parse_rules(text)


def test_a_rule_scoped_to_modes_judges_only_those() -> None:
    slow = [1.0] * 10
    fast = [2.0] * 10
    old = make_run(sampled(fast, fast), sampled(fast, fast, mode="zero_copy"))
    new = make_run(sampled(slow, slow), sampled(slow, slow, mode="zero_copy"))
    rules = parse_rules("throughput_gbps:-10%@-zero_copy")
    outcome = compare_runs(old, new, rules)
    assert [(r.benchmark, r.verdict) for r in outcome.rows] == [("two_copy-4096B-1t", REGRESSION)]
    # a marker's override replaces the metric's rule, scope included
    overrides = {"zero_copy-4096B-1t": parse_rules("throughput_gbps:-10%")}
    outcome = compare_runs(old, new, rules, overrides=overrides)
    assert [r.verdict for r in outcome.rows] == [REGRESSION, REGRESSION]


@given(rule_lists)
def test_rules_round_trip_through_text(rules: list[Rule]) -> None:
    text = format_rules(rules)
    assert parse_rules(text) == rules
    assert format_rules(parse_rules(text)) == text


# ---------------------------------------------------------------------------
# Mann-Whitney U against hand-computed values


def test_mann_whitney_exact_complete_separation_three_each() -> None:
    # y above every x: U_y = 3*3 = 9, only 1 of C(6,3) = 20 orderings is as extreme
    result = mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert (result.u, result.method) == (9.0, "exact")
    assert result.p_value == pytest.approx(2 / 20)


def test_mann_whitney_exact_four_each() -> None:
    assert mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8]).p_value == pytest.approx(2 / 70)


def test_mann_whitney_exact_interleaved() -> None:
    # U_y = 1 + 2 + 3 = 6; the U distribution for 3+3 counts 1,1,2,3,3,3,3,2,1,1 (sum 20),
    # so P(U >= 6) = (3+2+1+1)/20 and p = 2 * 7/20
    result = mann_whitney_u([1, 3, 5], [2, 4, 6])
    assert result.u == 6.0
    assert result.p_value == pytest.approx(0.7)


def test_mann_whitney_exact_with_ties() -> None:
    # midranks 1, 3, 3, 3, 5, 6; y = {2, 3, 4} has rank sum 3+5+6 = 14 = the maximum,
    # reached by 3 of the 20 subsets ({6, 5, any of the three 3s}): p = 2 * 3/20
    result = mann_whitney_u([1, 2, 2], [2, 3, 4])
    assert result.u == 8.0
    assert result.p_value == pytest.approx(0.3)


def test_mann_whitney_normal_approximation() -> None:
    # 10+10 separated: mu = 50, var = 10*10*21/12 = 175, z = (50 - 0.5)/sqrt(175) = 3.742
    result = mann_whitney_u(list(range(10)), list(range(10, 20)), exact=False)
    assert result.method == "normal"
    assert result.p_value == pytest.approx(1.8267e-4, rel=1e-3)
    assert result.p_value == pytest.approx(math.erfc(49.5 / math.sqrt(175) / math.sqrt(2)))


def test_mann_whitney_normal_approximation_tie_correction() -> None:
    # pooled 1,1,2,2,3,3: sum(t^3 - t) = 18, var = 9/12 * (7 - 18/30) = 4.8;
    # R_x = 1.5+1.5+3.5 = 6.5, U_y = 9 - 0.5 = 8.5, z = (4 - 0.5)/sqrt(4.8) = 1.5975
    result = mann_whitney_u([1, 1, 2], [2, 3, 3], exact=False)
    assert result.u == 8.5
    assert result.p_value == pytest.approx(0.11015, abs=1e-4)


def test_mann_whitney_all_equal_is_no_evidence() -> None:
    assert mann_whitney_u([5.0] * 4, [5.0] * 3).p_value == 1.0
    assert mann_whitney_u([5.0] * 4, [5.0] * 3, exact=False).p_value == 1.0


def test_mann_whitney_needs_values() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney_u([], [1.0])


def test_exact_and_normal_agree_for_larger_samples() -> None:
    x = [10 + 0.37 * ((i * 7) % 25) for i in range(25)]
    y = [10.9 + 0.37 * ((i * 11) % 25) for i in range(25)]
    exact = mann_whitney_u(x, y, exact=True).p_value
    normal = mann_whitney_u(x, y, exact=False).p_value
    assert exact == pytest.approx(normal, rel=0.15)


def test_exact_unbalanced_samples_agree_both_ways_and_with_normal() -> None:
    x = [float(i) for i in range(40)]
    y = [10.5, 20.5, 30.5, 35.5, 38.5]
    forward, backward = mann_whitney_u(x, y), mann_whitney_u(y, x)
    assert forward.method == backward.method == "exact"
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.p_value == pytest.approx(mann_whitney_u(x, y, exact=False).p_value, rel=0.1)


def test_smallest_p() -> None:
    assert smallest_p(5, 5) == pytest.approx(2 / 252)
    assert smallest_p(4, 4) > 0.01 > smallest_p(5, 5)


def _brute_force_p(x: list[int], y: list[int]) -> float:
    pooled = x + y
    ordered = sorted(pooled)
    rank = {
        v: sum(i + 1 for i, w in enumerate(ordered) if w == v) / ordered.count(v) for v in pooled
    }
    observed = sum(rank[v] for v in y)
    sums = [
        sum(rank[pooled[i]] for i in c) for c in itertools.combinations(range(len(pooled)), len(y))
    ]
    low = sum(s <= observed + 1e-9 for s in sums)
    high = sum(s >= observed - 1e-9 for s in sums)
    return min(1.0, 2 * min(low, high) / len(sums))


small_ints = st.lists(st.integers(0, 6), min_size=1, max_size=6)


@given(small_ints, small_ints)
def test_exact_p_matches_enumeration_of_all_orderings(x: list[int], y: list[int]) -> None:
    assert mann_whitney_u(x, y).p_value == pytest.approx(_brute_force_p(x, y), abs=1e-12)


@given(small_ints, small_ints)
def test_mann_whitney_is_symmetric(x: list[int], y: list[int]) -> None:
    forward, backward = mann_whitney_u(x, y), mann_whitney_u(y, x)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.u + backward.u == len(x) * len(y)


# ---------------------------------------------------------------------------
# metric values


def test_metric_value_prefers_round_samples() -> None:
    r = make_result(rounds={"throughput_gbps": [3.0, 1.0, None, 2.0]}, throughput_gbps=9.0)
    value = metric_value(r, "throughput_gbps")
    assert value.samples == (3.0, 1.0, 2.0)
    assert value.value == 2.0


def test_metric_value_single_values() -> None:
    r = make_result(
        syscalls_per_message={"sendmsg": 1.0, "total": 1.25},
        ipc=None,
        odd={"sendmsg": 1.0},
        label="x",
        flag=True,
        cpu_ns_per_byte=0.5,
        zerocopy={"copied": 7},
        counters={"task-clock": {"value": 12.5, "status": "ok", "running_fraction": 1.0}},
    )
    assert metric_value(r, "syscalls_per_message").value == 1.25
    assert metric_value(r, "syscalls_per_message.sendmsg").value == 1.0
    assert metric_value(r, "cpu_ns_per_byte").value == 0.5
    assert metric_value(r, "zerocopy.copied").value == 7.0
    assert metric_value(r, "counters.task-clock.value").value == 12.5
    assert parse_rules("counters.task-clock.value:+5%")[0].metric == "counters.task-clock.value"
    assert metric_value(r, "ipc").reason == "null (not counted)"
    assert metric_value(r, "nothing").reason == "not recorded"
    assert metric_value(r, "zerocopy.nothing").reason == "not recorded"
    assert metric_value(r, "odd").reason == "an object without a 'total'"
    assert metric_value(r, "label").value is None
    assert metric_value(r, "flag").value is None


def test_benchmark_id() -> None:
    assert benchmark_id(("two_copy", 4096, 2)) == "two_copy-4096B-2t"


# ---------------------------------------------------------------------------
# the properties the issue asks for

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
spreads = st.lists(st.floats(min_value=0, max_value=0.05), min_size=5, max_size=15)


@given(
    samples=st.lists(positive, min_size=1, max_size=15),
    syscalls=positive,
    rules=st.lists(
        st.builds(
            Rule,
            metric=st.sampled_from(["throughput_gbps", "cpu_ns_per_byte", "syscalls_per_message"]),
            direction=st.sampled_from([1, -1]),
            threshold=st.floats(min_value=0, max_value=50),
            percent=st.booleans(),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda r: r.metric,
    ),
)
def test_identical_samples_never_fail(
    samples: list[float], syscalls: float, rules: list[Rule]
) -> None:
    result = sampled(samples, samples, {"total": syscalls})
    outcome = compare_runs(make_run(result), make_run(result), rules, two_sided=True)
    assert not outcome.failed
    # (issue 12: too few rounds for an interval are undecided, never a silent pass)
    assert {row.verdict for row in outcome.rows} <= {OK, UNDECIDED}


@given(
    scale=positive,
    spread=spreads,
    factor=st.floats(min_value=0.2, max_value=0.85),
    metric=st.sampled_from(["throughput_gbps", "cpu_ns_per_byte"]),
    slower=st.booleans(),
)
def test_samples_scaled_beyond_the_threshold_fail_the_bad_way(
    scale: float, spread: list[float], factor: float, metric: str, slower: bool
) -> None:
    base = [scale * (1 + e) for e in spread]  # within 5%
    # throughput: a drop is bad; cpu per byte: a rise is bad. Scaled by 0.85 or less
    # (or its inverse, 1.18 or more), the samples are clearly apart: beyond 10% both ways.
    bad_way = factor if metric == "throughput_gbps" else 1 / factor
    scaled = [v * (bad_way if slower else 1 / bad_way) for v in base]
    other = "cpu_ns_per_byte" if metric == "throughput_gbps" else "throughput_gbps"
    rounds_old = {metric: base, other: base}
    rounds_new = {metric: scaled, other: base}
    outcome = compare_runs(
        make_run(make_result(rounds=rounds_old)),
        make_run(make_result(rounds=rounds_new)),
        ABSOLUTE,
    )
    rows = rows_by_metric(outcome)
    assert rows[other].verdict == OK
    assert rows["syscalls_per_message"].verdict == NOT_COMPARABLE
    if slower:
        assert rows[metric].verdict == REGRESSION
        assert outcome.failed
        assert outcome.summary().startswith("netcopy gate: 1 regression in two_copy-4096B-1t")
    else:
        assert rows[metric].verdict == IMPROVEMENT
        assert not outcome.failed
        two_sided = compare_runs(
            make_run(make_result(rounds=rounds_old)),
            make_run(make_result(rounds=rounds_new)),
            ABSOLUTE,
            two_sided=True,
        )
        assert two_sided.failed
        assert "two-sided: refresh the baseline" in two_sided.summary()
    assert rows[metric].p_value is not None and rows[metric].p_value < 0.01


@given(
    base=st.lists(positive, min_size=1, max_size=15),
    noise=st.data(),
    threshold=st.floats(min_value=0.5, max_value=50),
)
def test_noise_within_the_threshold_passes(
    base: list[float], noise: st.DataObject, threshold: float
) -> None:
    within = threshold / 100 * 0.99
    factors = noise.draw(
        st.lists(
            st.floats(min_value=1 - within, max_value=1 + within),
            min_size=len(base),
            max_size=len(base),
        )
    )
    current = [b * f for b, f in zip(base, factors, strict=True)]
    rules = [
        Rule("throughput_gbps", -1, threshold, True),
        Rule("throughput_gbps", 1, threshold, True),
        Rule("cpu_ns_per_byte", 1, threshold, True),
    ]
    outcome = compare_runs(
        make_run(sampled(base, base)), make_run(sampled(current, current)), rules, two_sided=True
    )
    assert not outcome.failed
    # (issue 12: an interval that reaches beyond the threshold is undecided, not a pass)
    assert {row.verdict for row in outcome.rows} <= {OK, UNDECIDED}


absent_ways = st.sampled_from(["absent", "null", "null total", "not a number"])


@given(
    side=st.sampled_from(["baseline", "current", "both"]),
    how=absent_ways,
    metric=st.sampled_from(["cpu_ns_per_byte", "syscalls_per_message", "ipc"]),
    change=st.floats(min_value=0.1, max_value=10),
)
def test_an_absent_metric_is_never_a_pass(side: str, how: str, metric: str, change: float) -> None:
    def build(present: bool, value: float) -> Result:
        if present:
            values: dict[str, Any] = {metric: value}
            return make_result(**values)
        raw: Any = {
            "null": None,
            "null total": {"total": None},
            "not a number": "n/a",
        }.get(how)
        values = {} if how == "absent" else {metric: raw}
        return make_result(**values)

    old = build(side == "current", 1.0)
    new = build(side == "baseline", change)
    rule = Rule(metric, 1, 0.0, False)
    outcome = compare_runs(make_run(old), make_run(new), [rule], two_sided=True)
    (row,) = outcome.rows
    assert row.verdict == NOT_COMPARABLE
    assert row.reason
    if side != "current":
        assert "baseline:" in row.reason
    if side != "baseline":
        assert "current:" in row.reason
    assert not outcome.failed  # the caller fails an empty gate (issue 13)
    assert outcome.empty
    assert outcome.summary().endswith("all 1 row of 1 benchmark not comparable")


@given(
    value=st.floats(min_value=0.5, max_value=5),
    factor=st.floats(min_value=0.5, max_value=2),
)
def test_single_values_are_judged_on_the_threshold_only(value: float, factor: float) -> None:
    old = make_result(syscalls_per_message={"sendmsg": value, "total": value})
    new = make_result(syscalls_per_message={"sendmsg": value, "total": value * factor})
    rule = Rule("syscalls_per_message", 1, 10, True)
    (row,) = compare_runs(make_run(old), make_run(new), [rule]).rows
    assert row.p_value is None
    assert row.test == "n/a: single value"
    change = (value * factor - value) / value
    expected = REGRESSION if change > 0.1 else IMPROVEMENT if change < -0.1 else OK
    assert row.verdict == expected


# ---------------------------------------------------------------------------
# compare_runs: the cases around the properties


def test_beyond_the_threshold_but_not_significant_is_undecided_and_says_so() -> None:
    base = [10, 12, 8, 11, 9, 10.5, 9.5, 13, 7, 10]  # median 10
    current = [8.5, 10, 7, 9.5, 12, 8, 9, 11, 6, 8.8]  # median 8.9: -11%, but overlapping
    outcome = compare_runs(
        make_run(sampled(base, base)), make_run(sampled(current, base)), ABSOLUTE[:1]
    )
    (row,) = outcome.rows
    assert row.change == pytest.approx(-0.11)
    assert row.p_value == pytest.approx(0.2111, abs=1e-4)
    assert row.verdict == UNDECIDED  # issue 12: was "ok"
    assert "not significant" in row.reason
    assert not outcome.failed


def test_too_few_rounds_fall_back_to_the_threshold() -> None:
    base, current = [10.0, 10.1, 9.9], [5.0, 5.1, 4.9]
    (row,) = compare_runs(
        make_run(sampled(base, base)), make_run(sampled(current, base)), ABSOLUTE[:1]
    ).rows
    assert row.verdict == REGRESSION
    assert row.p_value is None
    assert row.test == "n/a: 3+3 rounds, too few for p < 0.01"


def test_rounds_on_one_side_only_compare_single_values() -> None:
    old = make_result(cpu_ns_per_byte=1.0)
    new = make_result(rounds={"cpu_ns_per_byte": [1.5] * 10}, cpu_ns_per_byte=1.5)
    (row,) = compare_runs(make_run(old), make_run(new), [Rule("cpu_ns_per_byte", 1, 10, True)]).rows
    assert (row.verdict, row.test) == (REGRESSION, "n/a: no rounds in baseline")


def test_percent_rule_on_a_zero_baseline() -> None:
    rule = Rule("x", 1, 10, True)
    zero, one = make_result(x=0.0), make_result(x=1.0)
    (row,) = compare_runs(make_run(zero), make_run(one), [rule]).rows
    assert row.verdict == NOT_COMPARABLE
    assert "baseline is 0" in row.reason
    (same,) = compare_runs(make_run(zero), make_run(zero), [rule]).rows
    assert same.verdict == OK
    (absolute,) = compare_runs(make_run(zero), make_run(one), [Rule("x", 1, 0, False)]).rows
    assert absolute.verdict == REGRESSION


def test_overrides_replace_rules_of_the_same_metric_for_one_benchmark() -> None:
    base = [10.0 + 0.01 * i for i in range(10)]
    slow = [v * 0.8 for v in base]
    a_old, a_new = sampled(base, base, size=4096), sampled(slow, base, size=4096)
    b_old, b_new = sampled(base, base, size=65536), sampled(slow, base, size=65536)
    rules = [Rule("throughput_gbps", -1, 10, True), Rule("cpu_ns_per_byte", 1, 10, True)]
    loose = [Rule("throughput_gbps", -1, 25, True)]
    keys: list[tuple[str, int, int] | str] = [("two_copy", 4096, 1), "two_copy-4096B-1t"]
    for key in keys:
        outcome = compare_runs(
            make_run(a_old, b_old), make_run(a_new, b_new), rules, overrides={key: loose}
        )
        verdicts = {(r.benchmark, r.metric): (r.verdict, str(r.rule)) for r in outcome.rows}
        assert verdicts == {
            ("two_copy-4096B-1t", "cpu_ns_per_byte"): (OK, "cpu_ns_per_byte:+10%"),
            ("two_copy-4096B-1t", "throughput_gbps"): (OK, "throughput_gbps:-25%"),
            ("two_copy-65536B-1t", "throughput_gbps"): (REGRESSION, "throughput_gbps:-10%"),
            ("two_copy-65536B-1t", "cpu_ns_per_byte"): (OK, "cpu_ns_per_byte:+10%"),
        }


def test_missing_benchmarks_are_listed_on_both_sides() -> None:
    samples = [1.0] * 5
    old = make_run(sampled(samples, samples, mode="a"), sampled(samples, samples, mode="b"))
    new = make_run(sampled(samples, samples, mode="b"), sampled(samples, samples, mode="c"))
    outcome = compare_runs(old, new, DEFAULT_RULES[:1])
    assert outcome.missing_in_current == ["a-4096B-1t"]
    assert outcome.missing_in_baseline == ["c-4096B-1t"]
    assert outcome.compared == 1
    text = outcome.render()
    assert "in the baseline only (not run now, not compared): a-4096B-1t" in text
    assert "new, not in the baseline (not compared): c-4096B-1t" in text


def test_nothing_in_common_is_said_plainly() -> None:
    one = [1.0] * 5
    outcome = compare_runs(
        make_run(sampled(one, one, mode="a")), make_run(sampled(one, one, mode="b")), DEFAULT_RULES
    )
    assert outcome.rows == []
    assert not outcome.failed
    assert outcome.render().splitlines()[-1] == (
        "netcopy gate: nothing judged: no benchmark is in both runs"
    )


def test_benchmarks_sharing_a_key_are_not_comparable() -> None:
    one = [1.0] * 5
    twin = Result("test_other[two_copy-4096B-1t]", None, sampled(one, one).extra, {})
    outcome = compare_runs(
        make_run(sampled(one, one)), make_run(sampled(one, one), twin), DEFAULT_RULES[:1]
    )
    (row,) = outcome.rows
    assert row.verdict == NOT_COMPARABLE
    assert "2 benchmarks in the current run share it" in row.reason


def test_the_decision_is_deterministic() -> None:
    base = [10.0, 10.3, 9.8, 10.1, 9.9, 10.2, 10.4, 9.7]
    current = [8.9, 9.2, 8.7, 9.0, 8.8, 9.1, 9.3, 8.6]
    old, new = make_run(sampled(base, base)), make_run(sampled(current, current))
    first = compare_runs(old, new, DEFAULT_RULES)
    assert all(compare_runs(old, new, DEFAULT_RULES) == first for _ in range(3))


# ---------------------------------------------------------------------------
# machines

NETCOPY_A = {"kernel_release": "6.1.0", "cpu_model": "Xeon", "cpu_count": 8}


def test_machine_differences_read_netcopy_keys_then_pytest_benchmark_keys() -> None:
    r = sampled([1.0] * 5, [1.0] * 5)
    a = make_run(r, machine={"netcopy": NETCOPY_A})
    b = make_run(r, machine={"release": "6.8.0", "cpu": {"brand_raw": "Xeon", "count": 4}})
    assert [(d.fact, d.baseline, d.current) for d in machine_differences(a, b)] == [
        ("kernel_release", "6.1.0", "6.8.0"),
        ("cpu_count", "8", "4"),
    ]
    assert machine_differences(a, a) == []
    # unknown on one side: nothing to say, nothing to refuse
    assert machine_differences(a, make_run(r)) == []


def test_strict_machine_refuses_and_lists_the_differences() -> None:
    r = sampled([1.0] * 5, [1.0] * 5)
    a = make_run(r, machine={"netcopy": NETCOPY_A})
    b = make_run(r, machine={"netcopy": dict(NETCOPY_A, cpu_model="EPYC")})
    with pytest.raises(MachineMismatch) as info:
        compare_runs(a, b, DEFAULT_RULES, strict_machine=True)
    assert "cpu_model 'Xeon' (baseline) vs 'EPYC' (current)" in str(info.value)
    outcome = compare_runs(a, b, DEFAULT_RULES)
    lines = outcome.render().splitlines()
    assert lines[0].startswith("machines differ")
    assert "cpu_model 'Xeon' (baseline) vs 'EPYC' (current)" in lines[1]
    assert lines[2].split()[:2] == ["benchmark", "metric"]
    assert compare_runs(a, a, DEFAULT_RULES, strict_machine=True).machine_differences == []


# ---------------------------------------------------------------------------
# rendering and the fixture files


def test_render_on_the_fixture_files() -> None:
    base, slower = load_run(DATA / "baseline.json"), load_run(DATA / "slower.json")
    outcome = compare_runs(base, slower, DEFAULT_RULES)
    lines = outcome.render().splitlines()
    assert lines[0].split() == [
        "benchmark", "metric", "rule", "baseline", "current", "change",
        "p", "(Mann-Whitney", "U)", "verdict",
    ]  # fmt: skip
    assert lines[-1] == (
        "netcopy gate: 4 regressions in two_copy-4096B-1t "
        "(throughput_vs_control, cpu_vs_control, syscalls_per_message, "
        "user_instructions_per_message)"
    )
    table = "\n".join(lines)
    assert "-20.0%" in table and "REGRESSION" in table and "IMPROVEMENT" in table
    assert "new, not in the baseline (not compared): two_copy-65536B-1t" in table
    assert "Rerun to confirm it" in table
    # 4 rules each on the 3 benchmarks (the instruction count by one of its two rules)
    assert len(outcome.rows) == 12

    rerun = compare_runs(base, load_run(DATA / "rerun.json"), DEFAULT_RULES)
    assert not rerun.failed
    assert rerun.render().splitlines()[-1] == "netcopy gate: no regression in 3 benchmarks"


def test_render_other_formats() -> None:
    base = load_run(DATA / "baseline.json")
    text = compare_runs(base, base, DEFAULT_RULES).render("github")
    assert "| two_copy-4096B-1t " in text
    assert text.splitlines()[-1] == "netcopy gate: no regression in 3 benchmarks"


# ---------------------------------------------------------------------------
# the speed guard: figures from two machine speeds are not judged


def with_control(gbps: list[float], control_gbps: float, mode: str = "two_copy") -> Result:
    """A benchmark with ratio figures, user CPU from a pass, and its control's speed."""
    ratio = [g / control_gbps for g in gbps]
    return make_result(
        mode=mode,
        rounds={"throughput_gbps": gbps, "throughput_vs_control": ratio},
        pass_rounds={"user_cpu_ns_per_byte": [0.02 + 0.0001 * i for i in range(6)]},
        throughput_gbps=gbps[5],
        throughput_vs_control=ratio[5],
        user_cpu_ns_per_byte=0.0203,
        control={"mode": "bare_send", "throughput_gbps": control_gbps},
    )


GUARD_RULES = parse_rules("throughput_vs_control:-5% user_cpu_ns_per_byte:+25%")
SLOW_LEVEL = [40.0 + 0.1 * i for i in range(10)]


def test_a_benchmark_measured_at_another_speed_is_not_judged_on_speed_figures() -> None:
    # the same code at the machine's slow and fast speed: the ratio moved (-10%),
    # the control by +35%; the user CPU did not move and is judged all the same
    old = make_run(with_control(SLOW_LEVEL, 46.0))
    new = make_run(with_control([g * 1.22 for g in SLOW_LEVEL], 62.0))
    outcome = compare_runs(old, new, GUARD_RULES)
    ratio, user = outcome.rows
    assert ratio.verdict == NOT_COMPARABLE
    assert ratio.reason == (
        "the machine ran at another speed (control 46 -> 62 Gbps, +34.8%, beyond 5%)"
    )
    assert ratio.baseline == pytest.approx(statistics.median(SLOW_LEVEL) / 46)
    assert ratio.current is not None
    assert user.verdict == OK
    assert outcome.speed_changed == ["two_copy-4096B-1t"] and not outcome.failed
    assert outcome.summary() == (  # issue 12: not comparable rows count as undecided
        "netcopy gate: no regression in 1 benchmark; 1 undecided: two_copy-4096B-1t "
        "(throughput_vs_control: the machine ran at another speed)"
    )
    # off: judged at any speed, and then it is a regression
    judged = compare_runs(old, new, GUARD_RULES, speed_tolerance=None)
    assert judged.rows[0].verdict == REGRESSION and not judged.speed_changed


@pytest.mark.parametrize(
    ("control", "tolerance", "guarded"),
    [(44.0, 0.10, False), (44.1, 0.10, True), (36.0, 0.10, False), (35.9, 0.10, True),
     (41.0, 0.025, False), (41.1, 0.025, True), (80.0, 0.0, True), (40.0, 0.0, False)],
)  # fmt: skip
def test_the_guard_acts_only_beyond_the_tolerance(
    control: float, tolerance: float, guarded: bool
) -> None:
    old = make_run(with_control(SLOW_LEVEL, 40.0))
    new = make_run(with_control(SLOW_LEVEL, control))
    outcome = compare_runs(old, new, GUARD_RULES, speed_tolerance=tolerance)
    assert (outcome.rows[0].verdict == NOT_COMPARABLE) == guarded
    assert outcome.rows[1].verdict != NOT_COMPARABLE  # user CPU: never guarded


def test_the_guard_needs_the_control_on_both_sides() -> None:
    old = make_run(with_control(SLOW_LEVEL, 40.0))
    bare = with_control(SLOW_LEVEL, 80.0)
    new = make_run(
        Result(bare.name, bare.group, {k: v for k, v in bare.extra.items() if k != "control"}, {})
    )
    outcome = compare_runs(old, new, GUARD_RULES)
    assert outcome.rows[0].verdict == REGRESSION  # no speed to compare: judged as it is
    assert not outcome.speed_changed


def test_without_control_figures_there_is_nothing_to_guard_on() -> None:
    old = make_run(sampled([10.0] * 10, [1.0] * 10))
    new = make_run(sampled([5.0] * 10, [1.0] * 10))
    outcome = compare_runs(old, new, parse_rules("throughput_gbps:-10%"))
    assert outcome.rows[0].verdict == REGRESSION


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.10), (" 2.5% ", 0.025), ("0%", 0.0), ("off", None), ("OFF", None)]
)
def test_speed_tolerance_parses(text: str, value: float | None) -> None:
    assert parse_speed_tolerance(text) == value


@pytest.mark.parametrize("text", ["", "-5%", "ten", "10%%", "1e999%", "10", "0.1"])
def test_speed_tolerance_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a percentage with its '%' such as '10%'"):
        parse_speed_tolerance(text)


# ---------------------------------------------------------------------------
# the names a rule may use (issue 13): unknown metrics and modes are errors


@pytest.mark.parametrize(
    "metric",
    [
        "throughput_gbps", "cpu_ns_per_byte", "user_cpu_ns_per_byte", "throughput_vs_control",
        "syscalls_per_message", "syscalls_per_message.sendmsg", "syscalls_per_message.total",
        "sink_syscalls_per_message.recvfrom", "counters.task-clock.value",
        "counters.LLC-load-misses.running_fraction", "sink_counters.task-clock.value",
        "zerocopy.copied", "integrity.verified_bytes", "control.throughput_gbps",
        "user_time.lost", "steal_ms", "ns_per_message",
    ],
)  # fmt: skip
def test_every_metric_a_result_can_record_is_accepted(metric: str) -> None:
    check_rules(parse_rules(f"{metric}:+10%"))


@pytest.mark.parametrize(
    "metric",
    [
        "throughput_gpbs", "cpu", "counters.task-clock", "counters.cycle.value",
        "sink_counters.cycles.value", "throughput_gbps.total", "syscalls_per_message.send",
        "syscalls_per_message.not_counted", "mode", "rounds.throughput_gbps",
        "integrity.ok", "zerocopy", "placement.pinned",
    ],
)  # fmt: skip
def test_an_unknown_metric_is_an_error_listing_the_valid_names(metric: str) -> None:
    with pytest.raises(ValueError) as info:
        check_rules(parse_rules(f"{metric}:-10%"))
    message = str(info.value)
    assert f"bad gate rule '{metric}:-10%': unknown metric {metric!r}" in message
    assert "throughput_gbps, " in message and "syscalls_per_message" in message
    assert "\n" not in message


def test_an_unknown_mode_is_an_error_listing_the_known_modes() -> None:
    known = ("two_copy", "one_copy", "zero_copy")
    check_rules(parse_rules("throughput_gbps:-10%@two_copy/zero_copy"), known)
    check_rules(parse_rules("throughput_gbps:-10%@two_cpy"))  # no modes given: not checked
    with pytest.raises(ValueError) as info:
        check_rules(parse_rules("throughput_gbps:-10%@-two_cpy"), known)
    assert str(info.value) == (
        "bad gate rule 'throughput_gbps:-10%@-two_cpy': unknown mode 'two_cpy'; "
        "expected modes from: two_copy, one_copy, zero_copy"
    )


def test_the_defaults_name_known_metrics() -> None:
    check_rules(DEFAULT_RULES, ("two_copy", "one_copy", "zero_copy"))


def test_the_catalogue_knows_the_counter_events_and_syscalls_recorded() -> None:
    from pytest_netcopy.bench.passes import SENDER_SYSCALLS, SINK_SYSCALLS
    from pytest_netcopy.instruments.counters import EVENTS

    for event in EVENTS:
        check_rules(parse_rules(f"counters.{event}.value:+1"))
    for name in SENDER_SYSCALLS:
        check_rules(parse_rules(f"syscalls_per_message.{name}:+1"))
    for name in SINK_SYSCALLS:
        check_rules(parse_rules(f"sink_syscalls_per_message.{name}:+1"))


# ---------------------------------------------------------------------------
# a comparison that judged nothing says so (issue 13)


def test_nothing_judged_when_no_benchmark_is_in_both_runs() -> None:
    one = [1.0] * 5
    outcome = compare_runs(
        make_run(sampled(one, one, mode="a")), make_run(sampled(one, one, mode="b")), DEFAULT_RULES
    )
    assert outcome.judged == 0 and outcome.empty


def test_nothing_judged_when_every_row_is_not_comparable() -> None:
    one = [1.0] * 5
    rules = parse_rules("user_cpu_ns_per_byte:+25%")  # recorded on neither side
    outcome = compare_runs(make_run(sampled(one, one)), make_run(sampled(one, one)), rules)
    assert outcome.compared == 1 and len(outcome.rows) == 1
    assert outcome.empty and not outcome.failed
    assert outcome.summary() == (
        "netcopy gate: nothing judged: all 1 row of 1 benchmark not comparable"
    )


def test_something_judged_is_not_empty() -> None:
    one = [1.0] * 5
    rules = parse_rules("throughput_gbps:-10% user_cpu_ns_per_byte:+25%")
    outcome = compare_runs(make_run(sampled(one, one)), make_run(sampled(one, one)), rules)
    assert outcome.judged == 1 and not outcome.empty
