"""The gate's text: the comparison table, the advice, and the one-line verdict last.

Shared word for word by the pytest gate and ``netcopy compare``; everything here
returns strings and prints nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabulate import tabulate

from pytest_netcopy.gate.policy import SPEED_REASON
from pytest_netcopy.gate.row import (
    IMPROVEMENT,
    NO_REGRESSION,
    NOT_COMPARABLE,
    POWER_TEXT,
    REGRESSION,
    Row,
)

if TYPE_CHECKING:
    from pytest_netcopy.gate.metrics import ControlSpeed
    from pytest_netcopy.gate.outcome import GateOutcome

__all__ = [
    "detectable_text",
    "format_value",
    "interval_text",
    "render",
    "speed_reason",
    "summary",
    "table",
]

_HEADERS = ["benchmark", "metric", "rule", "baseline", "current", "change"]
_HEADERS += ["p (Mann-Whitney U)", "verdict"]


def format_value(value: float | None) -> str:
    """A baseline or current value as the table shows it ('-' for none)."""
    if value is None:
        return "-"
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        return f"{value:.3e}"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _pct(fraction: float, *, signed: bool = False) -> str:
    """0.35 -> '35%', 0.025 -> '2.5%', 0.104 -> '10.4%' (one decimal, only when needed)."""
    text = f"{fraction * 100:{'+' if signed else ''}.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def speed_reason(speed: ControlSpeed, tolerance: float) -> str:
    """Why a row is not comparable when the control send's speed moved beyond ``tolerance``."""
    return (
        f"{SPEED_REASON} (control {format_value(speed.baseline)} -> "
        f"{format_value(speed.current)} Gbps, "
        f"{_pct(speed.change, signed=True)}, beyond {_pct(tolerance)})"
    )


def _amount(row: Row, value: float, *, signed: bool = False) -> str:
    """A change in the row's terms: percent of the baseline, or the metric's units."""
    if row.rule.percent:
        return _pct(value, signed=signed)
    return f"{value:{'+' if signed else ''}.3g}"


def detectable_text(row: Row, *, settled: bool = True) -> str:
    """The smallest change the bad way the comparison could see: 'no change beyond 6.2%
    at 80% power' (``settled``: of a no-regression row), else 'it could see 18% ...'."""
    if row.detectable is None:
        return "no detectable change at these rounds' noise"
    amount = _amount(row, row.detectable)
    if settled:
        return f"no change beyond {amount} at {POWER_TEXT}"
    return f"it could see a {row.rule.bad_way} of {amount} at {POWER_TEXT}"


def interval_text(row: Row) -> str:
    """'the change is -3.1% to +31% (99.5% interval), the threshold +25%'."""
    if row.interval is None:
        return "no interval"
    low, high = (_amount(row, v, signed=True) for v in row.interval)
    level = "" if row.alpha is None else f" ({_pct(1 - row.alpha)} interval)"
    limit = _amount(row, row.rule.direction * row.rule.limit, signed=True)
    return f"the change is {low} to {high}{level}, the threshold {limit}"


def _fmt_change(row: Row) -> str:
    if row.difference is None:
        return "-"
    text = "" if row.change is None else f"{row.change:+.1%}"
    if not row.rule.percent:
        absolute = f"{row.difference:+.4g}"
        text = absolute if not text else f"{absolute} ({text})"
    return text


def _fmt_p(row: Row) -> str:
    if row.verdict == NOT_COMPARABLE:
        return "-"
    if row.p_value is None:
        return row.test
    p = "<0.0001" if row.p_value < 1e-4 else f"{row.p_value:.2g}"
    return f"{p} ({row.test})"


def _fmt_verdict(row: Row) -> str:
    if row.verdict in (REGRESSION, IMPROVEMENT):
        return row.verdict.upper()
    if row.verdict == NO_REGRESSION:
        return f"{row.verdict} ({row.reason})" if row.reason else row.verdict
    return f"{row.verdict}: {row.reason}" if row.reason else row.verdict


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _counted_where(rows: Sequence[Row], word: str) -> str:
    """'2 regressions in two_copy-4096B-1t (throughput_gbps, cpu_ns_per_byte)'."""
    metrics: dict[str, list[str]] = {}
    for row in rows:
        metrics.setdefault(row.benchmark, []).append(row.metric)
    where = ", ".join(f"{bench} ({', '.join(ms)})" for bench, ms in metrics.items())
    return f"{_plural(len(rows), word)} in {where}"


#: benchmarks the last line names one by one before it says "and N more"
_NAMED = 6


