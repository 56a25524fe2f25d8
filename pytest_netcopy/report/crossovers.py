"""Crossover sizes: where one_copy overtakes two_copy and zero_copy overtakes copying.

Measured sizes only, per thread count, ranked by the figure
``report.ranking.speed_key`` picks for each size.

* :func:`crossovers` / :func:`render_crossovers`: the comparisons and their lines.
* :func:`crossovers_title`: the heading that says which figure they rank by.
* :func:`cpu_crossovers` / :func:`render_cpu_crossovers`: on the transmit-only
  (blackhole) target, where udp_zero_copy's sender CPU per byte drops below
  udp_one_copy's: the same :class:`Crossover`, ranked by a cost (lower is ahead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pytest_netcopy.report.figures import Extra, copied_fraction, transmit_only
from pytest_netcopy.report.ranking import comparable_speeds, index_results, speed_key
from pytest_netcopy.results.record import KERNEL_COPIES_NOTE
from pytest_netcopy.results.schema import as_float

#: the blackhole target's comparison (issue 15): zero-copy against the gathering copy
CPU_CHALLENGER, CPU_INCUMBENT = "udp_zero_copy", "udp_one_copy"
NEVER_PAID = "zero-copy never paid in these sizes"


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
    #: what ranks them: "speed" (higher is ahead) or "cpu" (sender CPU ns/byte, lower is
    #: ahead; then ``values`` holds (challenger, incumbent) per size)
    figure: str = "speed"
    values: tuple[tuple[float, float], ...] = ()

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
        if self.figure == "cpu":
            return self._describe_cost()
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

    def _describe_cost(self) -> str:
        """Where the challenger starts to pay (its CPU/byte stays below from there on)."""
        pays, largest = self.size, self.sizes[-1]
        if pays is None:
            cheaper = [s for s, a in zip(self.sizes, self.ahead, strict=True) if a]
            if not cheaper:
                return f"{NEVER_PAID} (up to {largest} B)"
            where = ", ".join(str(s) for s in cheaper)
            return f"{NEVER_PAID} (cheaper at {where} B, not at {largest} B)"
        if pays == self.sizes[0]:
            return f"zero-copy pays at every size ({self.sizes[0]}..{largest} B)"
        return f"zero-copy starts to pay at {pays} B"


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


def cpu_crossovers(results: Sequence[Extra]) -> list[Crossover]:
    """Per thread count, on the transmit-only results: udp_zero_copy against udp_one_copy by
    sender CPU ns/byte (lower is ahead), at the sizes where both have the figure."""
    by_threads: dict[int, list[tuple[int, float, float]]] = {}
    held = [r for r in results if transmit_only(r)]
    for (size, threads), by_mode in index_results(held).items():
        zero, one = by_mode.get(CPU_CHALLENGER), by_mode.get(CPU_INCUMBENT)
        if zero is None or one is None:
            continue
        z, o = as_float(zero.get("cpu_ns_per_byte")), as_float(one.get("cpu_ns_per_byte"))
        if z is not None and o is not None:
            by_threads.setdefault(threads, []).append((size, z, o))
    found = []
    for threads, points in sorted(by_threads.items()):
        crossover = _crossover(
            threads, CPU_CHALLENGER, CPU_INCUMBENT, [(s, z < o) for s, z, o in points]
        )
        values = tuple((z, o) for _, z, o in points)
        found.append(replace(crossover, figure="cpu", values=values))
    return found


def render_cpu_crossovers(results: Sequence[Extra]) -> list[str]:
    """The transmit-only lines: what the results are, then per thread count the sender CPU
    ns/byte of udp_zero_copy against udp_one_copy per size and where zero-copy starts to pay.
    Empty without transmit-only results."""
    held = [r for r in results if transmit_only(r)]
    if not held:
        return []
    lines = [
        f"transmit only (blackhole target, {len(held)} results): nothing receives, payload "
        f"not verified; sender CPU ns/byte, {CPU_CHALLENGER} vs {CPU_INCUMBENT}:"
    ]
    found = cpu_crossovers(held)
    for c in found:
        sizes = ", ".join(
            f"{s} B {z:.3f} vs {o:.3f} ({z / o:.2f}x)" if o > 0 else f"{s} B {z:.3f} vs {o:.3f}"
            for s, (z, o) in zip(c.sizes, c.values, strict=True)
        )
        lines.append(f"threads={c.threads}: {sizes}; {c.describe()}")
    if not found:
        lines.append(
            f"no size with both {CPU_CHALLENGER} and {CPU_INCUMBENT} and their sender CPU "
            "(task-clock): nothing to compare"
        )
    if any(r.get("zerocopy_effective") is False and copied_fraction(r) for r in held):
        lines.append(KERNEL_COPIES_NOTE)
    return lines
