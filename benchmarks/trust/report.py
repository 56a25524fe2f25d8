"""The tables of a trust batch: one line per pair, one row per check and size (with the
goals), the speed guard before and after, the gated sessions' agreement, and the
whole-sweep A/A summary."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from statistics import median
from typing import Any

from tabulate import tabulate

from pytest_netcopy.gate.compare import compare_runs
from pytest_netcopy.gate.policy import DEFAULT_SPEED_TOLERANCE
from pytest_netcopy.gate.row import REGRESSION
from pytest_netcopy.gate.rules import Rule, format_rules
from pytest_netcopy.results.runs import Run
from trust.sweeps import BUILDS, Build
from trust.verdicts import UNDECIDED_VERDICTS, guard_state, pct, size_text

#: the issue's goals, per 20 pairs: at most 1 false alarm, at least 19 caught
GOAL_PAIRS, MAX_FALSE_ALARMS, MIN_CAUGHT = 20, 1, 19

#: the whole-sweep A/A goal: falsely failing benchmarks per ordered pair of sweeps
MAX_AA_FAILING_PER_PAIR = 0.1

#: the power the gate's smallest detectable change is quoted at
POWER = 0.8


def _rounds_note(got: Mapping[str, Any]) -> str:
    record = got.get("extra_rounds")
    if not record:
        return ""
    return f" [+{record.get('added', 0)} rounds: {record.get('reason', '')}]"


def pair_text(pair: Mapping[str, Any], builds: Sequence[Build]) -> list[str]:
    """One line per size: each check's verdict and detail (and extra rounds, and the
    offline verdict where a gated session's differs)."""
    checks = [("same", "A/B")] + [(b.name, b.name) for b in builds]
    sizes = sorted({int(s) for kind, _ in checks for s in pair.get(kind, {})})
    lines = []
    for size in sizes:
        parts = []
        for kind, label in checks:
            got = pair.get(kind, {}).get(str(size))
            if got is None:
                continue
            text = f"{label}: {got['verdict']} ({got['detail']}){_rounds_note(got)}"
            if got.get("agree") is False:
                text += f" [offline: {got['offline_verdict']}]"
            parts.append(text)
        lines.append(f"  {size_text(size):>8s}  " + "  |  ".join(parts))
    return lines


