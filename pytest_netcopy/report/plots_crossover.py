"""The crossover plot of ``netcopy plot``: throughput ratios vs size, the crossover sizes marked.

It draws the comparisons ``report.crossovers`` states in words: one_copy
against two_copy, zero_copy against the better copying mode, a line per
thread count, ranked by the same figure (``report.ranking.speed_key``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_netcopy.report.crossovers import (
    CPU_CHALLENGER,
    CPU_INCUMBENT,
    Crossover,
    cpu_crossovers,
    crossovers,
)
from pytest_netcopy.report.figures import Extra, round_samples, transmit_only
from pytest_netcopy.report.plotting import (
    errors,
    extras,
    finish,
    log_y,
    new_figure,
    series,
    size_axis,
    size_label,
    threads_label,
)
from pytest_netcopy.report.ranking import comparable_speeds, index_results, speed_key
from pytest_netcopy.results.runs import Run
from pytest_netcopy.results.schema import as_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CROSSOVER_NOTE = (
    "ratios of each mode's throughput against its control send where every mode of the "
    "size has one, else of Gbps; error bars: ratio range from the rounds' extremes "
    "(min/max against max/min)"
)

CPU_TITLE = "where zero-copy's sender CPU per byte pays"
CPU_NOTE = "CPU: task-clock; bars: the rounds' extremes; star: zero-copy cheaper from there on"

#: a point of a ratio line: (size, challenger/incumbent speed, (below, above) error bars)
RatioPoint = tuple[int, float, tuple[float, float]]


@dataclass(frozen=True)
class _Panel:
    challenger: str
    incumbents: tuple[str, ...]
    label: str


PANELS = (
    _Panel("one_copy", ("two_copy",), "one_copy / two_copy"),
    _Panel("zero_copy", ("two_copy", "one_copy"), "zero_copy / better copying mode"),
)


def _ratio_points(
    by_size: Mapping[int, Mapping[str, Extra]], challenger: str, incumbents: Sequence[str]
) -> list[RatioPoint]:
    """(size, challenger/incumbent speed, error bars from the rounds' extremes).

    Speed is the figure the crossovers rank by (``ranking.speed_key``): the ratio
    to the control where the whole row has it, so the line and the verdict agree.
    """
    points = []
    for size, by_mode in sorted(by_size.items()):
        speeds = comparable_speeds(by_mode)
        rated = [m for m in incumbents if m in speeds]
        if challenger not in speeds or not rated:
            continue
        rival = max(rated, key=speeds.__getitem__)
        if speeds[rival] <= 0:
            continue
        ratio = speeds[challenger] / speeds[rival]
        key = speed_key(by_mode)
        ch_rounds = round_samples(by_mode[challenger], key)
        rival_rounds = round_samples(by_mode[rival], key)
        if ch_rounds and rival_rounds and min(rival_rounds) > 0:
            low, high = min(ch_rounds) / max(rival_rounds), max(ch_rounds) / min(rival_rounds)
            errs = (max(0.0, ratio - low), max(0.0, high - ratio))
        else:
            errs = (0.0, 0.0)
        points.append((size, ratio, errs))
    return points


def _verdict(crossover: Crossover | None) -> str:
    if crossover is None:
        return "not measured"
    if crossover.size is None:
        return "never ahead" if crossover.first_ahead is None else "does not stay ahead"
    if not crossover.overtakes:
        return "ahead at every size"
    return f"overtakes at {size_label(crossover.size)}"


def _mark_crossover(
    ax: Axes, size: int, points: Sequence[RatioPoint], index: int, threads: int, last: bool
) -> None:
    """A dotted line and a star at the crossover size, labelled at the foot of the panel."""
    color = f"C{index}"
    ax.axvline(size, color=color, linestyle=":", linewidth=1.5)
    at = next(p[1] for p in points if p[0] == size)
    ax.plot(
        [size],
        [at],
        marker="*",
        markersize=15,
        color=color,
        markeredgecolor="black",
        linestyle="none",
        zorder=5,
    )
    ax.text(
        size * (0.93 if last else 1.07),
        0.03 + 0.07 * index,
        f"{size_label(size)} ({threads_label(threads)})",
        transform=ax.get_xaxis_transform(),
        ha="right" if last else "left",
        color=color,
        fontsize=8,
    )


def _draw_panel(
    ax: Axes,
    panel: _Panel,
    results: Sequence[Extra],
    found: Mapping[tuple[int, str], Crossover],
) -> None:
    """A ratio line per thread count, the crossover sizes where the challenger overtakes."""
    sizes = sorted({int(e["size"]) for e in results})
    threads = sorted({int(e["threads"]) for e in results})
    indexed = index_results(results)
    ax.axhline(1.0, color="0.4", linewidth=1, linestyle="--")
    for index, t in enumerate(threads):
        by_size = {s: m for (s, th), m in indexed.items() if th == t}
        points = _ratio_points(by_size, panel.challenger, panel.incumbents)
        if not points:
            continue
        crossover = found.get((t, panel.challenger))
        series(
            ax,
            [p[0] for p in points],
            [p[1] for p in points],
            [p[2] for p in points],
            color=f"C{index}",
            label=f"{threads_label(t)}: {_verdict(crossover)}",
        )
        if crossover is not None and crossover.size is not None and crossover.overtakes:
            last = crossover.size == sizes[-1]
            _mark_crossover(ax, crossover.size, points, index, t, last)
    size_axis(ax, sizes)
    ax.set_title(f"{panel.label}  (> 1: {panel.challenger} ahead)")
    log_y(ax)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylabel("throughput ratio (challenger / incumbent, log scale)")


def _draw_cpu_panel(ax: Axes, results: Sequence[Extra], found: Sequence[Crossover]) -> None:
    """Transmit only (issue 15): sender CPU ns/byte vs size of udp_zero_copy and udp_one_copy,
    a line per mode and thread count, where zero-copy starts to pay marked."""
    held = [r for r in results if transmit_only(r)]
    sizes = sorted({int(e["size"]) for e in held})
    threads = sorted({int(e["threads"]) for e in held})
    for index, t in enumerate(threads):
        for color, mode in enumerate((CPU_INCUMBENT, CPU_CHALLENGER)):
            rows = [e for e in held if e["mode"] == mode and int(e["threads"]) == t]
            points = sorted(
                (int(e["size"]), v, round_samples(e, "cpu_ns_per_byte"))
                for e in rows
                if (v := as_float(e.get("cpu_ns_per_byte"))) is not None
            )
            series(
                ax,
                [p[0] for p in points],
                [p[1] for p in points],
                [errors(p[1], p[2]) for p in points],
                color=f"C{color}",
                linestyle=("-", "--", ":", "-.")[index % 4],
                label=f"{mode}, {threads_label(t)}",
            )
    for c in found:
        if c.size is not None and c.overtakes:
            at = c.values[c.sizes.index(c.size)][0]
            ax.axvline(c.size, color="C1", linestyle=":", linewidth=1.5)
            ax.plot([c.size], [at], marker="*", markersize=15, color="C1",
                    markeredgecolor="black", linestyle="none", zorder=5)  # fmt: skip
    verdicts = "; ".join(f"{threads_label(c.threads)}: {c.describe()}" for c in found)
    size_axis(ax, sizes)
    log_y(ax)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"transmit only: sender CPU ns/byte (lower is cheaper)\n{verdicts}", fontsize=9)
    ax.set_ylabel("sender CPU ns/byte (log scale)")


def plot_crossover(run: Run) -> Figure:
    """6. Throughput ratios vs size, a line per thread count, the crossover sizes marked; with
    transmit-only (blackhole) results, a third panel: udp_zero_copy's and udp_one_copy's
    sender CPU ns/byte vs size, where zero-copy starts to pay marked."""
    results = extras(run)
    found = {(c.threads, c.challenger): c for c in crossovers(results)}
    cpu = cpu_crossovers(results)
    if cpu and not found:  # only transmit-only results: the one panel that has them
        fig, axes = new_figure(1, 1, 8.4, 5.0)
        _draw_cpu_panel(axes[0], results, cpu)
        return finish(fig, run, f"Transmit only: {CPU_TITLE}", CPU_NOTE)
    fig, axes = new_figure(1, 3, 18.6, 5.0) if cpu else new_figure(1, 2, 12.4, 5.0)
    for ax, panel in zip(axes, PANELS, strict=False):
        _draw_panel(ax, panel, results, found)
    if cpu:
        _draw_cpu_panel(axes[2], results, cpu)
    return finish(
        fig,
        run,
        "Crossovers: where one_copy overtakes two_copy, and zero_copy overtakes copying"
        + (f"; transmit only: {CPU_TITLE}" if cpu else ""),
        CROSSOVER_NOTE + (f"; {CPU_NOTE}" if cpu else ""),
    )
