"""Compare a run with a baseline and decide regressions: pure functions over plain data.

Used by the pytest gate (``--netcopy-baseline``/``--netcopy-gate``) and by
``netcopy compare``; nothing here imports pytest, so every decision can be
property-tested on its own. docs/gate.md explains the rules and the statistic.

A row of the comparison is one benchmark (matched by mode, size and threads)
and one metric. The change is the relative difference of the medians (or of
the single values where a metric has no per-round samples). It is a
*regression* when it goes the rule's bad way by more than the rule's threshold
AND a two-sided Mann-Whitney U test on the per-round samples gives p < alpha;
the mirror case is an *improvement*. A metric that is absent or null on either
side is *not comparable*, with the reason: never a pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from tabulate import tabulate

from pytest_netcopy.results.runs import Result, Run
from pytest_netcopy.results.schema import as_float

__all__ = [
    "ABSOLUTE_RULES_EXAMPLE",
    "CONTROL_FIGURES",
    "DEFAULT_ALPHA",
    "DEFAULT_RULES",
    "DEFAULT_SPEED_TOLERANCE",
    "IMPROVEMENT",
    "NOT_COMPARABLE",
    "OK",
    "REGRESSION",
    "GateOutcome",
    "MachineDifference",
    "MachineMismatch",
    "MannWhitney",
    "MetricValue",
    "Row",
    "Rule",
    "benchmark_id",
    "compare_runs",
    "control_metrics",
    "format_rules",
    "has_control",
    "machine_differences",
    "mann_whitney_u",
    "metric_value",
    "parse_rules",
    "parse_speed_tolerance",
]

BenchmarkKey = tuple[str, int, int]

OK = "ok"
REGRESSION = "regression"
IMPROVEMENT = "improvement"
NOT_COMPARABLE = "not comparable"

#: Significance level of the Mann-Whitney U test (two-sided).
DEFAULT_ALPHA = 0.01
#: Largest total sample count (both sides) for the exact test; the normal
#: approximation with tie correction is used above it.
EXACT_MAX_N = 60

# ---------------------------------------------------------------------------
# Rules

_METRIC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*")
_NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MODE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPECTED = (
    "expected METRIC:-N% / METRIC:+N% (a drop / a rise of more than N percent of the "
    "baseline is bad) or METRIC:-N / METRIC:+N (in the metric's own units), optionally "
    "followed by @MODE/MODE (only those modes) or @-MODE/MODE (all modes but those), "
    "e.g. 'throughput_gbps:-10%', 'syscalls_per_message:+0' or "
    "'user_cpu_ns_per_byte:+25%@-zero_copy'"
)


@dataclass(frozen=True)
class Rule:
    """What counts as a regression of one metric.

    ``direction`` is +1 when a rise is bad (costs: ``cpu_ns_per_byte``) and -1
    when a drop is bad (``throughput_gbps``). ``threshold`` (>= 0) is in
    percent of the baseline when ``percent``, else in the metric's units; a
    change must be *more* than it to count, so ``+0`` means any rise.
    """

    metric: str
    direction: int
    threshold: float
    percent: bool
    #: the modes the rule applies to (empty: every mode), or with ``except_modes``
    #: the modes it does not apply to
    modes: tuple[str, ...] = ()
    except_modes: bool = False

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            raise ValueError(f"Rule.direction must be +1 or -1, not {self.direction!r}")
        if not _METRIC_RE.fullmatch(self.metric):
            raise ValueError(f"Rule.metric {self.metric!r} is not a metric name")
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"Rule.threshold must be a finite number >= 0, not {self.threshold}")
        object.__setattr__(self, "threshold", float(self.threshold) + 0.0)  # no -0.0
        if isinstance(self.modes, str):
            raise ValueError(f"Rule.modes {self.modes!r}: expected a tuple of mode names")
        modes = tuple(self.modes)
        if any(not isinstance(m, str) or not _MODE_RE.fullmatch(m) for m in modes):
            raise ValueError(f"Rule.modes {self.modes!r}: expected mode names")
        if len(set(modes)) != len(modes):
            raise ValueError(f"Rule.modes {self.modes!r}: a mode is named twice")
        object.__setattr__(self, "modes", modes)
        if self.except_modes and not self.modes:
            raise ValueError("Rule.except_modes needs the modes to leave out")

    def __str__(self) -> str:
        sign = "+" if self.direction > 0 else "-"
        scope = ""
        if self.modes:
            scope = "@" + ("-" if self.except_modes else "") + "/".join(self.modes)
        size = f"{_formatas_float(self.threshold)}{'%' if self.percent else ''}"
        return f"{self.metric}:{sign}{size}{scope}"

    def applies_to(self, mode: str) -> bool:
        """Whether the rule judges benchmarks of ``mode``."""
        if not self.modes:
            return True
        return (mode in self.modes) != self.except_modes

    @property
    def limit(self) -> float:
        """The threshold as a fraction of the baseline (percent rules) or in units."""
        return self.threshold / 100.0 if self.percent else self.threshold

    def describe(self) -> str:
        bad = "rise" if self.direction > 0 else "drop"
        size = f"{_formatas_float(self.threshold)}{'%' if self.percent else ''}"
        scope = ""
        if self.modes:
            scope = f" ({'not for' if self.except_modes else 'only for'} {', '.join(self.modes)})"
        if self.threshold == 0:
            return f"any {bad} of {self.metric} is bad{scope}"
        return f"a {bad} of {self.metric} by more than {size} is bad{scope}"


def _formatas_float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _parse_rule(token: str) -> Rule:
    def bad(why: str) -> ValueError:
        return ValueError(f"bad gate rule {token!r}: {why}; {_EXPECTED}")

    metric, colon, spec = token.partition(":")
    spec, at, scope = spec.partition("@")
    modes: tuple[str, ...] = ()
    except_modes = False
    if at:
        except_modes = scope.startswith("-")
        names = scope[1:] if except_modes else scope
        modes = tuple(names.split("/")) if names else ()
        if not modes or any(not _MODE_RE.fullmatch(m) for m in modes):
            raise bad(f"{scope!r} after '@' is not a list of modes such as two_copy/one_copy")
        if len(set(modes)) != len(modes):
            raise bad(f"{scope!r} after '@' names a mode twice")
    if not colon:
        raise bad("no ':' between the metric and its threshold")
    if not _METRIC_RE.fullmatch(metric):
        raise bad(f"{metric!r} is not a metric name (letters, digits, '_', '.')")
    if not spec or spec[0] not in "+-":
        raise bad("the threshold needs a sign: '-' (a drop is bad) or '+' (a rise is bad)")
    percent = spec.endswith("%")
    number = spec[1:-1] if percent else spec[1:]
    if not _NUMBER_RE.fullmatch(number):
        raise bad(f"{number!r} is not a plain non-negative number")
    value = float(number)
    if not math.isfinite(value):
        raise bad(f"{number!r} is too large")
    return Rule(metric, 1 if spec[0] == "+" else -1, value, percent, modes, except_modes)


def parse_rules(text: str) -> list[Rule]:
    """Parse rules separated by spaces, commas or newlines (an ini value works as is).

    Raises ValueError naming the bad token and the expected form. Empty text
    gives an empty list (the caller decides whether that means the defaults).
    """
    rules: list[Rule] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        rule = _parse_rule(token)
        for other in rules:
            if (other.metric, other.direction) == (rule.metric, rule.direction) and (
                _scopes_overlap(other, rule)
            ):
                word = "rise" if rule.direction > 0 else "drop"
                where = "" if not (rule.modes or other.modes) else " for the same modes"
                raise ValueError(
                    f"bad gate rule {token!r}: a rule for a {word} of {rule.metric} is given "
                    f"twice{where} ({other})"
                )
        rules.append(rule)
    return rules


def _scopes_overlap(a: Rule, b: Rule) -> bool:
    """Whether some mode would be judged by both rules."""
    if not a.modes or not b.modes:
        return True
    if a.except_modes and b.except_modes:
        return True  # every mode neither list names
    if not a.except_modes and not b.except_modes:
        return bool(set(a.modes) & set(b.modes))
    only, but = (a, b) if not a.except_modes else (b, a)
    return not set(only.modes) <= set(but.modes)


def format_rules(rules: Sequence[Rule]) -> str:
    """The rules as ``parse_rules`` reads them: ``parse_rules(format_rules(r)) == r``."""
    return " ".join(str(rule) for rule in rules)


#: Measured on our 2-vCPU VM (docs/gate.md has the tables):
#:
#: * ``user_cpu_ns_per_byte`` (the untimed user-time pass) carries the power: the
#:   sender's own code, which the machine's two speeds do not move. One more copy
#:   of each 64 KiB message raised it by 45-80% (20 of 20 pairs caught); the same
#:   code twice moved it by at most 21%, so +25%. Not for zero_copy: its user
#:   time is mostly reaping completions, whose coalescing follows the kernel's
#:   timing (0.13 vs 0.29 ns/B for the same 4 KiB code in two runs).
#: * the ratios to the control send (``*_vs_control``), not the absolute figures,
#:   which move tens of percent with the machine's speed. Across full sweeps of
#:   the same code they still moved 5-10% for one_copy and zero_copy even at one
#:   machine speed, so 15% (5% cried wolf on 3-4 benchmarks per sweep pair).
#: * syscalls per message, counted once per benchmark (no rounds, so no test):
#:   +10% absorbs zero_copy's varying completion reaping and still catches one
#:   more syscall per message (+100% for send/sendmsg).
DEFAULT_RULES: tuple[Rule, ...] = tuple(
    parse_rules(
        "throughput_vs_control:-15% cpu_vs_control:+15% syscalls_per_message:+10% "
        "user_cpu_ns_per_byte:+25%@-zero_copy"
    )
)


#: A benchmark whose control send (the bare send of the same size and threads)
#: ran more than this fraction faster or slower than in the baseline was measured
#: with the machine in another state. On our VM the network path runs at two
#: speeds (64 KiB bare send 46 or 62 Gbps, 4 KiB 17.5 or 20), and the ratio to the
#: control does not cancel that for every mode (one_copy at 16 KiB ran at 0.56 of
#: its control at the slow speed and 0.77 at the fast one; at 4 KiB the control
#: moves only 6-10% between the speeds while one_copy's ratio moves 20%). Seven
#: back-to-back full sweeps of the same code compared pairwise (42 comparisons),
#: with today's rules: a 10% tolerance left 0.50 benchmarks failing per
#: comparison (8 of 42 with one at 4 or 64 KiB), 7% 0.26 (3), 5% 0.17 (2), 3% no
#: fewer; the price is benchmarks left unjudged on their speed figures (25, 33,
#: 38 of 60 per comparison on that VM; none on a steady machine).
DEFAULT_SPEED_TOLERANCE = 0.05
#: metrics that do not come from the speed of the measured rounds (the untimed
#: passes' user-mode CPU time and syscall counts): judged at any speed
SPEED_REASON = "the machine ran at another speed"
SPEED_INDEPENDENT = ("user_cpu_ns_per_byte", "syscalls_per_message", "sink_syscalls_per_message")


def parse_speed_tolerance(text: str) -> float | None:
    """``10%`` -> 0.10; ``off`` -> None (compare at any speed). ValueError otherwise."""
    word = text.strip().lower()
    if word in ("off", "none"):
        return None
    number = word[:-1] if word.endswith("%") else ""
    if not _NUMBER_RE.fullmatch(number) or not math.isfinite(float(number)):
        raise ValueError(
            "expected a percentage with its '%' such as '10%' (how far the control send's "
            "speed may move before a benchmark is not judged), or 'off'"
        )
    return float(number) / 100.0


def _pct(fraction: float, *, signed: bool = False) -> str:
    """0.35 -> '35%', 0.025 -> '2.5%', 0.104 -> '10.4%' (one decimal, only when needed)."""
    text = f"{fraction * 100:{'+' if signed else ''}.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def control_speed_change(old: Result, new: Result) -> tuple[float, float, float] | None:
    """(baseline Gbps, current Gbps, relative change) of the benchmark's control send."""
    speeds = []
    for result in (old, new):
        control = result.extra.get("control")
        gbps = as_float(control.get("throughput_gbps")) if isinstance(control, Mapping) else None
        if gbps is None or gbps <= 0:
            return None
        speeds.append(gbps)
    return speeds[0], speeds[1], speeds[1] / speeds[0] - 1