def _undecided_where(rows: Sequence[Row], strict: bool) -> str:
    """'3 undecided: two_copy-4096B-1t (throughput_vs_control: too few comparable rounds)'."""
    whys: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        whys.setdefault(row.benchmark, {}).setdefault(row.why or row.reason, []).append(row.metric)
    named = []
    for bench, by_why in whys.items():
        listed = "; ".join(f"{', '.join(ms)}: {why}" for why, ms in by_why.items())
        named.append(f"{bench} ({listed})")
    if len(named) > _NAMED:
        named = [*named[:_NAMED], f"and {len(named) - _NAMED} more benchmarks (in the table)"]
    fails = " (fails a strict gate)" if strict else ""
    return f"{len(rows)} undecided{fails}: {', '.join(named)}"


def summary(outcome: GateOutcome) -> str:
    """The one-line verdict (the last line of :func:`render`): regressions, no regression
    and undecided counted, the undecided named with why."""
    regressions, improvements = outcome.regressions, outcome.improvements
    undecided = outcome.undecided
    if outcome.empty:  # (then nothing regressed: only a strict gate's undecided fail)
        return "netcopy gate: nothing judged: " + _why_empty(outcome)
    parts = []
    if regressions:
        parts.append(_counted_where(regressions, "regression"))
    if outcome.two_sided and improvements and outcome.failed:
        parts.append(
            f"{_counted_where(improvements, 'improvement')} (two-sided: refresh the baseline)"
        )
    if not parts:
        text = f"no regression in {_plural(len(outcome.passed_benchmarks), 'benchmark')}"
        if improvements:
            text += f" ({_counted_where(improvements, 'improvement')})"
        parts.append(text)
    if undecided:
        parts.append(_undecided_where(undecided, outcome.strict))
    return "netcopy gate: " + "; ".join(parts)


def _why_empty(outcome: GateOutcome) -> str:
    benchmarks = _plural(outcome.compared, "benchmark")
    if outcome.compared == 0:
        return "no benchmark is in both runs"
    if not outcome.rows:
        return f"no rule applies to the {benchmarks} in both runs"
    if all(r.verdict == NOT_COMPARABLE for r in outcome.rows):
        return f"all {_plural(len(outcome.rows), 'row')} of {benchmarks} not comparable"
    return f"all {_plural(len(outcome.rows), 'row')} of {benchmarks} undecided or not comparable"


def table(outcome: GateOutcome, fmt: str = "simple") -> str:
    """Every row, in any of tabulate's table formats."""
    body = [
        [
            r.benchmark,
            r.metric,
            str(r.rule).split(":", 1)[1],
            format_value(r.baseline),
            format_value(r.current),
            _fmt_change(r),
            _fmt_p(r),
            _fmt_verdict(r),
        ]
        for r in outcome.rows
    ]
    return tabulate(body, headers=_HEADERS, tablefmt=fmt, disable_numparse=True)


def _advice(outcome: GateOutcome) -> list[str]:
    """What a regression, or an improvement that fails a two-sided gate, asks for."""
    lines = []
    if outcome.regressions:
        lines.append(
            f"A regression is a change the rule's bad way beyond its threshold with "
            f"Mann-Whitney U p < {outcome.alpha:g} (less at a benchmark's later looks; "
            "threshold only where the test is n/a). "
            "Rerun to confirm it; if the change is intended, save a new baseline "
            "(docs/gate.md)."
        )
    if outcome.two_sided and outcome.improvements:
        lines.append(
            "An improvement beyond the threshold fails a two-sided gate: the baseline is "
            "stale. Save a new one with --benchmark-save=NAME and point the gate at it."
        )
    return lines


def render(outcome: GateOutcome, fmt: str = "simple") -> str:
    """Machine differences, the table, the missing benchmarks, advice, and the verdict last."""
    lines: list[str] = []
    if outcome.machine_differences:
        lines.append("machines differ (a change may come from the machine, not the code):")
        lines.extend(f"  {d}" for d in outcome.machine_differences)
    if outcome.rows:
        lines.append(table(outcome, fmt))
    if outcome.missing_in_current:
        lines.append(
            "in the baseline only (not run now, not compared): "
            + ", ".join(outcome.missing_in_current)
        )
    if outcome.missing_in_baseline:
        lines.append(
            "new, not in the baseline (not compared): " + ", ".join(outcome.missing_in_baseline)
        )
    lines.extend(outcome.notes)
    lines.extend(_advice(outcome))
    lines.append(summary(outcome))
    return "\n".join(lines)
