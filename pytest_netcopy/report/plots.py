"""``netcopy plot``: the reference workload's five plots plus a crossover plot.

matplotlib is an optional extra (``pip install 'pytest-netcopy[plot]'``) and
is imported only inside the functions here, so the package imports without
it; a missing matplotlib raises :class:`PlotDependencyError`, whose message
says how to install it. Figures are built with ``matplotlib.figure.Figure``
on the Agg canvas (no pyplot, no global figure registry, nothing to close).

Every plot function takes a loaded :class:`~pytest_netcopy.results.runs.Run` and
returns its Figure; :func:`write_plots` saves them all as PNG. Each figure
names the machine (CPU, CPU count, kernel) and what its error bars are:
the range (min..max) of the measured rounds around the reported median.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_netcopy.report.csvout import per_message
from pytest_netcopy.report.tables import (
    Crossover,
    Extra,
    comparable_speeds,
    crossovers,
    describe_machine,
    index_results,
    order_modes,
    speed_key,
)
from pytest_netcopy.results.runs import Run
from pytest_netcopy.results.schema import as_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = (
    "netcopy plot needs matplotlib, an optional extra: "
    "pip install 'pytest-netcopy[plot]'  (or: pip install matplotlib)"
)
ERRORBAR_NOTE = "error bars: min..max of the measured rounds around the median"
CPU_ERRORBAR_NOTE = (
    "error bars: min..max of the measured rounds' CPU ns/byte around the all-rounds figure"
)
NO_ROUNDS_NOTE = "counter totals over all rounds: no per-round spread recorded, so no error bars"
OVERALL_SIZE = 16384
MODE_COLORS = {"two_copy": "tab:blue", "one_copy": "tab:orange", "zero_copy": "tab:green"}
OTHER_COLORS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
THREAD_STYLES = ("-", "--", ":", "-.")
#: what a cache-miss panel shows and its event in ``extra_info.counters``
CACHE_EVENTS = (
    ("LLC-load-misses", "LLC load misses"),
    ("L1-dcache-load-misses", "L1d load misses"),
)


class PlotDependencyError(RuntimeError):
    """matplotlib is not installed; the message says how to install it."""


# ---------------------------------------------------------------------------
# helpers


def require_matplotlib() -> None:
    """Raise :class:`PlotDependencyError` (with the install command) when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotDependencyError(INSTALL_HINT) from exc


def _new_figure(
    nrows: int, ncols: int, width: float, height: float, *, sharey: bool = False
) -> tuple[Figure, list[Axes]]:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, list(grid.flat)


def _finish(fig: Figure, run: Run, title: str, note: str = ERRORBAR_NOTE) -> Figure:
    fig.suptitle(title, fontsize=13)
    fig.supxlabel(
        f"{describe_machine(run.machine_info)}  ·  {run.path.name}\n{note}",
        fontsize=8,
        color="0.3",
    )
    return fig


def _extras(run: Run) -> list[Extra]:
    return [result.extra for result in run.results]


def mode_color(mode: str, modes: Sequence[str]) -> str:
    if mode in MODE_COLORS:
        return MODE_COLORS[mode]
    others = [m for m in modes if m not in MODE_COLORS]
    return OTHER_COLORS[others.index(mode) % len(OTHER_COLORS)] if mode in others else "black"


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def _threads_label(threads: int) -> str:
    return f"{threads} thread" + ("" if threads == 1 else "s")


