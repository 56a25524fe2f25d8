"""The metrics the gate compares, read out of a saved benchmark (results.runs.Result).

A metric is a key of the benchmark's extra_info (dots walk into objects, and an
object stands for its ``total``), with its per-round samples where the run
recorded them. The control send's figures (``--netcopy-control``) are looked up
here too: the gate's default rules need them, and their speed tells whether two
runs were measured with the machine in the same state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from pytest_netcopy.gate.rules import Rule
from pytest_netcopy.results.runs import Result, Run
from pytest_netcopy.results.schema import as_float

__all__ = [
    "CONTROL_FIGURES",
    "ControlSpeed",
    "MetricValue",
    "control_metrics",
    "control_speed_change",
    "has_control",
    "metric_value",
]

#: the figures only a run made with the control send has (--netcopy-control)
CONTROL_FIGURES = ("throughput_vs_control", "cpu_vs_control", "control")


@dataclass(frozen=True)
class MetricValue:
    """A metric of one benchmark: its per-round samples and its single value.

    ``value`` is the median of the samples when there are any, else the
    recorded value (for an object such as ``syscalls_per_message``, its
    ``total``). ``value is None`` means not comparable, and ``reason`` says why.
    """

    samples: tuple[float, ...]
    value: float | None
    reason: str | None = None


_ABSENT: Any = object()

#: per-round metrics whose single value, where a run recorded no rounds of them, is
#: another key's: the benchmark's own percentile (issue 16)
SINGLE_VALUE_OF = {"rr_p50_us": "rr.p50_us", "rr_p99_us": "rr.p99_us"}


#: how a run comes to record a metric it may lack (the hint on a "not recorded" side)
RECORDED_WITH = {
    "user_instructions_per_message": (
        "counted only when the run is gated or saved (--benchmark-save, --benchmark-autosave) "
        "or with --netcopy-instructions=on"
    ),
}


def not_recorded(metric: str) -> str:
    """The reason for a metric a run lacks, with how a run records it where that is known."""
    how = RECORDED_WITH.get(metric)
    return f"not recorded ({how})" if how else "not recorded"


def metric_value(result: Result, metric: str) -> MetricValue:
    """Look a metric up in a benchmark's extra_info (dots walk into objects)."""
    samples = tuple(v for v in result.round_samples(metric) if math.isfinite(v))
    raw: Any = result.extra
    for part in SINGLE_VALUE_OF.get(metric, metric).split("."):
        if not isinstance(raw, Mapping) or part not in raw:
            raw = _ABSENT
            break
        raw = raw[part]
    if samples:
        return MetricValue(samples, median(samples))
    if raw is _ABSENT:
        return MetricValue((), None, not_recorded(metric))
    if raw is None:
        return MetricValue((), None, "null (not counted)")
    if isinstance(raw, Mapping):
        if "total" not in raw:
            return MetricValue((), None, "an object without a 'total'")
        raw = raw["total"]
        if raw is None:
            return MetricValue((), None, "total is null (not counted)")
    value = as_float(raw)
    if value is None:
        return MetricValue((), None, f"not a finite number ({raw!r})")
    return MetricValue((), value)


@dataclass(frozen=True)
class ControlSpeed:
    """How fast a benchmark's control send ran in the baseline and now (Gbps)."""

    baseline: float
    current: float

    @property
    def change(self) -> float:
        """The relative change, ``current / baseline - 1``."""
        return self.current / self.baseline - 1


def control_speed_change(old: Result, new: Result) -> ControlSpeed | None:
    """The speeds of the benchmark's control send on both sides; None where either is
    not recorded (or not positive)."""
    speeds = []
    for result in (old, new):
        control = result.extra.get("control")
        gbps = as_float(control.get("throughput_gbps")) if isinstance(control, Mapping) else None
        if gbps is None or gbps <= 0:
            return None
        speeds.append(gbps)
    return ControlSpeed(speeds[0], speeds[1])


def control_metrics(rules: Sequence[Rule]) -> list[str]:
    """The metrics of ``rules`` that need the control send, sorted."""
    return sorted({r.metric for r in rules if r.figure in CONTROL_FIGURES})


def has_control(run: Run) -> bool:
    """Whether any benchmark of the run has the control figures."""
    return any(r.extra.get("throughput_vs_control") is not None for r in run.results)