def _counts(got: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(regression, undecided, no regression)."""
    return (
        sum(g["verdict"] == "regression" for g in got),
        sum(g["verdict"] == "undecided" for g in got),
        sum(g["verdict"] == "no regression" for g in got),
    )


def predicted_catch(got: list[dict[str, Any]]) -> tuple[int, int] | None:
    """What the gate's smallest detectable changes predict for a regression: the pairs
    whose detectable change of some metric is below that metric's median change the bad
    way over the batch, and POWER of them (rounded down). None: no detectable changes."""
    metrics = {m for g in got for m in g["bad_change"]}
    effect = {m: median(g["bad_change"][m] for g in got if m in g["bad_change"]) for m in metrics}
    if not any(v is not None for g in got for v in g["detectable"].values()):
        return None
    able = sum(
        any((d := g["detectable"].get(m)) is not None and effect[m] >= d for m in effect)
        for g in got
    )
    return able, int(POWER * able)


def goal(kind: str, got: list[dict[str, Any]]) -> str:
    n = len(got)
    failed = sum(g["failed"] for g in got)
    if kind == "same":
        met = failed * GOAL_PAIRS <= MAX_FALSE_ALARMS * n
        return f"<= {MAX_FALSE_ALARMS} per {GOAL_PAIRS}: {'met' if met else 'MISSED'}"
    if kind == "extra_copy":
        met = failed * GOAL_PAIRS >= MIN_CAUGHT * n
        return f">= {MIN_CAUGHT} per {GOAL_PAIRS}: {'met' if met else 'MISSED'}"
    predicted = predicted_catch(got)
    if predicted is None:
        return "MDC not given by this gate: -"
    able, expect = predicted
    met = failed >= expect
    return f"MDC predicts >= {expect} ({able} pairs able): {'met' if met else 'MISSED'}"


def guard_counts(states: Sequence[str]) -> tuple[int, int, int] | None:
    """(comparisons, speed figures judged by the guard by medians, by the guard by
    rounds) over guard states (:func:`guard_state`); None when no rule is on a speed figure."""
    judged = [s for s in states if s != "n/a"]
    if not judged:
        return None
    before = sum(s == "kept" for s in judged)
    return len(judged), before, before + sum(s == "matched" for s in judged)


def guard_cell(got: Sequence[Mapping[str, Any]]) -> str:
    counts = guard_counts([g.get("guard", "kept") for g in got])
    return "-" if counts is None else f"{counts[1]} -> {counts[2]}"


def rounds_cell(got: Sequence[Mapping[str, Any]]) -> str:
    """The extra rounds of a check's gated benchmarks: how many took any, how many (median,
    max), how many stopped at a budget; ``-`` where no benchmark was looked at."""
    records = [g["extra_rounds"] for g in got if g.get("extra_rounds")]
    if not records:
        return "-"
    added = [int(r.get("added") or 0) for r in records]
    budget = sum("budget" in str(r.get("reason", "")) for r in records)
    return (
        f"{sum(a > 0 for a in added)} of {len(records)} took more (median +{median(added):g}, "
        f"max +{max(added)}); {budget} at a budget"
    )


def _checks(builds: Sequence[Build], copies: int) -> list[tuple[str, str]]:
    checks = [("same", "false alarms (same code)")]
    for b in builds:
        label = b.label if b.name != "extra_copy" or copies == 1 else f"{copies} more copies"
        checks.append((b.name, label))
    return checks


def _got(pairs: Sequence[Mapping[str, Any]], kind: str, size: int) -> list[dict[str, Any]]:
    return [p[kind][str(size)] for p in pairs if str(size) in p.get(kind, {})]


def _table_row(kind: str, label: str, size: int, got: list[dict[str, Any]]) -> list[Any]:
    reg, und, ok = _counts(got)
    changes = ", ".join(
        f"{m} {pct(median(v))}"
        for m in sorted({m for g in got for m in g["change"]})
        if (v := [g["change"][m] for g in got if g["change"].get(m) is not None])
    )
    no_mdc = sum(not g["mdc_shown"] for g in got)
    return [label, size_text(size), len(got), reg, und, ok, no_mdc, guard_cell(got),
            rounds_cell(got), changes, goal(kind, got)]  # fmt: skip


HEADERS = [
    "check", "size", "pairs", "regression", "undecided", "no regression",
    "no regression without MDC", "speed figures judged (guard by medians -> by rounds)",
    "extra rounds (gated)", "median change", "goal",
]  # fmt: skip


def summarize(
    pairs: list[dict[str, Any]],
    rules: Sequence[Rule],
    builds: Sequence[Build],
    copies: int = 1,
    tolerance: float | None = DEFAULT_SPEED_TOLERANCE,
) -> str:
    """The batch's table (one row per check and size), the speed guard's before/after
    counts, and whether gated sessions and the offline judging agreed."""
    sizes = sorted({int(s) for p in pairs for kind in ("same", *BUILDS) for s in p.get(kind, {})})
    body = [
        _table_row(kind, label, size, got)
        for kind, label in _checks(builds, copies)
        for size in sizes
        if (got := _got(pairs, kind, size))
    ]
    table = tabulate(body, headers=HEADERS, tablefmt="github", disable_numparse=True)
    lines = [f"rules: {format_rules(rules)}", table, guard_text(pairs, tolerance)]
    agreement = agreement_text(pairs)
    return "\n".join(lines + ([agreement] if agreement else []))


def _all_got(pairs: Sequence[Mapping[str, Any]]) -> list[tuple[int, str, str, dict[str, Any]]]:
    return [
        (p["pair"], kind, size, got)
        for p in pairs
        for kind in ("same", *BUILDS)
        for size, got in p.get(kind, {}).items()
    ]


def guard_text(pairs: Sequence[Mapping[str, Any]], tolerance: float | None) -> str:
    """The speed guard over the batch, before (by medians) and after (by rounds)."""
    counts = guard_counts([got.get("guard", "kept") for *_, got in _all_got(pairs)])
    if counts is None:
        return "speed guard: no rule on a speed figure"
    if tolerance is None:
        return f"speed guard: off (speed figures judged in all {counts[0]} comparisons)"
    n, before, after = counts
    return (
        f"speed guard at {tolerance:.0%}: speed figures judged in {before} of {n} comparisons "
        f"by the guard by medians (before issue 12; {n - before} dropped), {after} by the "
        f"guard by rounds (today's; {n - after} dropped)"
    )


def agreement_text(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Whether the gated sessions' verdicts and the offline judging of their JSON agree
    (empty without gated sessions)."""
    judged = [(i, kind, size, got) for i, kind, size, got in _all_got(pairs) if "agree" in got]
    if not judged:
        return ""
    off = [x for x in judged if not x[3]["agree"]]
    if not off:
        return (
            f"gated sessions: their gate and the offline judging of their JSON agree in all "
            f"{len(judged)} comparisons"
        )
    listed = "; ".join(
        f"pair {i} {kind} {size_text(int(size))} (session {g['verdict']}, offline "
        f"{g['offline_verdict']})"
        for i, kind, size, g in off
    )
    return (
        f"gated sessions DISAGREE with the offline judging in {len(off)} of {len(judged)}: {listed}"
    )