#: the figures only a run made with the control send has (--netcopy-control)
CONTROL_FIGURES = ("throughput_vs_control", "cpu_vs_control", "control")

#: what to suggest when the control figures are missing
ABSOLUTE_RULES_EXAMPLE = "throughput_gbps:-10% cpu_ns_per_byte:+10% syscalls_per_message:+10%"


def control_metrics(rules: Sequence[Rule]) -> list[str]:
    """The metrics of ``rules`` that need the control send, sorted."""
    return sorted({r.metric for r in rules if r.metric.split(".")[0] in CONTROL_FIGURES})


def has_control(run: Run) -> bool:
    """Whether any benchmark of the run has the control figures."""
    return any(r.extra.get("throughput_vs_control") is not None for r in run.results)


# ---------------------------------------------------------------------------
# Mann-Whitney U


@dataclass(frozen=True)
class MannWhitney:
    """Result of a two-sided Mann-Whitney U test of ``y`` against ``x``.

    ``u`` counts the pairs (x_i, y_j) with y_j > x_i, ties counting 1/2
    (so ``u == len(x) * len(y) / 2`` means no shift at all).
    """

    u: float
    p_value: float
    method: str  # "exact" or "normal"


def _doubled_ranks(x: Sequence[float], y: Sequence[float]) -> tuple[list[int], list[int]]:
    """Twice the midranks of the pooled samples: ([ranks of x], [sizes of tie groups])."""
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    ranks_x: list[int] = []
    ties: list[int] = []
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        size = j - i + 1
        doubled = (i + 1) + (j + 1)  # twice the mean of the ranks i+1 .. j+1
        ranks_x.extend(doubled for _, side in pooled[i : j + 1] if side == 0)
        ties.append(size)
        i = j + 1
    return ranks_x, ties


