"""Streams and request/response results in one run: which is which, and which rules apply.

A run may hold a stream and a request/response benchmark of the same mode, size and
threads (``two_copy-4096B-1t`` and ``rr-two_copy-4096B-1t``, open loop
``rr-two_copy-4096B-1t-1000tps``): they are matched across runs by pattern and offered
rate too. A rule on a request/response metric (``rr_p50_us``, ``rr_p99_us``, ``rr.*``)
judges only request/response benchmarks; a rule on any other metric judges every stream,
and a request/response benchmark only where it records that metric with a value: the
figures an RR benchmark does not have, or stores as null, are not applicable (no row),
and the outcome's notes say so, rather than a row that would read as undecided or,
worse, as a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_netcopy.gate.catalog import RR_FIGURES
from pytest_netcopy.gate.rules import Rule
from pytest_netcopy.results import schema
from pytest_netcopy.results.runs import Result, Run
from pytest_netcopy.results.schema import as_float

__all__ = [
    "MatchKey",
    "applicable",
    "find_match",
    "is_rr_metric",
    "match_key",
    "not_applicable_note",
    "pattern_of",
    "result_id",
    "rule_applies",
]

STREAM, RR = "stream", "rr"
#: what matches a benchmark across runs: (mode, size, threads) and its variant
#: (``stream``, ``rr``, ``rr-1000tps``: results.runs.Result.variant)
MatchKey = tuple[tuple[str, int, int], str]


def pattern_of(extra: Mapping[str, Any]) -> str:
    """``"stream"`` or ``"rr"`` (request/response); a result without the key is a stream."""
    return str(extra.get("pattern") or STREAM)


def offered_rate(extra: Mapping[str, Any]) -> float | None:
    """An open-loop benchmark's offered transactions/s per connection; None: closed loop."""
    rr = extra.get("rr")
    rate = rr.get("rate") if isinstance(rr, Mapping) else None
    return as_float(rate.get("offered_per_connection")) if isinstance(rate, Mapping) else None


def match_key(result: Result) -> MatchKey:
    return (result.key, result.variant)


def find_match(run: Run, result: Result) -> Result | None:
    """The benchmark of ``run`` that ``result`` is compared with (the last, if several)."""
    key = match_key(result)
    found = [r for r in run.results if match_key(r) == key]
    return found[-1] if found else None


def result_id(result: Result) -> str:
    """``two_copy-4096B-2t``; ``rr-two_copy-4096B-1t``; ``rr-two_copy-4096B-1t-1000tps``."""
    pattern = pattern_of(result.extra)
    rate = offered_rate(result.extra) if pattern == RR else None
    return schema.benchmark_id(result.mode, result.size, result.threads, pattern=pattern, rate=rate)


def is_rr_metric(metric: str) -> bool:
    """Whether ``metric`` is one only request/response results record."""
    return metric.split(".")[0] in RR_FIGURES


def rule_applies(metric: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a rule on ``metric`` judges the benchmark whose extra_info are ``old``
    (baseline) and ``new`` (see the module's docstring)."""
    rr = RR in (pattern_of(old), pattern_of(new))
    if is_rr_metric(metric):
        return rr
    return not rr or _has_value(old, metric) or _has_value(new, metric)


def _has_value(extra: Mapping[str, Any], metric: str) -> bool:
    """Whether ``extra`` records ``metric`` with a value (an object by its ``total``): a
    request/response benchmark stores some stream figures as null (its syscalls are not
    counted), which is "does not record", not "undecided"."""
    value: Any = extra
    for part in metric.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    if isinstance(value, Mapping):
        value = value.get("total")
    return value is not None


def applicable(rules: Iterable[Rule], old: Result, new: Result) -> tuple[list[Rule], list[Rule]]:
    """The rules that judge this benchmark, and those that do not apply to it."""
    applied: list[Rule] = []
    skipped: list[Rule] = []
    for rule in rules:
        fits = rule_applies(rule.metric, old.extra, new.extra)
        (applied if fits else skipped).append(rule)
    return applied, skipped


def not_applicable_note(skipped: Mapping[str, Sequence[Rule]]) -> list[str]:
    """The outcome's notes on request/response benchmarks some rules did not judge
    (``skipped``: request/response benchmark id -> the rules that did not apply)."""
    rr = {bench: rules for bench, rules in skipped.items() if rules}
    if not rr:
        return []
    metrics = sorted({r.metric for rules in rr.values() for r in rules})
    return [
        f"not applicable: {len(rr)} request/response benchmark(s) do not record "
        f"{', '.join(metrics)}, so those rules did not judge them (rules on rr_p50_us / "
        "rr_p99_us do, e.g. 'rr_p99_us:+30%'); a benchmark no rule judged is not a pass."
    ]
