"""One row of a comparison: one benchmark and one metric, compared, with its verdict.

Three verdicts, never a silent pass: ``regression``; ``no regression``, with the
smallest change the comparison could have seen; ``undecided``, with why. Next to
them ``improvement`` (a regression the good way) and ``not comparable`` (what could
not be compared at all, counted as undecided on the last line).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_netcopy.gate.rules import Rule

__all__ = [
    "BEYOND_NOT_SIGNIFICANT",
    "IMPROVEMENT",
    "MORE_ROUNDS_HELP",
    "NOT_COMPARABLE",
    "NO_REGRESSION",
    "OK",
    "POWER_TEXT",
    "REGRESSION",
    "STRADDLES",
    "TOO_FEW_ROUNDS",
    "UNDECIDED",
    "Row",
    "not_comparable",
]

NO_REGRESSION = "no regression"
#: the name the verdict had before it was worded (kept for callers)
OK = NO_REGRESSION
REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNDECIDED = "undecided"
NOT_COMPARABLE = "not comparable"

#: the power the smallest detectable change is given at, as the table says it
POWER_TEXT = "80% power"
#: why a row is undecided, in the words of the last line
TOO_FEW_ROUNDS = "too few comparable rounds"
STRADDLES = "the interval straddles the threshold"
BEYOND_NOT_SIGNIFICANT = "beyond the threshold but not significant"
#: the reasons more rounds can settle
MORE_ROUNDS_HELP = (TOO_FEW_ROUNDS, STRADDLES, BEYOND_NOT_SIGNIFICANT)


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
    #: why, when the verdict needs one (not comparable, undecided, threshold alone)
    reason: str = ""
    #: the interval on the change at the row's level (relative for percent rules, else
    #: in the metric's units); None where there are no rounds or too few
    interval: tuple[float, float] | None = None
    #: the smallest change the bad way the rounds' noise lets the test see at 80% power
    detectable: float | None = None
    #: the short why of an undecided or not comparable row (the last line's words)
    why: str = ""
    #: the significance level the row was tested at (less than the gate's after looks)
    alpha: float | None = None

    @property
    def difference(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def undecided(self) -> bool:
        """Counted as undecided on the last line: undecided or not comparable."""
        return self.verdict in (UNDECIDED, NOT_COMPARABLE)


def not_comparable(
    bench: str, rule: Rule, base: float | None, cur: float | None, reason: str, why: str = ""
) -> Row:
    """A row that could not be judged, and why (``why``: the last line's short words)."""
    return Row(
        bench, rule.metric, rule, base, cur, None, None, "", NOT_COMPARABLE, reason,
        why=why or reason,
    )  # fmt: skip