def _exact_rank_sum_counts(
    group_ranks: Sequence[int], group_sizes: Sequence[int], k: int
) -> list[int]:
    """How many k-subsets of the pooled sample have each doubled rank sum.

    Every subset is equally likely under the null hypothesis, ties included.
    The counts per sum are packed into one big integer per subset size (a
    polynomial in 2**bits), so one big-integer shift-add updates them all.
    """
    width = math.comb(sum(group_sizes), k).bit_length() // 8 + 1  # bytes per count
    bits = 8 * width
    polys = [1] + [0] * k  # polys[j]: generating polynomial of j-subsets
    for rank, size in zip(group_ranks, group_sizes, strict=True):
        for j in range(k, 0, -1):
            acc = polys[j]
            for take in range(1, min(size, j) + 1):
                if polys[j - take]:
                    acc += math.comb(size, take) * (polys[j - take] << (bits * rank * take))
            polys[j] = acc
    packed = polys[k]
    slots = (packed.bit_length() + bits - 1) // bits
    raw = packed.to_bytes(slots * width, "little")
    return [int.from_bytes(raw[i * width : (i + 1) * width], "little") for i in range(slots)]


def mann_whitney_u(
    x: Sequence[float], y: Sequence[float], *, exact: bool | None = None
) -> MannWhitney:
    """Two-sided Mann-Whitney U test: is ``y`` shifted against ``x``?

    ``exact=None`` chooses: the exact permutation distribution (ties handled
    with midranks) when both samples together have at most ``EXACT_MAX_N``
    values, else the normal approximation with tie and continuity correction.
    The exact p-value is twice the smaller tail, capped at 1.
    """
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise ValueError("mann_whitney_u needs at least one value on each side")
    ranks_x, ties = _doubled_ranks(x, y)
    big_n = n + m
    u_x = (sum(ranks_x) / 2) - n * (n + 1) / 2
    u_y = n * m - u_x
    if exact is None:
        exact = big_n <= EXACT_MAX_N
    if exact:
        # group ranks in pooled order: group g spans positions start..start+size-1
        group_ranks: list[int] = []
        start = 1
        for size in ties:
            group_ranks.append(2 * start + size - 1)
            start += size
        counts = _exact_rank_sum_counts(group_ranks, ties, n)
        total = math.comb(big_n, n)
        observed = sum(ranks_x)
        lower = sum(counts[: observed + 1])
        upper = sum(counts[observed:])
        p = min(1.0, 2 * min(lower, upper) / total)
        return MannWhitney(u=u_y, p_value=p, method="exact")
    tie_term = sum(t**3 - t for t in ties) / (big_n * (big_n - 1))
    variance = n * m / 12 * ((big_n + 1) - tie_term)
    if variance <= 0:  # every value equal
        return MannWhitney(u=u_y, p_value=1.0, method="normal")
    z = max(0.0, abs(u_y - n * m / 2) - 0.5) / math.sqrt(variance)
    return MannWhitney(u=u_y, p_value=min(1.0, math.erfc(z / math.sqrt(2))), method="normal")


