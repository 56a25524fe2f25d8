"""The gate's text: the comparison table, the advice, and the one-line verdict last.

Shared word for word by the pytest gate and ``netcopy compare``; everything here
returns strings and prints nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabulate import tabulate

from pytest_netcopy.gate.policy import SPEED_REASON
from pytest_netcopy.gate.row import IMPROVEMENT, NOT_COMPARABLE, REGRESSION, Row

if TYPE_CHECKING:
    from pytest_netcopy.gate.metrics import ControlSpeed
    from pytest_netcopy.gate.outcome import GateOutcome

__all__ = ["format_value", "render", "speed_reason", "summary", "table"]

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


def summary(outcome: GateOutcome) -> str:
    """The one-line verdict (the last line of :func:`render`)."""
    regressions, improvements = outcome.regressions, outcome.improvements
    unjudged = _plural(len(outcome.speed_changed), "benchmark")
    if outcome.failed:
        parts = []
        if regressions:
            parts.append(_counted_where(regressions, "regression"))
        if outcome.two_sided and improvements:
            parts.append(
                f"{_counted_where(improvements, 'improvement')} (two-sided: refresh the baseline)"
            )
        if outcome.speed_changed:
            parts.append(f"{unjudged} not judged (measured at another machine speed)")
        return "netcopy gate: " + "; ".join(parts)
    if outcome.empty:
        return "netcopy gate: nothing judged: " + _why_empty(outcome)
    text = f"netcopy gate: no regression in {_plural(outcome.compared, 'benchmark')}"
    extras = []
    if improvements:
        extras.append(_counted_where(improvements, "improvement"))
    if outcome.not_comparable:
        extras.append(f"{len(outcome.not_comparable)} not comparable")
    if outcome.speed_changed:
        extras.append(f"{unjudged} measured at another machine speed: rerun to judge them")
    return text + (f" ({'; '.join(extras)})" if extras else "")


def _why_empty(outcome: GateOutcome) -> str:
    benchmarks = _plural(outcome.compared, "benchmark")
    if outcome.compared == 0:
        return "no benchmark is in both runs"
    if not outcome.rows:
        return f"no rule applies to the {benchmarks} in both runs"
    return f"all {_plural(len(outcome.rows), 'row')} of {benchmarks} not comparable"


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
            f"Mann-Whitney U p < {outcome.alpha:g} (threshold only where the test is n/a). "
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
