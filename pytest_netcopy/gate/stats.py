"""The statistic of the gate: a two-sided Mann-Whitney U test, and whether a change
between two sets of per-round samples is significant.

The exact permutation distribution (ties handled with midranks) for small
samples, the normal approximation with tie and continuity correction above
``EXACT_MAX_N`` values; docs/gate.md explains the choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EXACT_MAX_N",
    "MannWhitney",
    "Significance",
    "mann_whitney_u",
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
        return Significance(None, f"n/a: {n}+{m} rounds, too few for p < {alpha:g}", True)
    mw = mann_whitney_u(old, new)
    return Significance(mw.p_value, f"{mw.method}, {n}+{m} rounds", mw.p_value < alpha)