def smallest_p(n: int, m: int) -> float:
    """The smallest two-sided exact p-value samples of n and m values can reach."""
    return min(1.0, 2 / math.comb(n + m, n))


# ---------------------------------------------------------------------------
# Metrics of one benchmark


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


def metric_value(result: Result, metric: str) -> MetricValue:
    """Look a metric up in a benchmark's extra_info (dots walk into objects)."""
    samples = tuple(v for v in result.round_samples(metric) if math.isfinite(v))
    raw: Any = result.extra
    for part in metric.split("."):
        if not isinstance(raw, Mapping) or part not in raw:
            raw = _ABSENT
            break
        raw = raw[part]
    if samples:
        return MetricValue(samples, median(samples))
    if raw is _ABSENT:
        return MetricValue((), None, "not recorded")
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


def benchmark_id(key: BenchmarkKey) -> str:
    """``('two_copy', 4096, 2)`` -> ``'two_copy-4096B-2t'`` (the pytest id)."""
    mode, size, threads = key
    return f"{mode}-{size}B-{threads}t"


# ---------------------------------------------------------------------------
# Machines

#: (label, key in machine_info["netcopy"], fallback path in pytest-benchmark's machine_info)
_MACHINE_FACTS = (
    ("kernel_release", "kernel_release", ("release",)),
    ("cpu_model", "cpu_model", ("cpu", "brand_raw")),
    ("cpu_count", "cpu_count", ("cpu", "count")),
)