def _size_axis(ax: Axes, sizes: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlim(sizes[0] / 1.4, sizes[-1] * 1.4)
    ax.set_xticks(list(sizes), [size_label(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("message size (bytes, log scale)")


def _errors(value: float, samples: Sequence[float]) -> tuple[float, float]:
    """(below, above) the reported value: to the smallest and largest round."""
    if not samples:
        return (0.0, 0.0)
    return (max(0.0, value - min(samples)), max(0.0, max(samples) - value))


def _samples(extra: Extra, key: str) -> list[float]:
    rounds = extra.get("rounds")
    values = rounds.get(key) if isinstance(rounds, Mapping) else None
    return [v for v in (as_float(x) for x in values or []) if v is not None]


def _ns_samples(extra: Extra) -> list[float]:
    messages = as_float(extra.get("messages_per_round"))
    if not messages:
        return []
    return [s / messages * 1e9 for s in _samples(extra, "seconds")]


def _series(
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    errs: Sequence[tuple[float, float]] | None,
    **style: Any,
) -> None:
    """One line with markers; with ``errs`` (below, above) error bars, else a plain line
    (figures without per-round data get no error bar glyph in the legend either)."""
    if not xs:
        return
    if errs is None:
        ax.plot(xs, ys, marker="o", markersize=4, **style)
        return
    yerr = [[e[0] for e in errs], [e[1] for e in errs]]
    ax.errorbar(xs, ys, yerr=yerr, marker="o", markersize=4, capsize=3, **style)


def _plain_number(value: float) -> str:
    """A tick label on a log axis as a plain number: ``0.2``, ``5``, ``2,000``."""
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:.6g}"


def _log_tick_mantissas(decades: float) -> tuple[int, ...]:
    """Which mantissas (x 10^n) get a label on a log axis spanning ``decades``."""
    if decades > 3:
        return (1,)
    if decades > 1.5:
        return (1, 2, 5)
    if decades > 0.4:
        return (1, 2, 3, 5, 7)
    return (1, 2, 3, 4, 5, 6, 7, 8, 9)


def _log_y(ax: Axes) -> None:
    """Log y axis with plain-number labels, as many as the span allows, gridded."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_yscale("log")

    def label(value: float, _pos: int | None = None) -> str:
        low, high = ax.get_ylim()
        if value <= 0 or low <= 0 or high <= low:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
        if mantissa not in _log_tick_mantissas(math.log10(high / low)):
            return ""
        return _plain_number(value)

    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10))))
    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(label))
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.12)


def _why_not_counted(results: Sequence[Extra], event: str, run: Run) -> str:
    statuses = sorted(
        {
            str(e["counters"][event].get("status"))
            for e in results
            if isinstance(e.get("counters"), Mapping)
            and isinstance(e["counters"].get(event), Mapping)
        }
    )
    if not statuses:
        return "the run has no counter data"
    if statuses == ["not supported"] and run.netcopy_machine.get("pmus") == []:
        return "no hardware PMU"
    return "status: " + ", ".join(statuses)


def _not_counted(ax: Axes, what: str, why: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"{what}:\nnot counted on this machine ({why})",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=11,
        color="0.35",
        bbox={"boxstyle": "round", "facecolor": "0.95", "edgecolor": "0.7"},
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
            _series(
                ax,
                [p[0] for p in points],
                [p[1] for p in points],
                [_errors(p[1], p[2]) for p in points] if samples is not None else None,
                color=mode_color(mode, modes),
                linestyle=THREAD_STYLES[index % len(THREAD_STYLES)],
                label=f"{mode}, {_threads_label(t)}",
            )
            drawn += 1
    return drawn


# ---------------------------------------------------------------------------
# the plots


def plot_throughput(run: Run) -> Figure:
    """1. Throughput vs message size: a panel per thread count, a line per mode."""
    results = _extras(run)
    threads = sorted({int(e["threads"]) for e in results})
    sizes = sorted({int(e["size"]) for e in results})
    modes = order_modes(str(e["mode"]) for e in results)
    fig, axes = _new_figure(1, len(threads), 4.6 * len(threads) + 0.6, 4.6, sharey=True)
    for ax, t in zip(axes, threads, strict=True):
        for mode in modes:
            points = sorted(
                (int(e["size"]), float(e["throughput_gbps"]), _samples(e, "throughput_gbps"))
                for e in results
                if e["mode"] == mode and int(e["threads"]) == t
            )
            _series(
                ax,
                [p[0] for p in points],
                [p[1] for p in points],
                [_errors(p[1], p[2]) for p in points],
                color=mode_color(mode, modes),
                label=mode,
            )
        _size_axis(ax, sizes)
        ax.set_title(_threads_label(t))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("throughput (Gbps, all connections)")
    axes[0].legend(title="mode")
    return _finish(fig, run, "Throughput vs message size")


def plot_time_per_message(run: Run) -> Figure:
    """2. Time per message (inverse throughput) vs threads: a panel per size, a line per mode."""
    results = _extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    threads = sorted({int(e["threads"]) for e in results})
    modes = order_modes(str(e["mode"]) for e in results)
    ncols = min(3, len(sizes))
    nrows = -(-len(sizes) // ncols)
    fig, axes = _new_figure(nrows, ncols, 4.2 * ncols, 3.4 * nrows + 0.8)
    for ax in axes[len(sizes) :]:
        fig.delaxes(ax)
    for ax, size in zip(axes, sizes, strict=False):
        for mode in modes:
            points = sorted(
                (int(e["threads"]), float(e["ns_per_message"]), _ns_samples(e))
                for e in results
                if e["mode"] == mode and int(e["size"]) == size
            )
            _series(
                ax,
                [p[0] for p in points],
                [p[1] for p in points],
                [_errors(p[1], p[2]) for p in points],
                color=mode_color(mode, modes),
                label=mode,
            )
        ax.set_xticks(threads)
        ax.set_xlabel("sender threads (connections)")
        ax.set_ylabel("time per message (ns, log scale)")
        ax.set_title(size_label(size))
        _log_y(ax)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].legend(title="mode")
    return _finish(
        fig, run, "Time per message vs threads (median round time / messages: not latency)"
    )


def plot_cache_misses(run: Run) -> Figure:
    """3. LLC and L1d load misses per message vs size; a note where no PMU counted them."""
    results = _extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    fig, axes = _new_figure(1, len(CACHE_EVENTS), 6.2 * len(CACHE_EVENTS), 4.8)
    for ax, (event, label) in zip(axes, CACHE_EVENTS, strict=True):
        drawn = _per_mode_threads(ax, results, partial(per_message, event=event), None)
        _size_axis(ax, sizes)
        scale = ", log scale" if drawn else ""
        ax.set_ylabel(f"{label} per message (sender threads{scale})")
        ax.set_title(f"{label} ({event})")
        if drawn:
            _log_y(ax)
            ax.grid(True, axis="x", alpha=0.3)
            ax.legend(fontsize=8)
        else:
            _not_counted(ax, event, _why_not_counted(results, event, run))
            ax.set_yticks([])
    return _finish(fig, run, "Cache misses vs message size", NO_ROUNDS_NOTE)


def plot_cycles_per_byte(run: Run) -> Figure:
    """4. CPU cycles per byte vs size; CPU ns per byte (task-clock) where no PMU counted cycles."""
    results = _extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    fig, axes = _new_figure(1, 1, 8.0, 5.0)
    ax = axes[0]
    counted = any(as_float(e.get("cycles_per_byte")) is not None for e in results)
    key = "cycles_per_byte" if counted else "cpu_ns_per_byte"
    has_rounds = any(_samples(e, key) for e in results)
    drawn = _per_mode_threads(
        ax,
        results,
        lambda e: as_float(e.get(key)),
        (lambda e: _samples(e, key)) if has_rounds else None,
    )
    _size_axis(ax, sizes)
    note = CPU_ERRORBAR_NOTE if has_rounds else NO_ROUNDS_NOTE
    scale = ", log scale" if drawn else ""
    if counted:
        title = "CPU cycles per byte vs message size (sender threads)"
        ax.set_ylabel(f"CPU cycles per byte (cycles/B{scale})")
    else:
        title = "CPU ns per byte vs message size (sender task-clock: no PMU counted cycles)"
        ax.set_ylabel(f"sender CPU time per byte (ns/B{scale})")
    if drawn:
        _log_y(ax)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=8, ncols=2)
    else:
        _not_counted(ax, "cycles and task-clock", _why_not_counted(results, "cycles", run))
        ax.set_yticks([])
    return _finish(fig, run, title, note)


def overall_size(results: Sequence[Extra], preferred: int = OVERALL_SIZE) -> int:
    """The size of the overall comparison: 16 KiB, else the measured size nearest to it."""
    sizes = {int(e["size"]) for e in results}
    return min(sizes, key=lambda s: (abs(s.bit_length() - preferred.bit_length()), -s))


def plot_overall(run: Run) -> Figure:
    """5. Overall comparison at 16 KiB: throughput per thread count, a bar per mode."""
    results = _extras(run)
    size = overall_size(results)
    at_size = [e for e in results if int(e["size"]) == size]
    threads = sorted({int(e["threads"]) for e in at_size})
    modes = order_modes(str(e["mode"]) for e in at_size)
    by_key = {(str(e["mode"]), int(e["threads"])): e for e in at_size}
    fig, axes = _new_figure(1, 1, max(6.0, 2.2 * len(threads) + 2.5), 4.8)
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
            errs.append(_errors(value, _samples(extra, "throughput_gbps")))
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
    ax.set_xticks(range(len(threads)), [_threads_label(t) for t in threads])
    ax.set_xlabel("sender threads (connections)")
    ax.set_ylabel("throughput (Gbps, all connections)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="mode")
    ax.margins(y=0.12)
    return _finish(fig, run, f"Overall comparison at {size_label(size)} messages")


def _ratio_points(
    by_size: Mapping[int, Mapping[str, Extra]], challenger: str, incumbents: Sequence[str]
) -> list[tuple[int, float, tuple[float, float]]]:
    """(size, challenger/incumbent speed, error bars from the rounds' extremes).

    Speed is the figure the crossovers rank by (``tables.speed_key``): the ratio
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
        ch_rounds, rival_rounds = _samples(by_mode[challenger], key), _samples(by_mode[rival], key)
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


def plot_crossover(run: Run) -> Figure:
    """6. Throughput ratios vs size, a line per thread count, the crossover sizes marked."""
    results = _extras(run)
    sizes = sorted({int(e["size"]) for e in results})
    threads = sorted({int(e["threads"]) for e in results})
    found = {(c.threads, c.challenger): c for c in crossovers(results)}
    indexed = index_results(results)
    panels = (
        ("one_copy", ("two_copy",), "one_copy / two_copy"),
        ("zero_copy", ("two_copy", "one_copy"), "zero_copy / better copying mode"),
    )
    fig, axes = _new_figure(1, 2, 12.4, 5.0)
    for ax, (challenger, incumbents, label) in zip(axes, panels, strict=True):
        ax.axhline(1.0, color="0.4", linewidth=1, linestyle="--")
        for index, t in enumerate(threads):
            by_size = {s: m for (s, th), m in indexed.items() if th == t}
            points = _ratio_points(by_size, challenger, incumbents)
            if not points:
                continue
            crossover = found.get((t, challenger))
            color = f"C{index}"
            _series(
                ax,
                [p[0] for p in points],
                [p[1] for p in points],
                [p[2] for p in points],
                color=color,
                label=f"{_threads_label(t)}: {_verdict(crossover)}",
            )
            if crossover is not None and crossover.size is not None and crossover.overtakes:
                ax.axvline(crossover.size, color=color, linestyle=":", linewidth=1.5)
                at = next(p[1] for p in points if p[0] == crossover.size)
                ax.plot(
                    [crossover.size],
                    [at],
                    marker="*",
                    markersize=15,
                    color=color,
                    markeredgecolor="black",
                    linestyle="none",
                    zorder=5,
                )
                last = crossover.size == sizes[-1]
                ax.text(
                    crossover.size * (0.93 if last else 1.07),
                    0.03 + 0.07 * index,
                    f"{size_label(crossover.size)} ({_threads_label(t)})",
                    transform=ax.get_xaxis_transform(),
                    ha="right" if last else "left",
                    color=color,
                    fontsize=8,
                )
        _size_axis(ax, sizes)
        ax.set_title(f"{label}  (> 1: {challenger} ahead)")
        _log_y(ax)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        ax.set_ylabel("throughput ratio (challenger / incumbent, log scale)")
    return _finish(
        fig,
        run,
        "Crossovers: where one_copy overtakes two_copy, and zero_copy overtakes copying",
        "ratios of each mode's throughput against its control send where every mode of the "
        "size has one, else of Gbps; error bars: ratio range from the rounds' extremes "
        "(min/max against max/min)",
    )


#: file name -> plot function, in the reference's order, the crossover plot last
PLOTS: dict[str, Callable[[Run], Figure]] = {
    "1_throughput_vs_size.png": plot_throughput,
    "2_time_per_message_vs_threads.png": plot_time_per_message,
    "3_cache_misses_vs_size.png": plot_cache_misses,
    "4_cycles_per_byte_vs_size.png": plot_cycles_per_byte,
    "5_overall_comparison.png": plot_overall,
    "6_crossover.png": plot_crossover,
}


def write_plots(run: Run, outdir: str | Path, *, dpi: int = 110) -> list[Path]:
    """Render every plot of ``run`` into ``outdir`` (created if needed) as PNG; return the paths."""
    require_matplotlib()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, plot in PLOTS.items():
        fig = plot(run)
        path = out / name
        fig.savefig(path, dpi=dpi)
        written.append(path)
    return written
