"""The speed guard by rounds: compare only the rounds whose control sends ran at similar speeds.

The control send (``--netcopy-control``) runs one round before every measured
round and one after the last, so measured round ``i`` sits between control
rounds ``i`` and ``i + 1``; the median of the control rounds nearest to it (two
before, two after: those its ratios to the control divide by) is the machine's
speed during that round. Where the median control speeds of two runs
differ by more than the tolerance (the guard by medians,
:func:`pytest_netcopy.gate.metrics.control_speed_change`), two runs measured
partly at the same speed can still be compared on those rounds alone, instead
of dropping the benchmark's speed figures.

Pure functions over saved results; docs/gate.md (*Two machine speeds*) has the
measurements behind them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from pytest_netcopy.gate.metrics import (
    ControlSpeed,
    MetricValue,
    control_speed_change,
    metric_value,
)
from pytest_netcopy.gate.policy import SPEED_REASON
from pytest_netcopy.gate.render import speed_reason
from pytest_netcopy.results.runs import Result

__all__ = [
    "Band",
    "Matched",
    "Unmatched",
    "band_rounds",
    "comparable_rounds",
    "restrict",
    "round_control_speeds",
    "widest_common_band",
]

#: relative slack on a band's upper edge (so 40 -> 42 Gbps is within 5%)
_SLACK = 1e-9


@dataclass(frozen=True)
class Band:
    """A speed band ``[low, low * (1 + tolerance)]`` (Gbps) and the rounds of each side in it."""

    low: float
    high: float
    baseline: tuple[int, ...]
    current: tuple[int, ...]

    def describe(self) -> str:
        """``46-48 Gbps`` (one decimal where the whole numbers would read the same)."""
        digits = 0 if round(self.low) != round(self.high) else 1
        return f"{self.low:.{digits}f}-{self.high:.{digits}f} Gbps"


@dataclass(frozen=True)
class Matched:
    """Rounds of both runs whose controls ran within the tolerance of one another.

    ``baseline`` and ``current`` are indices into the measured rounds
    (``rounds.<metric>[i]``); ``every_round`` says that nothing was dropped.
    """

    band: Band
    baseline_rounds: int
    current_rounds: int

    @property
    def baseline(self) -> tuple[int, ...]:
        return self.band.baseline

    @property
    def current(self) -> tuple[int, ...]:
        return self.band.current

    @property
    def every_round(self) -> bool:
        return (len(self.baseline), len(self.current)) == (
            self.baseline_rounds,
            self.current_rounds,
        )

    def note(self) -> str:
        """``rounds at 46-48 Gbps: 6 of 10 and 7 of 10`` (empty when every round is in)."""
        if self.every_round:
            return ""
        return (
            f"rounds at {self.band.describe()}: {len(self.baseline)} of {self.baseline_rounds} "
            f"and {len(self.current)} of {self.current_rounds}"
        )


@dataclass(frozen=True)
class Unmatched:
    """Too few rounds of one run or the other ran at a common speed; ``reason`` says so."""

    band: Band | None
    min_rounds: int
    tolerance: float
    #: the median control speeds of both runs, where recorded (the guard by medians')
    medians: ControlSpeed | None = None

    @property
    def reason(self) -> str:
        """Starts with policy.SPEED_REASON, like the guard by medians (GateOutcome counts
        it), and says what that guard said: ``the machine ran at another speed (control
        46 -> 62 Gbps, +34.8%, beyond 5%): only 2 and 3 rounds ran at a common speed
        (46-48 Gbps, within 5%; 5 needed)``."""
        head = SPEED_REASON
        if self.medians is not None:
            head = speed_reason(self.medians, self.tolerance)
        if self.band is None:
            return f"{head}: no round's control speed is known on both sides"
        b, c = len(self.band.baseline), len(self.band.current)
        return (
            f"{head}: only {b} and {c} rounds ran at a common speed "
            f"({self.band.describe()}, within {self.tolerance:.0%}; {self.min_rounds} needed)"
        )


def _numbers(raw: Any) -> list[float] | None:
    """A list of positive finite numbers, or None when ``raw`` is not one (any bad entry)."""
    if not isinstance(raw, list) or not raw:
        return None
    out = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        if not math.isfinite(v) or v <= 0:
            return None
        out.append(float(v))
    return out


def round_control_speeds(result: Result) -> tuple[float, ...] | None:
    """Each measured round's control speed (Gbps): the median of the control rounds
    nearest to it, two before and two after as far as they exist (the same rounds
    its ``*_vs_control`` ratio divides by; docs/results-schema.md). None where the
    run did not record both lists (``rounds.throughput_gbps``,
    ``control.rounds.throughput_gbps``), their lengths do not fit (rounds + 1
    control rounds), or a control round is not a positive number."""
    rounds = result.extra.get("rounds")
    control = result.extra.get("control")
    if not isinstance(rounds, Mapping) or not isinstance(control, Mapping):
        return None
    measured = rounds.get("throughput_gbps")
    control_rounds = control.get("rounds")
    if not isinstance(measured, list) or not isinstance(control_rounds, Mapping):
        return None
    speeds = _numbers(control_rounds.get("throughput_gbps"))
    if speeds is None or not measured or len(speeds) != len(measured) + 1:
        return None
    # measured round i sits between control rounds i and i + 1
    return tuple(median(speeds[max(0, i - 1) : i + 3]) for i in range(len(measured)))


def widest_common_band(
    baseline: Sequence[float], current: Sequence[float], tolerance: float
) -> Band | None:
    """The band ``[low, low * (1 + tolerance)]`` holding the most rounds of BOTH sides:
    the largest ``min(in baseline, in current)``, then the largest total, then the
    slowest. None when either side has no speeds. Deterministic; O(n^2), n ~ rounds.
    """
    if not baseline or not current:
        return None
    best: tuple[int, int] | None = None
    chosen: Band | None = None
    for low in sorted({*baseline, *current}):
        high = low * (1 + tolerance) * (1 + _SLACK)
        b = tuple(i for i, s in enumerate(baseline) if low <= s <= high)
        c = tuple(i for i, s in enumerate(current) if low <= s <= high)
        score = (min(len(b), len(c)), len(b) + len(c))
        if best is None or score > best:
            best, chosen = score, Band(low, low * (1 + tolerance), b, c)
    return chosen


def band_rounds(
    base: Result, cur: Result, tolerance: float, min_rounds: int
) -> Matched | Unmatched | None:
    """The rounds of ``base`` and ``cur`` in the widest common speed band alone
    (:func:`widest_common_band`), whatever their median control speeds: Matched
    with at least ``min_rounds`` of each run, else Unmatched; None without
    per-round control data. :func:`comparable_rounds` is what the gate uses."""
    old = round_control_speeds(base)
    new = round_control_speeds(cur)
    if old is None or new is None:
        return None
    band = widest_common_band(old, new, tolerance)
    if band is None or min(len(band.baseline), len(band.current)) < min_rounds:
        return Unmatched(band, min_rounds, tolerance, control_speed_change(base, cur))
    return Matched(band, len(old), len(new))


def comparable_rounds(
    base: Result, cur: Result, tolerance: float, min_rounds: int
) -> Matched | Unmatched | None:
    """Which measured rounds of ``base`` and ``cur`` to judge the speed figures on.

    * The median control speeds (``control.throughput_gbps``) within
      ``tolerance`` of one another (today's guard passes): every round of both,
      as :class:`Matched` with ``every_round`` true.
    * Else each measured round gets its control speed
      (:func:`round_control_speeds`) and the band of relative width
      ``tolerance`` that holds the most rounds of both runs is found
      (:func:`band_rounds`). With at least ``min_rounds`` of each run in it:
      :class:`Matched` with the round indices per side (judge on those samples
      only: :func:`restrict`); else :class:`Unmatched`, whose ``reason`` is the
      rows' ``not comparable`` reason (it starts with ``SPEED_REASON``).
    * None when either run lacks per-round control data (older runs, or
      ``--netcopy-control=none``): the caller keeps the guard by medians
      (``control_speed_change``), which itself judges everything when there is
      no control at all.

    So it never judges fewer benchmarks than the guard by medians; the band
    adds the pairs whose medians differ but which ran partly at one speed.
    Only the speed figures (not ``SPEED_INDEPENDENT``) need it. In
    gate/compare.py, per benchmark::

        match = comparable_rounds(old, new, speed_tolerance, MIN_MATCHED_ROUNDS)
        if match is None:        moved = _moved_reason(old, new, speed_tolerance)
        elif isinstance(match, Unmatched): moved = match.reason
        else:                    # judge speed-dependent rules on the matched rounds
            old_value = restrict(old, rule.metric, match.baseline)
            new_value = restrict(new, rule.metric, match.current)
    """
    old = round_control_speeds(base)
    new = round_control_speeds(cur)
    if old is None or new is None:
        return None
    speed = control_speed_change(base, cur)
    if speed is not None and abs(speed.change) <= tolerance + _SLACK:
        everything = Band(
            min(*old, *new), max(*old, *new), tuple(range(len(old))), tuple(range(len(new)))
        )
        return Matched(everything, len(old), len(new))
    return band_rounds(base, cur, tolerance, min_rounds)


def restrict(result: Result, metric: str, rounds: Sequence[int]) -> MetricValue:
    """The metric's value over the given measured rounds only: their finite samples of
    ``rounds.<metric>`` and the median of those. A metric without per-round samples in
    ``rounds`` (a single value, or the untimed passes' ``pass_rounds``) is returned
    whole (:func:`metric_value`); a metric with none of the chosen rounds finite is
    ``None`` with the reason."""
    section = result.extra.get("rounds")
    raw = section.get(metric) if isinstance(section, Mapping) else None
    if not isinstance(raw, list) or not raw:
        return metric_value(result, metric)
    samples = tuple(
        float(raw[i])
        for i in rounds
        if 0 <= i < len(raw)
        and isinstance(raw[i], int | float)
        and not isinstance(raw[i], bool)
        and math.isfinite(raw[i])
    )
    if not samples:
        return MetricValue((), None, "no finite sample in the rounds at a common speed")
    return MetricValue(samples, median(samples))