@dataclass(frozen=True)
class MachineDifference:
    fact: str
    baseline: str
    current: str

    def __str__(self) -> str:
        return f"{self.fact} {self.baseline!r} (baseline) vs {self.current!r} (current)"


class MachineMismatch(Exception):
    """The runs come from different machines and a strict comparison was asked for."""

    def __init__(self, differences: Sequence[MachineDifference]) -> None:
        self.differences = list(differences)
        listed = "; ".join(str(d) for d in self.differences)
        super().__init__(
            f"refusing to compare runs from different machines (strict machine check): {listed}"
        )


def _machine_fact(run: Run, key: str, fallback: tuple[str, ...]) -> str | None:
    value: Any = run.netcopy_machine.get(key)
    if value is None:
        value = run.machine_info
        for part in fallback:
            value = value.get(part) if isinstance(value, Mapping) else None
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value).strip() or None


def machine_differences(baseline: Run, current: Run) -> list[MachineDifference]:
    """Kernel release, CPU model and CPU count that both runs recorded and that differ."""
    found = []
    for label, key, fallback in _MACHINE_FACTS:
        old = _machine_fact(baseline, key, fallback)
        new = _machine_fact(current, key, fallback)
        if old is not None and new is not None and old != new:
            found.append(MachineDifference(label, old, new))
    return found


# ---------------------------------------------------------------------------
# The comparison


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


def _not_comparable(
    bench: str, rule: Rule, base: float | None, cur: float | None, reason: str
) -> Row:
    return Row(bench, rule.metric, rule, base, cur, None, None, "", NOT_COMPARABLE, reason)


def _compare_metric(
    bench: str, rule: Rule, base_result: Result, cur_result: Result, alpha: float
) -> Row:
    old = metric_value(base_result, rule.metric)
    new = metric_value(cur_result, rule.metric)
    if old.value is None or new.value is None:
        sides = []
        if old.value is None:
            sides.append(f"baseline: {old.reason}")
        if new.value is None:
            sides.append(f"current: {new.reason}")
        return _not_comparable(bench, rule, old.value, new.value, "; ".join(sides))
    base, cur = old.value, new.value
    change = (cur - base) / abs(base) if base != 0 else None
    if rule.percent:
        if change is None:
            if cur != base:
                return _not_comparable(
                    bench, rule, base, cur, "baseline is 0: a percent threshold cannot apply"
                )
            change = 0.0
        size = change
    else:
        size = cur - base
    # the bad way, and the good way, each beyond the threshold (strictly)
    worse = rule.direction * size > rule.limit
    better = -rule.direction * size > rule.limit

    p_value: float | None = None
    if old.samples and new.samples:
        n, m = len(old.samples), len(new.samples)
        if smallest_p(n, m) >= alpha:
            test = f"n/a: {n}+{m} rounds, too few for p < {alpha:g}"
            significant = True
        else:
            mw = mann_whitney_u(old.samples, new.samples)
            p_value = mw.p_value
            test = f"{mw.method}, {n}+{m} rounds"
            significant = p_value < alpha
    else:
        test = (
            "n/a: single value"
            if not (old.samples or new.samples)
            else (f"n/a: no rounds in {'baseline' if not old.samples else 'current'}")
        )
        significant = True
    if worse and significant:
        return Row(bench, rule.metric, rule, base, cur, change, p_value, test, REGRESSION)
    if better and significant:
        return Row(bench, rule.metric, rule, base, cur, change, p_value, test, IMPROVEMENT)
    reason = f"beyond the threshold but not significant (p >= {alpha:g})" if worse or better else ""
    return Row(bench, rule.metric, rule, base, cur, change, p_value, test, OK, reason)