def speeds_text(speeds: Mapping[int, list[float]]) -> str:
    return "control send (min/median/max Gbps): " + "; ".join(
        f"{size_text(size)} {min(v):.1f}/{median(v):.1f}/{max(v):.1f}"
        for size, v in sorted(speeds.items())
        if v
    )


def aa_counts(
    runs: Sequence[Run],
    rules: Sequence[Rule],
    tolerance: float | None = DEFAULT_SPEED_TOLERANCE,
) -> list[dict[str, Any]]:
    """Every ordered pair of runs of the same code: falsely failing benchmarks, undecided
    benchmark-metrics (undecided or not comparable rows) and what the speed guard did
    with each benchmark's speed figures (:func:`guard_state`)."""
    out = []
    for (i, base), (j, cur) in itertools.permutations(enumerate(runs), 2):
        outcome = compare_runs(base, cur, rules, speed_tolerance=tolerance)
        failing = sorted({r.benchmark for r in outcome.rows if r.verdict == REGRESSION})
        undecided = [r for r in outcome.rows if r.verdict in UNDECIDED_VERDICTS]
        old_by, new_by = base.by_key(), cur.by_key()
        states = [
            guard_state(outcome, old_by[k], new_by[k], rules, tolerance)
            for k in new_by
            if k in old_by
        ]
        out.append(
            {
                "baseline": i,
                "current": j,
                "failing": failing,
                "undecided": len(undecided),
                "rows": len(outcome.rows),
                "guard": {s: states.count(s) for s in sorted(set(states))},
            }
        )
    return out


def _aa_guard(pairs: Sequence[Mapping[str, Any]]) -> str:
    states = [s for p in pairs for s, n in p.get("guard", {}).items() for _ in range(n)]
    counts = guard_counts(states)
    if counts is None:
        return ""
    n, before, after = counts
    k = len(pairs)
    return (
        f"; speed figures judged per pair: {before / k:.1f} of {n / k:.0f} benchmarks by the "
        f"guard by medians, {after / k:.1f} by the guard by rounds"
    )


def aa_summary(pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return "no pairs"
    per_pair = sum(len(p["failing"]) for p in pairs) / len(pairs)
    clean = sum(not p["failing"] for p in pairs)
    undecided = sum(p["undecided"] for p in pairs) / len(pairs)
    rows = pairs[0]["rows"]
    met = per_pair <= MAX_AA_FAILING_PER_PAIR
    lines = [
        f"{b['baseline']} -> {b['current']}: failing {len(b['failing'])} "
        f"({', '.join(b['failing']) or '-'}), undecided {b['undecided']} of {b['rows']}"
        for b in pairs
    ]
    lines.append(
        f"{len(pairs)} ordered pairs: {per_pair:.2f} falsely failing benchmarks per pair "
        f"(goal <= {MAX_AA_FAILING_PER_PAIR}: {'met' if met else 'MISSED'}), {clean} pairs "
        f"clean; {undecided:.1f} of {rows} benchmark-metrics undecided per pair" + _aa_guard(pairs)
    )
    return "\n".join(lines)
