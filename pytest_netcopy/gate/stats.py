"""The statistic of the gate: a two-sided Mann-Whitney U test, whether a change
between two sets of per-round samples is significant, the distribution-free interval
on the change, and the smallest change the rounds' noise lets a comparison see.

The exact permutation distribution (ties handled with midranks) for small
samples, the normal approximation with tie and continuity correction above
``EXACT_MAX_N`` values; docs/gate.md explains the choice.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "EXACT_MAX_N",
    "POWER",
    "MannWhitney",
    "Significance",
    "detectable_change",
    "mann_whitney_u",
    "robust_scale",
    "shift_interval",
    "significance",
    "smallest_p",
]

#: Largest total sample count (both sides) for the exact test; the normal
#: approximation with tie correction is used above it.
EXACT_MAX_N = 60


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
    if exact and max(ties) == 1:  # no ties: U's null distribution directly
        cdf = _u_cdf(min(n, m), max(n, m))
        u = round(u_x)
        lower = cdf[u]
        upper = cdf[-1] - (cdf[u - 1] if u > 0 else 0)
        p = min(1.0, 2 * min(lower, upper) / cdf[-1])
        return MannWhitney(u=u_y, p_value=p, method="exact")
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


@dataclass(frozen=True)
class Significance:
    """Whether a change between two sides' samples counts, and how that was judged."""

    #: two-sided Mann-Whitney U p-value; None when the test was not applicable
    p_value: float | None
    #: how, e.g. "exact, 12+12 rounds" or "n/a: single value"
    test: str
    #: p < alpha, or True where the test is not applicable (the threshold decides alone)
    significant: bool


def significance(old: Sequence[float], new: Sequence[float], alpha: float) -> Significance:
    """Test ``new`` against ``old`` at ``alpha``: the baseline's and the current samples."""
    if not (old and new):
        if not (old or new):
            return Significance(None, "n/a: single value", True)
        return Significance(None, f"n/a: no rounds in {'baseline' if not old else 'current'}", True)
    n, m = len(old), len(new)
    if smallest_p(n, m) >= alpha:
        return Significance(None, f"n/a: {n}+{m} rounds, too few for p < {alpha:.2g}", True)
    mw = mann_whitney_u(old, new)
    return Significance(mw.p_value, f"{mw.method}, {n}+{m} rounds", mw.p_value < alpha)


# ---------------------------------------------------------------------------
# The interval on the change, and the smallest change a comparison could see


@functools.lru_cache(maxsize=256)
def _u_cdf(n: int, m: int) -> tuple[int, ...]:
    """Cumulative counts of the Mann-Whitney U statistic of n and m distinct values under
    the null hypothesis: ``cdf[u]`` subsets have U <= u, of comb(n+m, n).

    The counts are the coefficients of the Gaussian binomial [n+m choose n]_q, built as
    prod_{i=1..n} (1 - q^(m+i)) / (1 - q^i): a multiplication and a division (a strided
    prefix sum) per factor, exact in integers.
    """
    size = n * m + 1
    poly = [1] + [0] * (size - 1)
    for i in range(1, n + 1):
        for u in range(size - 1, m + i - 1, -1):  # times (1 - q^(m+i))
            poly[u] -= poly[u - m - i]
        for u in range(i, size):  # divided by (1 - q^i)
            poly[u] += poly[u - i]
    return tuple(itertools.accumulate(poly))


def _rank_k(n: int, m: int, alpha: float) -> int:
    """The order statistic of the n*m pairwise differences that bounds the two-sided
    1 - alpha interval: the largest k with P(U <= k - 1) <= alpha / 2 (0: none)."""
    if n * m <= EXACT_INTERVAL_MAX_PAIRS:
        cdf = _u_cdf(min(n, m), max(n, m))
        total = cdf[-1]
        k = 0
        while k < len(cdf) and cdf[k] * 2 <= alpha * total:
            k += 1
        return k
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return max(0, math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12)))


#: up to this many pairs of rounds the interval's order statistic is exact
EXACT_INTERVAL_MAX_PAIRS = 10_000


def shift_interval(
    old: Sequence[float], new: Sequence[float], alpha: float, *, ratio: bool
) -> tuple[float, float] | None:
    """The distribution-free 1 - alpha confidence interval for the shift of ``new``
    against ``old`` (the Hodges-Lehmann / Mann-Whitney construction): order statistics
    k and n*m + 1 - k of the pairwise differences, k from the exact null distribution of
    U (normal approximation beyond ``EXACT_INTERVAL_MAX_PAIRS``).

    ``ratio``: of the logarithms (a change by a factor), returned as relative changes
    (``new / old - 1``); all values must be positive. None when the samples are too
    few for any interval at this level (it would be unbounded).
    """
    n, m = len(old), len(new)
    if n == 0 or m == 0:
        return None
    k = _rank_k(n, m, alpha)
    if k < 1:
        return None
    if ratio:
        xs, ys = [math.log(v) for v in old], [math.log(v) for v in new]
    else:
        xs, ys = list(old), list(new)
    diffs = sorted(y - x for y in ys for x in xs)
    low, high = diffs[k - 1], diffs[n * m - k]
    if ratio:
        return math.expm1(low), math.expm1(high)
    return low, high


#: the power at which the smallest detectable change is given
POWER = 0.8
#: the Mann-Whitney test's efficiency against the t test on normal data is 3/pi
_RANK_EFFICIENCY = math.sqrt(math.pi / 3)


def robust_scale(values: Sequence[float]) -> float:
    """The median absolute deviation, scaled to estimate a normal standard deviation."""
    mid = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - mid) for v in values)


def detectable_change(
    old: Sequence[float], new: Sequence[float], alpha: float, *, ratio: bool, direction: int
) -> float | None:
    """The smallest change the bad way (``direction`` +1: a rise, -1: a drop) a two-sided
    Mann-Whitney test at ``alpha`` finds with 80% power at the rounds' noise (the
    pooled MAD scale of both sides, on the logarithms for ``ratio``), as a relative change
    for ``ratio`` (positive: its size) else in the values' units. None with fewer than
    two rounds on a side."""
    n, m = len(old), len(new)
    if n < 2 or m < 2:
        return None
    xs = [math.log(v) for v in old] if ratio else list(old)
    ys = [math.log(v) for v in new] if ratio else list(new)
    pooled = math.sqrt(
        ((n - 1) * robust_scale(xs) ** 2 + (m - 1) * robust_scale(ys) ** 2) / (n + m - 2)
    )
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(POWER)
    shift = z * pooled * math.sqrt(1 / n + 1 / m) * _RANK_EFFICIENCY
    if not ratio:
        return shift
    return math.expm1(shift) if direction > 0 else -math.expm1(-shift)
