"""Decisions that take the rounds they need: looks at a growing sample, alpha spent on each.

When a benchmark's comparison is undecided after its rounds, the pytest gate
measures more rounds and looks again, up to a budget. Each look is a test, so
the levels of the looks must add up to no more than the gate's alpha: a
Pocock-type spending function (Lan and DeMets) gives the j-th look, taken
with ``m_j`` of at most ``max_rounds`` rounds, the level

    alpha_j = f(m_j / max_rounds) - f(m_{j-1} / max_rounds),
    f(t) = alpha * ln(1 + (e - 1) * t),

and the union bound makes the false-alarm rate over all looks at most
``f(1) = alpha`` whatever the looks' dependence and wherever the budget stops
them (alpha not spent is left unused). Pocock-type, not O'Brien-Fleming-type,
because most comparisons are decided at the first look, which this function
gives 45% of alpha at a third of the budget (O'Brien-Fleming-type: 0.08%).
docs/gate.md explains the choice. Pure functions: the plugin asks them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_netcopy.gate.row import MORE_ROUNDS_HELP, UNDECIDED, Row
from pytest_netcopy.results.schema import as_float

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_MAX_SECONDS",
    "Budget",
    "look_alpha",
    "next_rounds",
    "spent",
]

#: the most measured rounds a benchmark may end with (3x the default 10 rounds: the
#: interval narrows by about sqrt((1/10 + 1/10) / (1/10 + 1/30)) = 1.5x)
DEFAULT_MAX_ROUNDS = 30
#: the most seconds the extra rounds of one benchmark may take
DEFAULT_MAX_SECONDS = 10.0


def spent(alpha: float, fraction: float) -> float:
    """The alpha spent by the time ``fraction`` of the budget has been measured."""
    t = min(1.0, max(0.0, fraction))
    return alpha * math.log1p((math.e - 1) * t)


def look_alpha(alpha: float, looks: Sequence[int], max_rounds: int) -> float:
    """The level of the last of ``looks`` (the round counts at each look, increasing)."""
    if not looks or max_rounds <= 0:
        return alpha
    before = spent(alpha, looks[-2] / max_rounds) if len(looks) > 1 else 0.0
    return spent(alpha, looks[-1] / max_rounds) - before


def design_alpha(extra: Mapping[str, Any], alpha: float) -> float | None:
    """The level of a result's last look from its ``gate_rounds`` record; None without one."""
    record = extra.get("gate_rounds")
    if not isinstance(record, Mapping):
        return None
    looks = record.get("looks")
    top = as_float(record.get("max_rounds"))
    if not isinstance(looks, list) or not looks or top is None or top <= 0:
        return None
    counts = [int(v) for v in looks if isinstance(v, int | float)]
    return look_alpha(alpha, counts, int(top)) if len(counts) == len(looks) else None


@dataclass(frozen=True)
class Budget:
    """How far extra rounds may go for one benchmark."""

    max_rounds: int = DEFAULT_MAX_ROUNDS
    max_seconds: float = DEFAULT_MAX_SECONDS
    #: rounds added per look (0: half the first look's rounds)
    step: int = 0


def next_rounds(
    rows: Sequence[Row], growing: Sequence[str], rounds: int, first: int, elapsed: float,
    budget: Budget,
) -> tuple[int, str]:  # fmt: skip
    """How many more rounds to measure (0: stop) and why, after a look at ``rows``.

    ``growing``: the metrics whose samples more rounds add to; ``rounds``: the rounds
    measured so far, ``first`` of them in the first look; ``elapsed``: the seconds the
    extra rounds took so far.
    """
    waiting = [
        r
        for r in rows
        if r.verdict == UNDECIDED and r.why in MORE_ROUNDS_HELP and r.metric in growing
    ]
    if not waiting:
        return 0, "decided"
    names = ", ".join(sorted({r.metric for r in waiting}))
    if rounds >= budget.max_rounds:
        return 0, f"undecided ({names}) at the budget of {budget.max_rounds} rounds"
    if elapsed >= budget.max_seconds:
        return 0, f"undecided ({names}) at the time budget of {budget.max_seconds:g} s"
    step = budget.step or max(1, first // 2)
    return min(step, budget.max_rounds - rounds), f"undecided: {names}"