def _rules_for(
    key: BenchmarkKey,
    rules: Sequence[Rule],
    overrides: Mapping[BenchmarkKey | str, Sequence[Rule]] | None,
) -> list[Rule]:
    """The session rules, with an override's rules replacing those of the same metrics;
    only the rules that apply to the benchmark's mode."""
    extra = None
    if overrides:
        extra = overrides.get(key)
        if extra is None:
            extra = overrides.get(benchmark_id(key))
    chosen = list(rules)
    if extra is not None:
        replaced = {r.metric for r in extra}
        chosen = [r for r in rules if r.metric not in replaced] + list(extra)
    return [r for r in chosen if r.applies_to(key[0])]


def _index(run: Run) -> tuple[dict[BenchmarkKey, Result], dict[BenchmarkKey, list[str]]]:
    """The run's benchmarks by key, and the keys that more than one benchmark share."""
    seen: dict[BenchmarkKey, list[Result]] = {}
    for result in run.results:
        seen.setdefault(result.key, []).append(result)
    dupes = {k: [r.name for r in v] for k, v in seen.items() if len(v) > 1}
    return {k: v[-1] for k, v in seen.items()}, dupes


def compare_runs(
    baseline: Run,
    current: Run,
    rules: Sequence[Rule],
    *,
    two_sided: bool = False,
    strict_machine: bool = False,
    overrides: Mapping[BenchmarkKey | str, Sequence[Rule]] | None = None,
    alpha: float = DEFAULT_ALPHA,
    speed_tolerance: float | None = DEFAULT_SPEED_TOLERANCE,
) -> GateOutcome:
    """Compare every benchmark both runs have, under ``rules``.

    ``overrides`` maps a benchmark (key ``(mode, size, threads)`` or id
    ``'two_copy-4096B-2t'``) to rules that replace the session's rules for
    the same metrics. Raises MachineMismatch when ``strict_machine`` and the
    machines differ. Where a benchmark's control send changed speed by more
    than ``speed_tolerance`` (None: never mind), its speed-dependent metrics are
    not comparable. Deterministic: same input, same outcome.
    """
    differences = machine_differences(baseline, current)
    if strict_machine and differences:
        raise MachineMismatch(differences)
    old_index, old_dupes = _index(baseline)
    new_index, new_dupes = _index(current)
    rows: list[Row] = []
    compared = 0
    for key, new in new_index.items():
        old = old_index.get(key)
        if old is None:
            continue
        compared += 1
        bench = benchmark_id(key)
        speed = control_speed_change(old, new) if speed_tolerance is not None else None
        # (a hair of slack, so 40 -> 44 Gbps is the 10% it reads as, not 10.000000000000009%)
        moved = speed is not None and abs(speed[2]) > (speed_tolerance or 0.0) + 1e-9
        for rule in _rules_for(key, rules, overrides):
            if key in old_dupes or key in new_dupes:
                names = old_dupes.get(key) or new_dupes[key]
                side = "baseline" if key in old_dupes else "current run"
                reason = f"{len(names)} benchmarks in the {side} share it: {', '.join(names)}"
                rows.append(_not_comparable(bench, rule, None, None, reason))
                continue
            if moved and speed is not None and rule.metric.split(".")[0] not in SPEED_INDEPENDENT:
                base, cur, change = speed
                reason = (
                    f"{SPEED_REASON} (control {_fmt_value(base)} -> {_fmt_value(cur)} Gbps, "
                    f"{_pct(change, signed=True)}, beyond {_pct(speed_tolerance or 0.0)})"
                )
                rows.append(
                    _not_comparable(
                        bench, rule, metric_value(old, rule.metric).value,
                        metric_value(new, rule.metric).value, reason,
                    )
                )  # fmt: skip
                continue
            rows.append(_compare_metric(bench, rule, old, new, alpha))
    return GateOutcome(
        rows=rows,
        missing_in_current=sorted(benchmark_id(k) for k in old_index if k not in new_index),
        missing_in_baseline=sorted(benchmark_id(k) for k in new_index if k not in old_index),
        machine_differences=differences,
        compared=compared,
        two_sided=two_sided,
        alpha=alpha,
    )


