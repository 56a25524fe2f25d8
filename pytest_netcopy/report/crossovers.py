"""Crossover sizes: where one_copy overtakes two_copy and zero_copy overtakes copying.

Measured sizes only, per thread count, ranked by the figure
``report.ranking.speed_key`` picks for each size.

* :func:`crossovers` / :func:`render_crossovers`: the comparisons and their lines.
* :func:`crossovers_title`: the heading that says which figure they rank by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.report.ranking import comparable_speeds, index_results, speed_key


@dataclass(frozen=True)
class Crossover:
    """Where ``challenger`` overtakes ``incumbent`` at one thread count (measured sizes only).

    ``incumbent`` is ``two_copy`` for one_copy, and for zero_copy ``copying``:
    at each size the better of two_copy and one_copy (or the one that ran).
    """

    threads: int
    challenger: str
    incumbent: str
    sizes: tuple[int, ...]  #: sizes both were measured at, ascending
    ahead: tuple[bool, ...]  #: challenger strictly faster (comparable_speeds) at each size

    @property
    def first_ahead(self) -> int | None:
        """The smallest size at which the challenger is ahead at all."""
        return next((s for s, a in zip(self.sizes, self.ahead, strict=True) if a), None)

    @property
    def size(self) -> int | None:
        """The smallest size from which the challenger stays ahead up to the largest size
        measured; None when it is behind at the largest size (or never ahead)."""
        if not self.ahead or not self.ahead[-1]:
            return None
        index = len(self.ahead) - 1
        while index > 0 and self.ahead[index - 1]:
            index -= 1
        return self.sizes[index]

    @property
    def overtakes(self) -> bool:
        """Behind at some smaller size and ahead from :attr:`size` on."""
        return self.size is not None and self.size != self.sizes[0]

    def describe(self) -> str:
        ch, inc = self.challenger, self.incumbent
        largest = self.sizes[-1]
        stays = self.size
        first = self.first_ahead
        if first is None:
            return f"{ch} never overtakes {inc} (up to {largest} B)"
        if stays == self.sizes[0]:
            if len(self.sizes) == 1:
                return f"{ch} ahead of {inc} at {largest} B (the only size measured)"
            return f"{ch} ahead of {inc} at every size ({self.sizes[0]}..{largest} B)"
        if stays is None:
            where = ", ".join(str(s) for s, a in zip(self.sizes, self.ahead, strict=True) if a)
            return (
                f"{ch} ahead of {inc} at {where} B but does not stay ahead (behind at {largest} B)"
            )
        if first == stays:
            return f"{ch} overtakes {inc} at {stays} B"
        earlier = ", ".join(
            str(s) for s, a in zip(self.sizes, self.ahead, strict=True) if a and s < stays
        )
        return f"{ch} overtakes {inc} at {stays} B (also ahead at {earlier} B, behind in between)"


def _crossover(
    threads: int, challenger: str, incumbent: str, points: list[tuple[int, bool]]
) -> Crossover:
    sizes = tuple(size for size, _ in points)
    ahead = tuple(is_ahead for _, is_ahead in points)
    return Crossover(threads, challenger, incumbent, sizes, ahead)


def _at_threads(threads: int, by_size: dict[int, dict[str, Extra]]) -> list[Crossover]:
    """one_copy vs two_copy, then zero_copy vs the better copying mode, at one thread count."""
    one: list[tuple[int, bool]] = []
    zero: list[tuple[int, bool]] = []
    copying_modes: set[str] = set()
    for size, by_mode in sorted(by_size.items()):
        speeds = comparable_speeds(by_mode)
        two_copy, one_copy = speeds.get("two_copy"), speeds.get("one_copy")
        if two_copy is not None and one_copy is not None:
            one.append((size, one_copy > two_copy))
        copying = [
            (g, m) for m, g in (("two_copy", two_copy), ("one_copy", one_copy)) if g is not None
        ]
        zero_copy = speeds.get("zero_copy")
        if copying and zero_copy is not None:
            copying_modes.update(m for _, m in copying)
            zero.append((size, zero_copy > max(g for g, _ in copying)))
    found = []
    if one:
        found.append(_crossover(threads, "one_copy", "two_copy", one))
    if zero:
        incumbent = "copying" if len(copying_modes) > 1 else copying_modes.pop()
        found.append(_crossover(threads, "zero_copy", incumbent, zero))
    return found


def crossovers(results: Sequence[Extra]) -> list[Crossover]:
    """Per thread count: one_copy vs two_copy, then zero_copy vs the better copying mode.

    A comparison is left out when a side was not measured at any common size.
    """
    by_threads: dict[int, dict[int, dict[str, Extra]]] = {}
    for (size, threads), by_mode in index_results(results).items():
        by_threads.setdefault(threads, {})[size] = by_mode
    return [c for t, by_size in sorted(by_threads.items()) for c in _at_threads(t, by_size)]


def render_crossovers(found: Sequence[Crossover]) -> str:
    """One line per thread count, e.g. ``threads=1: one_copy overtakes two_copy at 16384 B;
    zero_copy never overtakes copying (up to 65536 B)``; empty when nothing to compare."""
    lines: dict[int, list[str]] = {}
    for crossover in found:
        lines.setdefault(crossover.threads, []).append(crossover.describe())
    return "\n".join(f"threads={t}: {'; '.join(parts)}" for t, parts in sorted(lines.items()))


def crossovers_title(results: Sequence[Extra]) -> str:
    """Where the crossovers come from: the figure ``ranking.speed_key`` picks per row."""
    keys = {speed_key(by_mode) for by_mode in index_results(results).values()}
    if keys == {"throughput_vs_control"}:
        return "Crossovers (measured sizes, median-round throughput against the control)"
    if "throughput_vs_control" in keys:
        return (
            "Crossovers (measured sizes, median-round throughput against the control "
            "where every mode of the row has one, else Gbps)"
        )
    return "Crossovers (measured sizes, median-round throughput)"
