"""What every ``netcopy plot`` figure shares: the figure, its axes, lines, colours, notes.

matplotlib is an optional extra (``pip install 'pytest-netcopy[plot]'``) and
is imported only inside the functions here, so the package imports without
it; a missing matplotlib raises :class:`PlotDependencyError`, whose message
says how to install it. Figures are built with ``matplotlib.figure.Figure``
on the Agg canvas (no pyplot, no global figure registry, nothing to close).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_netcopy.report.describe import describe_machine
from pytest_netcopy.report.figures import Extra, counter_statuses
from pytest_netcopy.report.latency import stream_results
from pytest_netcopy.results.runs import Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = (
    "netcopy plot needs matplotlib, an optional extra: "
    "pip install 'pytest-netcopy[plot]'  (or: pip install matplotlib)"
)
ERRORBAR_NOTE = "error bars: min..max of the measured rounds around the median"
MODE_COLORS = {"two_copy": "tab:blue", "one_copy": "tab:orange", "zero_copy": "tab:green"}
OTHER_COLORS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


class PlotDependencyError(RuntimeError):
    """matplotlib is not installed; the message says how to install it."""


def require_matplotlib() -> None:
    """Raise :class:`PlotDependencyError` (with the install command) when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotDependencyError(INSTALL_HINT) from exc


def new_figure(
    nrows: int, ncols: int, width: float, height: float, *, sharey: bool = False
) -> tuple[Figure, list[Axes]]:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, list(grid.flat)


def panel_grid(panels: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` panels of ``width`` x ``height`` inches, at most 3 a row (and
    0.8 in for the title); the grid's spare axes are removed."""
    ncols = min(3, panels)
    nrows = -(-panels // ncols)
    fig, axes = new_figure(nrows, ncols, width * ncols, height * nrows + 0.8)
    for ax in axes[panels:]:
        fig.delaxes(ax)
    return fig, axes[:panels]


def finish(fig: Figure, run: Run, title: str, note: str = ERRORBAR_NOTE) -> Figure:
    """Title the figure and name under it the machine, the run file and the error bars."""
    fig.suptitle(title, fontsize=13)
    fig.supxlabel(
        f"{describe_machine(run.machine_info)}  ·  {run.path.name}\n{note}",
        fontsize=8,
        color="0.3",
    )
    return fig


def extras(run: Run) -> list[Extra]:
    """The run's stream results (the request/response ones have plots of their own)."""
    return stream_results([result.extra for result in run.results])


def mode_color(mode: str, modes: Sequence[str]) -> str:
    if mode in MODE_COLORS:
        return MODE_COLORS[mode]
    others = [m for m in modes if m not in MODE_COLORS]
    return OTHER_COLORS[others.index(mode) % len(OTHER_COLORS)] if mode in others else "black"


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def threads_label(threads: int) -> str:
    return f"{threads} thread" + ("" if threads == 1 else "s")


def size_axis(ax: Axes, sizes: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlim(sizes[0] / 1.4, sizes[-1] * 1.4)
    ax.set_xticks(list(sizes), [size_label(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("message size (bytes, log scale)")


def errors(value: float, samples: Sequence[float]) -> tuple[float, float]:
    """(below, above) the reported value: to the smallest and largest round."""
    if not samples:
        return (0.0, 0.0)
    return (max(0.0, value - min(samples)), max(0.0, max(samples) - value))


def series(
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


def log_y(ax: Axes) -> None:
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


def why_not_counted(results: Sequence[Extra], event: str, run: Run) -> str:
    statuses = counter_statuses(results, event)
    if not statuses:
        return "the run has no counter data"
    if statuses == ["not supported"] and run.netcopy_machine.get("pmus") == []:
        return "no hardware PMU"
    return "status: " + ", ".join(statuses)


def not_counted(ax: Axes, what: str, why: str) -> None:
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
