"""``netcopy plot``: the reference workload's five plots plus a crossover plot.

Every plot function takes a loaded :class:`~pytest_netcopy.results.runs.Run` and
returns its Figure; :func:`write_plots` saves them all as PNG. Each figure
names the machine (CPU, CPU count, kernel) and what its error bars are:
the range (min..max) of the measured rounds around the reported median.
What the figures share (and why matplotlib is optional) is ``report.plotting``;
the crossover plot is ``report.plots_crossover``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_netcopy.report.figures import Extra, ns_samples, per_message, round_samples
from pytest_netcopy.report.latency import rr_results
from pytest_netcopy.report.plots_crossover import plot_crossover
from pytest_netcopy.report.plots_latency import plot_latency_distribution, plot_latency_vs_size
from pytest_netcopy.report.plotting import (
    PlotDependencyError,
    errors,
    extras,
    finish,
    log_y,
    mode_color,
    new_figure,
    not_counted,
    panel_grid,
    require_matplotlib,
    series,
    size_axis,
    size_label,
    threads_label,
    why_not_counted,
)
from pytest_netcopy.report.ranking import order_modes
from pytest_netcopy.results.runs import Run
from pytest_netcopy.results.schema import as_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LATENCY_PLOTS",
    "PLOTS",
    "PlotDependencyError",
    "overall_size",
    "plot_cache_misses",
    "plot_crossover",
    "plot_cycles_per_byte",
    "plot_overall",
    "plot_throughput",
    "plot_time_per_message",
    "require_matplotlib",
    "write_plots",
]

CPU_ERRORBAR_NOTE = (
    "error bars: min..max of the measured rounds' CPU ns/byte around the all-rounds figure"
)
NO_ROUNDS_NOTE = "counter totals over all rounds: no per-round spread recorded, so no error bars"
OVERALL_SIZE = 16384
THREAD_STYLES = ("-", "--", ":", "-.")
#: what a cache-miss panel shows and its event in ``extra_info.counters``
CACHE_EVENTS = (
    ("LLC-load-misses", "LLC load misses"),
    ("L1-dcache-load-misses", "L1d load misses"),
)


def _mode_lines(
    ax: Axes,
    results: Sequence[Extra],
    x: str,
    where: tuple[str, int],
    y: str,
    samples: Callable[[Extra], list[float]],
) -> None:
    """A line per mode of ``y`` against ``x``, over the results whose ``where`` key has
    that value, the error bars from ``samples``."""
    modes = order_modes(str(e["mode"]) for e in results)
    key, value = where
    for mode in modes:
        points = sorted(
            (int(e[x]), float(e[y]), samples(e))
            for e in results
            if e["mode"] == mode and int(e[key]) == value
        )
        series(
            ax,
            [p[0] for p in points],
            [p[1] for p in points],
            [errors(p[1], p[2]) for p in points],
            color=mode_color(mode, modes),
            label=mode,
        )


def _per_mode_threads(
    ax: Axes,
    results: Sequence[Extra],
    value: Callable[[Extra], float | None],
    samples: Callable[[Extra], list[float]] | None,
) -> int:
    """One line per (mode, threads) against size; returns the lines drawn.

    ``samples`` gives the per-round values behind the error bars; None draws
    plain lines (no per-round data).
    """
    modes = order_modes(str(e["mode"]) for e in results)
    threads = sorted({int(e["threads"]) for e in results})
    drawn = 0
    for mode in modes:
        for index, t in enumerate(threads):
            points = sorted(
                (int(e["size"]), v, samples(e) if samples is not None else [])
                for e in results
                if e["mode"] == mode and int(e["threads"]) == t and (v := value(e)) is not None
            )
            if not points:
                continue
            series(
                ax,
                [p[0] for p in points],
                [p[1] for p in points],
                [errors(p[1], p[2]) for p in points] if samples is not None else None,
                color=mode_color(mode, modes),
                linestyle=THREAD_STYLES[index % len(THREAD_STYLES)],
                label=f"{mode}, {threads_label(t)}",
            )
            drawn += 1
    return drawn


# ---------------------------------------------------------------------------
# the plots


def plot_throughput(run: Run) -> Figure:
    """1. Throughput vs message size: a panel per thread count, a line per mode."""
    results = extras(run)
    threads = sorted({int(e["threads"]) for e in results})
    sizes = sorted({int(e["size"]) for e in results})
    fig, axes = new_figure(1, len(threads), 4.6 * len(threads) + 0.6, 4.6, sharey=True)
    gbps = partial(round_samples, key="throughput_gbps")
    for ax, t in zip(axes, threads, strict=True):
        _mode_lines(ax, results, "size", ("threads", t), "throughput_gbps", gbps)
        size_axis(ax, sizes)
        ax.set_title(threads_label(t))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("throughput (Gbps, all connections)")
    axes[0].legend(title="mode")
    return finish(fig, run, "Throughput vs message size")


def plot_time_per_message(run: Run) -> Figure:
    """2. Time per message (inverse throughput) vs threads: a panel per size, a line per mode."""
    results = extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    threads = sorted({int(e["threads"]) for e in results})
    fig, axes = panel_grid(len(sizes), 4.2, 3.4)
    for ax, size in zip(axes, sizes, strict=False):
        _mode_lines(ax, results, "threads", ("size", size), "ns_per_message", ns_samples)
        ax.set_xticks(threads)
        ax.set_xlabel("sender threads (connections)")
        ax.set_ylabel("time per message (ns, log scale)")
        ax.set_title(size_label(size))
        log_y(ax)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].legend(title="mode")
    return finish(
        fig, run, "Time per message vs threads (median round time / messages: not latency)"
    )


def plot_cache_misses(run: Run) -> Figure:
    """3. LLC and L1d load misses per message vs size; a note where no PMU counted them."""
    results = extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    fig, axes = new_figure(1, len(CACHE_EVENTS), 6.2 * len(CACHE_EVENTS), 4.8)
    for ax, (event, label) in zip(axes, CACHE_EVENTS, strict=True):
        drawn = _per_mode_threads(ax, results, partial(per_message, event=event), None)
        size_axis(ax, sizes)
        scale = ", log scale" if drawn else ""
        ax.set_ylabel(f"{label} per message (sender threads{scale})")
        ax.set_title(f"{label} ({event})")
        if drawn:
            log_y(ax)
            ax.grid(True, axis="x", alpha=0.3)
            ax.legend(fontsize=8)
        else:
            not_counted(ax, event, why_not_counted(results, event, run))
            ax.set_yticks([])
    return finish(fig, run, "Cache misses vs message size", NO_ROUNDS_NOTE)


def plot_cycles_per_byte(run: Run) -> Figure:
    """4. CPU cycles per byte vs size; CPU ns per byte (task-clock) where no PMU counted cycles."""
    results = extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    fig, axes = new_figure(1, 1, 8.0, 5.0)
    ax = axes[0]
    counted = any(as_float(e.get("cycles_per_byte")) is not None for e in results)
    key = "cycles_per_byte" if counted else "cpu_ns_per_byte"
    has_rounds = any(round_samples(e, key) for e in results)
    drawn = _per_mode_threads(
        ax,
        results,
        lambda e: as_float(e.get(key)),
        partial(round_samples, key=key) if has_rounds else None,
    )
    size_axis(ax, sizes)
    note = CPU_ERRORBAR_NOTE if has_rounds else NO_ROUNDS_NOTE
    scale = ", log scale" if drawn else ""
    if counted:
        title = "CPU cycles per byte vs message size (sender threads)"
        ax.set_ylabel(f"CPU cycles per byte (cycles/B{scale})")
    else:
        title = "CPU ns per byte vs message size (sender task-clock: no PMU counted cycles)"
        ax.set_ylabel(f"sender CPU time per byte (ns/B{scale})")
    if drawn:
        log_y(ax)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=8, ncols=2)
    else:
        not_counted(ax, "cycles and task-clock", why_not_counted(results, "cycles", run))
        ax.set_yticks([])
    return finish(fig, run, title, note)


def overall_size(results: Sequence[Extra], preferred: int = OVERALL_SIZE) -> int:
    """The size of the overall comparison: 16 KiB, else the measured size nearest to it."""
    sizes = {int(e["size"]) for e in results}
    return min(sizes, key=lambda s: (abs(s.bit_length() - preferred.bit_length()), -s))


def plot_overall(run: Run) -> Figure:
    """5. Overall comparison at 16 KiB: throughput per thread count, a bar per mode."""
    results = extras(run)
    size = overall_size(results)
    at_size = [e for e in results if int(e["size"]) == size]
    threads = sorted({int(e["threads"]) for e in at_size})
    modes = order_modes(str(e["mode"]) for e in at_size)
    by_key = {(str(e["mode"]), int(e["threads"])): e for e in at_size}
    fig, axes = new_figure(1, 1, max(6.0, 2.2 * len(threads) + 2.5), 4.8)
    ax = axes[0]
    width = 0.8 / len(modes)
    for index, mode in enumerate(modes):
        xs, heights, errs = [], [], []
        for position, t in enumerate(threads):
            extra = by_key.get((mode, t))
            if extra is None:
                continue
            value = float(extra["throughput_gbps"])
            xs.append(position - 0.4 + width * (index + 0.5))
            heights.append(value)
            errs.append(errors(value, round_samples(extra, "throughput_gbps")))
        bars = ax.bar(
            xs,
            heights,
            width,
            yerr=[[e[0] for e in errs], [e[1] for e in errs]],
            capsize=3,
            color=mode_color(mode, modes),
            label=mode,
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    ax.set_xticks(range(len(threads)), [threads_label(t) for t in threads])
    ax.set_xlabel("sender threads (connections)")
    ax.set_ylabel("throughput (Gbps, all connections)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="mode")
    ax.margins(y=0.12)
    return finish(fig, run, f"Overall comparison at {size_label(size)} messages")


#: file name -> plot function, in the reference's order, the crossover plot last
PLOTS: dict[str, Callable[[Run], Figure]] = {
    "1_throughput_vs_size.png": plot_throughput,
    "2_time_per_message_vs_threads.png": plot_time_per_message,
    "3_cache_misses_vs_size.png": plot_cache_misses,
    "4_cycles_per_byte_vs_size.png": plot_cycles_per_byte,
    "5_overall_comparison.png": plot_overall,
    "6_crossover.png": plot_crossover,
}
#: issue 16: written where the run has request/response results
LATENCY_PLOTS: dict[str, Callable[[Run], Figure]] = {
    "7_latency_vs_size.png": plot_latency_vs_size,
    "8_latency_distribution.png": plot_latency_distribution,
}


def write_plots(run: Run, outdir: str | Path, *, dpi: int = 110) -> list[Path]:
    """Render every plot of ``run`` into ``outdir`` (created if needed) as PNG; return the paths."""
    require_matplotlib()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    plots = dict(PLOTS) if extras(run) else {}
    if rr_results([r.extra for r in run.results]):
        plots.update(LATENCY_PLOTS)
    for name, plot in plots.items():
        fig = plot(run)
        path = out / name
        fig.savefig(path, dpi=dpi)
        written.append(path)
    return written
