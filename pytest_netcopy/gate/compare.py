"""Compare a run with a baseline and decide regressions: pure functions over plain data.

Used by the pytest gate (``--netcopy-baseline``/``--netcopy-gate``) and by
``netcopy compare``; nothing in the gate imports pytest, so every decision can
be property-tested on its own. docs/gate.md explains the rules and the statistic.

A row of the comparison is one benchmark (matched by mode, size and threads)
and one metric. The change is the relative difference of the medians (or of
the single values where a metric has no per-round samples). It is a
*regression* when it goes the rule's bad way by more than the rule's threshold
AND a two-sided Mann-Whitney U test on the per-round samples gives p < alpha;
the mirror case is an *improvement*. Otherwise it is *no regression* when the
distribution-free interval on the change (same alpha) stays within the
threshold the bad way, shown with the smallest change the rounds' noise lets
the test see, and *undecided* when it does not (or the rounds are too few).
Single values (counts) are judged by the threshold alone. A metric that is
absent or null on either side is *not comparable*, with the reason: never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pytest_netcopy.gate import render
from pytest_netcopy.gate.metrics import control_speed_change, metric_value
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.patterns import (
    RR,
    MatchKey,
    applicable,
    match_key,
    not_applicable_note,
    pattern_of,
    result_id,
)
from pytest_netcopy.gate.policy import (
    DEFAULT_ALPHA,
    DEFAULT_SPEED_TOLERANCE,
    MIN_MATCHED_ROUNDS,
    SPEED_INDEPENDENT,
    SPEED_REASON,
)
from pytest_netcopy.gate.render import speed_reason
from pytest_netcopy.gate.row import (
    BEYOND_NOT_SIGNIFICANT,
    IMPROVEMENT,
    NO_REGRESSION,
    REGRESSION,
    STRADDLES,
    TOO_FEW_ROUNDS,
    UNDECIDED,
    Row,
    not_comparable,
)
from pytest_netcopy.gate.rules import Rule
from pytest_netcopy.gate.sequential import design_alpha
from pytest_netcopy.gate.speed import Matched, Unmatched, comparable_rounds, restrict
from pytest_netcopy.gate.stats import detectable_change, shift_interval, significance
from pytest_netcopy.results import schema
from pytest_netcopy.results.machine import MachineDifference, differing_facts
from pytest_netcopy.results.runs import Result, Run

__all__ = [
    "BenchmarkKey",
    "MachineMismatch",
    "benchmark_id",
    "compare_runs",
    "judge_benchmark",
    "machine_differences",
    "rules_for",
]

BenchmarkKey = tuple[str, int, int]
Overrides = Mapping[BenchmarkKey | str, Sequence[Rule]]


def benchmark_id(key: BenchmarkKey) -> str:
    """``('two_copy', 4096, 2)`` -> ``'two_copy-4096B-2t'`` (the pytest id)."""
    return schema.benchmark_id(*key)


class MachineMismatch(Exception):
    """The runs come from different machines and a strict comparison was asked for."""

    def __init__(self, differences: Sequence[MachineDifference]) -> None:
        self.differences = list(differences)
        listed = "; ".join(str(d) for d in self.differences)
        super().__init__(
            f"refusing to compare runs from different machines (strict machine check): {listed}"
        )


def machine_differences(baseline: Run, current: Run) -> list[MachineDifference]:
    """Kernel release, CPU model and CPU count that both runs recorded and that differ."""
    return differing_facts(baseline.machine_info, current.machine_info)


def _compare_metric(
    bench: str,
    rule: Rule,
    base_result: Result,
    cur_result: Result,
    alpha: float,
    matched: Matched | None = None,
) -> Row:
    """One rule on one benchmark; ``matched``: only those rounds (the speed guard's)."""
    if matched is None:
        old = metric_value(base_result, rule.metric)
        new = metric_value(cur_result, rule.metric)
    else:
        old = restrict(base_result, rule.metric, matched.baseline)
        new = restrict(cur_result, rule.metric, matched.current)
    if old.value is None or new.value is None:
        sides = []
        if old.value is None:
            sides.append(f"baseline: {old.reason}")
        if new.value is None:
            sides.append(f"current: {new.reason}")
        return not_comparable(bench, rule, old.value, new.value, "; ".join(sides))
    base, cur = old.value, new.value
    change = (cur - base) / abs(base) if base != 0 else None
    if rule.percent:
        if change is None:
            if cur != base:
                return not_comparable(
                    bench, rule, base, cur, "baseline is 0: a percent threshold cannot apply"
                )
            change = 0.0
        size = change
    else:
        size = cur - base
    # the bad way, and the good way, each beyond the threshold (strictly)
    worse = rule.direction * size > rule.limit
    better = -rule.direction * size > rule.limit
    level = _level(cur_result, rule.metric, alpha)
    judged = significance(old.samples, new.samples, level)
    test = judged.test
    if matched is not None and matched.note():
        test = f"{test}; {matched.note()}"
    row = Row(bench, rule.metric, rule, base, cur, change, judged.p_value, test, "")
    if worse and judged.significant:
        return replace(row, verdict=REGRESSION, alpha=level)
    if better and judged.significant:
        return replace(row, verdict=IMPROVEMENT, alpha=level)
    if not (old.samples and new.samples):
        alone = "count" if not (old.samples or new.samples) else judged.test.removeprefix("n/a: ")
        return replace(row, verdict=NO_REGRESSION, reason=f"{alone}; threshold alone")
    return _decide(replace(row, alpha=level), old.samples, new.samples, worse)


def _decide(row: Row, old: Sequence[float], new: Sequence[float], worse: bool) -> Row:
    """No regression or undecided, for a row with rounds on both sides that is not a
    regression: from the interval on the change at the row's level."""
    rule, level = row.rule, row.alpha if row.alpha is not None else DEFAULT_ALPHA
    ratio = rule.percent and min(*old, *new) > 0
    scale = 1.0 if ratio or not rule.percent else abs(row.baseline or 0.0)
    interval = shift_interval(old, new, level, ratio=ratio)
    detect = detectable_change(old, new, level, ratio=ratio, direction=rule.direction)
    if scale == 0:
        interval = detect = None
    if interval is not None and scale != 1.0:
        interval = (interval[0] / scale, interval[1] / scale)
    if detect is not None:
        detect /= scale
    row = replace(row, interval=interval, detectable=detect)
    seen = render.detectable_text(row, settled=False)
    if worse:
        reason = f"{BEYOND_NOT_SIGNIFICANT} (p >= {level:.2g}); {seen}"
        return replace(row, verdict=UNDECIDED, reason=reason, why=BEYOND_NOT_SIGNIFICANT)
    if interval is None:
        reason = f"{TOO_FEW_ROUNDS} ({len(old)}+{len(new)}) for an interval at {level:.2g}"
        return replace(row, verdict=UNDECIDED, reason=reason, why=TOO_FEW_ROUNDS)
    bad = interval[1] if rule.direction > 0 else interval[0]
    if rule.direction * bad <= rule.limit:
        return replace(row, verdict=NO_REGRESSION, reason=render.detectable_text(row))
    reason = f"{STRADDLES}: {render.interval_text(row)}; {seen}"
    return replace(row, verdict=UNDECIDED, reason=reason, why=STRADDLES)


def _level(result: Result, metric: str, alpha: float) -> float:
    """The level a metric is tested at: the gate's, or on measured rounds that took
    several looks (a ``gate_rounds`` record) the last look's share of it."""
    rounds = result.extra.get("rounds")
    if not (isinstance(rounds, Mapping) and rounds.get(metric)):
        return alpha
    level = design_alpha(result.extra, alpha)
    return alpha if level is None else level


def rules_for(key: BenchmarkKey, rules: Sequence[Rule], overrides: Overrides | None) -> list[Rule]:
    """The session rules, with an override's rules replacing those of the same metrics;
    only the rules that apply to the benchmark's mode."""
    extra = None
    if overrides:
        extra = overrides.get(key)
        if extra is None:
            extra = overrides.get(benchmark_id(key))
    chosen = list(rules)
    if extra is not None:
        replaced = {r.metric for r in extra}
        chosen = [r for r in rules if r.metric not in replaced] + list(extra)
    return [r for r in chosen if r.applies_to(key[0])]


def _index(run: Run) -> tuple[dict[MatchKey, Result], dict[MatchKey, list[str]]]:
    """The run's benchmarks by key (with pattern and rate), and the keys that more than
    one benchmark share."""
    seen: dict[MatchKey, list[Result]] = {}
    for result in run.results:
        seen.setdefault(match_key(result), []).append(result)
    dupes = {k: [r.name for r in v] for k, v in seen.items() if len(v) > 1}
    return {k: v[-1] for k, v in seen.items()}, dupes


def _shared_reason(
    key: MatchKey,
    old_dupes: dict[MatchKey, list[str]],
    new_dupes: dict[MatchKey, list[str]],
) -> str | None:
    """Why a benchmark cannot be compared when several in one run share its key."""
    if key not in old_dupes and key not in new_dupes:
        return None
    names = old_dupes.get(key) or new_dupes[key]
    side = "baseline" if key in old_dupes else "current run"
    return f"{len(names)} benchmarks in the {side} share it: {', '.join(names)}"


def _speed(old: Result, new: Result, tolerance: float | None) -> str | Matched | None:
    """The speed guard: the rounds of both runs at a common control speed (gate/speed.py),
    or why the speed figures are not judged, or None (judge everything as it is)."""
    if tolerance is None:
        return None
    match = comparable_rounds(old, new, tolerance, MIN_MATCHED_ROUNDS)
    if match is None:  # no per-round control speeds: the guard by medians
        return _moved_reason(old, new, tolerance)
    if isinstance(match, Unmatched):
        return match.reason
    return match


def _moved_reason(old: Result, new: Result, tolerance: float | None) -> str | None:
    """Why the speed figures are not judged, when the control send's speed moved more
    than ``tolerance`` (None: never mind the speed)."""
    if tolerance is None:
        return None
    speed = control_speed_change(old, new)
    # (a hair of slack, so 40 -> 44 Gbps is the 10% it reads as, not 10.000000000000009%)
    if speed is None or not abs(speed.change) > tolerance + 1e-9:
        return None
    return speed_reason(speed, tolerance)


def _compare_benchmark(
    bench: str,
    old: Result,
    new: Result,
    rules: Sequence[Rule],
    shared: str | None,
    speed: str | Matched | None,
    alpha: float,
) -> list[Row]:
    """The rows of one benchmark both runs have; ``speed``: what the speed guard says
    (:func:`_speed`), for the speed-dependent rules."""
    rows: list[Row] = []
    for rule in rules:
        guarded = speed is not None and rule.figure not in SPEED_INDEPENDENT
        if shared is not None:
            rows.append(not_comparable(bench, rule, None, None, shared))
        elif guarded and isinstance(speed, str):
            base = metric_value(old, rule.metric).value
            cur = metric_value(new, rule.metric).value
            rows.append(not_comparable(bench, rule, base, cur, speed, SPEED_REASON))
        elif guarded and isinstance(speed, Matched):
            rows.append(_compare_metric(bench, rule, old, new, alpha, speed))
        else:
            rows.append(_compare_metric(bench, rule, old, new, alpha))
    return rows


def judge_benchmark(
    old: Result,
    new: Result,
    rules: Sequence[Rule],
    *,
    alpha: float = DEFAULT_ALPHA,
    speed_tolerance: float | None = DEFAULT_SPEED_TOLERANCE,
) -> list[Row]:
    """The rows of one benchmark, as :func:`compare_runs` judges them (``rules``: those
    that apply to it, overrides already in). What the gate asks at each look."""
    speed = _speed(old, new, speed_tolerance)
    chosen, _ = applicable([r for r in rules if r.applies_to(new.mode)], old, new)
    return _compare_benchmark(result_id(new), old, new, chosen, None, speed, alpha)


def compare_runs(
    baseline: Run,
    current: Run,
    rules: Sequence[Rule],
    *,
    two_sided: bool = False,
    strict_machine: bool = False,
    overrides: Overrides | None = None,
    alpha: float = DEFAULT_ALPHA,
    speed_tolerance: float | None = DEFAULT_SPEED_TOLERANCE,
    strict: bool = False,
) -> GateOutcome:
    """Compare every benchmark both runs have, under ``rules``.

    ``overrides`` maps a benchmark (key ``(mode, size, threads)`` or id
    ``'two_copy-4096B-2t'``) to rules that replace the session's rules for
    the same metrics. Raises MachineMismatch when ``strict_machine`` and the
    machines differ. Where a benchmark's control send changed speed by more
    than ``speed_tolerance`` (None: never mind), its speed-dependent metrics are
    not comparable. ``strict``: undecided rows fail the gate too. Deterministic: same
    input, same outcome.
    """
    differences = machine_differences(baseline, current)
    if strict_machine and differences:
        raise MachineMismatch(differences)
    old_index, old_dupes = _index(baseline)
    new_index, new_dupes = _index(current)
    rows: list[Row] = []
    skipped: dict[str, list[Rule]] = {}
    compared = 0
    for key, new in new_index.items():
        old = old_index.get(key)
        if old is None:
            continue
        compared += 1
        shared = _shared_reason(key, old_dupes, new_dupes)
        speed = _speed(old, new, speed_tolerance)
        rules_here, not_here = applicable(rules_for(key[0], rules, overrides), old, new)
        if pattern_of(new.extra) == RR:
            skipped[result_id(new)] = not_here
        rows += _compare_benchmark(result_id(new), old, new, rules_here, shared, speed, alpha)
    return GateOutcome(
        rows=rows,
        missing_in_current=sorted(result_id(r) for k, r in old_index.items() if k not in new_index),
        missing_in_baseline=sorted(
            result_id(r) for k, r in new_index.items() if k not in old_index
        ),
        machine_differences=differences,
        compared=compared,
        two_sided=two_sided,
        alpha=alpha,
        strict=strict,
        notes=not_applicable_note(skipped),
    )