# ---------------------------------------------------------------------------
# The outcome and its rendering


def _fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        return f"{value:.3e}"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


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


def _where(rows: Sequence[Row]) -> str:
    metrics: dict[str, list[str]] = {}
    for row in rows:
        metrics.setdefault(row.benchmark, []).append(row.metric)
    return ", ".join(f"{bench} ({', '.join(ms)})" for bench, ms in metrics.items())


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
            if r.verdict == REGRESSION or (self.two_sided and r.verdict == IMPROVEMENT)
        ]

    @property
    def failed(self) -> bool:
        return bool(self.failing)

    def summary(self) -> str:
        """The one-line verdict (the last line of :meth:`render`)."""
        regressions, improvements = self.regressions, self.improvements
        if self.failed:
            parts = []
            if regressions:
                parts.append(f"{_plural(len(regressions), 'regression')} in {_where(regressions)}")
            if self.two_sided and improvements:
                parts.append(
                    f"{_plural(len(improvements), 'improvement')} in {_where(improvements)} "
                    "(two-sided: refresh the baseline)"
                )
            if self.speed_changed:
                parts.append(
                    f"{_plural(len(self.speed_changed), 'benchmark')} not judged "
                    "(measured at another machine speed)"
                )
            return "netcopy gate: " + "; ".join(parts)
        if self.compared == 0:
            return "netcopy gate: nothing compared: no benchmark is in both runs"
        text = f"netcopy gate: no regression in {_plural(self.compared, 'benchmark')}"
        extras = []
        if improvements:
            extras.append(f"{_plural(len(improvements), 'improvement')} in {_where(improvements)}")
        if self.not_comparable:
            extras.append(f"{len(self.not_comparable)} not comparable")
        if self.speed_changed:
            extras.append(
                f"{_plural(len(self.speed_changed), 'benchmark')} measured at another machine "
                "speed: rerun to judge them"
            )
        return text + (f" ({'; '.join(extras)})" if extras else "")

    def table(self, fmt: str = "simple") -> str:
        headers = ["benchmark", "metric", "rule", "baseline", "current", "change"]
        headers += ["p (Mann-Whitney U)", "verdict"]
        body = [
            [
                r.benchmark,
                r.metric,
                str(r.rule).split(":", 1)[1],
                _fmt_value(r.baseline),
                _fmt_value(r.current),
                _fmt_change(r),
                _fmt_p(r),
                _fmt_verdict(r),
            ]
            for r in self.rows
        ]
        return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)

    def render(self, fmt: str = "simple") -> str:
        """Machine differences, the table, the missing benchmarks, advice, and the verdict last."""
        lines: list[str] = []
        if self.machine_differences:
            lines.append("machines differ (a change may come from the machine, not the code):")
            lines.extend(f"  {d}" for d in self.machine_differences)
        if self.rows:
            lines.append(self.table(fmt))
        if self.missing_in_current:
            lines.append(
                "in the baseline only (not run now, not compared): "
                + ", ".join(self.missing_in_current)
            )
        if self.missing_in_baseline:
            lines.append(
                "new, not in the baseline (not compared): " + ", ".join(self.missing_in_baseline)
            )
        lines.extend(self.notes)
        if self.regressions:
            lines.append(
                f"A regression is a change the rule's bad way beyond its threshold with "
                f"Mann-Whitney U p < {self.alpha:g} (threshold only where the test is n/a). "
                "Rerun to confirm it; if the change is intended, save a new baseline "
                "(docs/gate.md)."
            )
        if self.two_sided and self.improvements:
            lines.append(
                "An improvement beyond the threshold fails a two-sided gate: the baseline is "
                "stale. Save a new one with --benchmark-save=NAME and point the gate at it."
            )
        lines.append(self.summary())
        return "\n".join(lines)
