"""What a comparison found: every row, what could not be compared, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_netcopy.gate import render as _render
from pytest_netcopy.gate.policy import DEFAULT_ALPHA, SPEED_REASON
from pytest_netcopy.gate.row import IMPROVEMENT, NOT_COMPARABLE, REGRESSION, Row
from pytest_netcopy.results.machine import MachineDifference

__all__ = ["GateOutcome"]


@dataclass(frozen=True)
class GateOutcome:
    """Every compared benchmark and metric, what could not be compared, and the verdict."""

    rows: list[Row]
    missing_in_current: list[str]
    missing_in_baseline: list[str]
    machine_differences: list[MachineDifference]
    #: benchmarks present in both runs
    compared: int
    two_sided: bool = False
    alpha: float = DEFAULT_ALPHA
    #: undecided rows fail the gate too (--netcopy-gate-strict, netcopy compare --strict)
    strict: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REGRESSION]

    @property
    def improvements(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == IMPROVEMENT]

    @property
    def not_comparable(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == NOT_COMPARABLE]

    @property
    def undecided(self) -> list[Row]:
        """Rows counted as undecided on the last line: undecided and not comparable."""
        return [r for r in self.rows if r.undecided]

    @property
    def passed_benchmarks(self) -> list[str]:
        """Benchmarks with a decided row and no regression (their undecided rows aside)."""
        decided = {r.benchmark for r in self.rows if not r.undecided}
        failing = {r.benchmark for r in self.regressions}
        return sorted(decided - failing)

    @property
    def speed_changed(self) -> list[str]:
        """Benchmarks whose rows were not comparable because the machine's speed moved."""
        return sorted(
            {r.benchmark for r in self.not_comparable if r.reason.startswith(SPEED_REASON)}
        )

    @property
    def failing(self) -> list[Row]:
        """The rows that fail the gate."""
        return [
            r
            for r in self.rows
            if r.verdict == REGRESSION
            or (self.two_sided and r.verdict == IMPROVEMENT)
            or (self.strict and r.undecided)
        ]

    @property
    def judged(self) -> int:
        """Rows that got a decided verdict (neither undecided nor not comparable)."""
        return sum(1 for r in self.rows if not r.undecided)

    @property
    def empty(self) -> bool:
        """Nothing was judged: no benchmark in both runs, no rule applied, or every row
        undecided or not comparable. Such a gate proves nothing; callers fail it unless
        told not to."""
        return self.judged == 0

    @property
    def failed(self) -> bool:
        return bool(self.failing)

    def summary(self) -> str:
        """The one-line verdict (the last line of :meth:`render`)."""
        return _render.summary(self)

    def table(self, fmt: str = "simple") -> str:
        return _render.table(self, fmt)

    def render(self, fmt: str = "simple") -> str:
        """Machine differences, the table, the missing benchmarks, advice, and the verdict last."""
        return _render.render(self, fmt)
