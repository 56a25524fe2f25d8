"""One row of a comparison: one benchmark and one metric, compared, with its verdict."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_netcopy.gate.rules import Rule

__all__ = ["IMPROVEMENT", "NOT_COMPARABLE", "OK", "REGRESSION", "Row", "not_comparable"]

OK = "ok"
REGRESSION = "regression"
IMPROVEMENT = "improvement"
NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class Row:
    """One benchmark and one metric, compared."""

    benchmark: str
    metric: str
    rule: Rule
    baseline: float | None
    current: float | None
    #: (current - baseline) / |baseline|; None when not comparable or baseline is 0
    change: float | None
    #: two-sided Mann-Whitney U p-value; None when the test was not applicable
    p_value: float | None
    #: how significance was judged, e.g. "exact, 12+12 rounds" or "n/a: single value"
    test: str
    verdict: str
    #: why, when the verdict needs one (not comparable, or beyond threshold but not significant)
    reason: str = ""

    @property
    def difference(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


def not_comparable(
    bench: str, rule: Rule, base: float | None, cur: float | None, reason: str
) -> Row:
    """A row that could not be judged, and why."""
    return Row(bench, rule.metric, rule, base, cur, None, None, "", NOT_COMPARABLE, reason)
