"""The latency plots of ``netcopy plot``, for a run with request/response results.

* :func:`plot_latency_vs_size`: p50 and p99 round trips against the request size, a line
  of each per mode, a panel per thread count and load;
* :func:`plot_latency_distribution`: per size, the whole percentile distribution decoded
  from the benchmark's stored HdrHistogram, in HdrHistogram's style: latency against
  1/(1-p) on a log axis labelled 90%, 99%, 99.9%, ... so the tail gets the room.

Decoding needs the ``hdrhistogram`` package (a dependency); it is imported lazily.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.report.latency import LatencyKey, latency_key, rr_figures, rr_results
from pytest_netcopy.report.plotting import (
    finish,
    log_y,
    mode_color,
    new_figure,
    panel_grid,
    series,
    size_axis,
    size_label,
    threads_label,
)
from pytest_netcopy.report.ranking import order_modes
from pytest_netcopy.results.runs import Run
from pytest_netcopy.results.schema import as_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LATENCY_NOTE = "round trip of each transaction; p50 solid, p99 dashed (all transactions of a run)"
DISTRIBUTION_NOTE = (
    "percentiles decoded from each benchmark's stored HdrHistogram; x: 1/(1-p), so each "
    "step right is one more nine"
)
#: the percentile lines: (key of ``rr``, label, line style)
LINES = (("p50_us", "p50", "-"), ("p99_us", "p99", "--"))
#: points per distribution curve
CURVE_POINTS = 200
UNIT_DIVISOR = {"ns": 1000.0, "us": 1.0, "µs": 1.0, "ms": 0.001}


def _load_label(rate: float | None) -> str:
    return "closed loop" if rate is None else f"open loop {rate:g}/s per connection"


def plot_latency_vs_size(run: Run) -> Figure:
    """p50 and p99 vs request size: a panel per (threads, load), a line of each per mode."""
    results = rr_results([r.extra for r in run.results])
    panels = sorted({(k[1], k[2]) for k in map(latency_key, results)}, key=_panel_order)
    sizes = sorted({int(e["size"]) for e in results})
    modes = order_modes(str(e["mode"]) for e in results)
    fig, axes = new_figure(1, len(panels), 5.0 * len(panels) + 0.6, 4.8, sharey=True)
    for ax, (threads, rate) in zip(axes, panels, strict=True):
        here = [e for e in results if latency_key(e)[1:] == (threads, rate)]
        for mode in modes:
            for key, label, style in LINES:
                points = sorted(
                    (int(e["size"]), v)
                    for e in here
                    if e["mode"] == mode and (v := as_float(rr_figures(e).get(key))) is not None
                )
                series(
                    ax,
                    [p[0] for p in points],
                    [p[1] for p in points],
                    None,
                    color=mode_color(mode, modes),
                    linestyle=style,
                    label=f"{mode} {label}",
                )
        size_axis(ax, sizes)
        ax.set_xlabel("request size (bytes, log scale)")
        log_y(ax)
        ax.set_title(f"{threads_label(threads)}, {_load_label(rate)}")
    axes[0].set_ylabel("round trip (µs, log scale)")
    axes[0].legend(fontsize=8)
    return finish(fig, run, "Request/response latency vs request size", LATENCY_NOTE)


def _panel_order(panel: tuple[int, float | None]) -> tuple[int, float]:
    return (panel[0], panel[1] or 0.0)


def decode_histogram(extra: Extra) -> Any:
    """The benchmark's HdrHistogram, decoded from ``rr.histogram``; None where absent."""
    text = rr_figures(extra).get("histogram")
    if not isinstance(text, str) or not text:
        return None
    histogram = importlib.import_module("hdrh.histogram")
    return histogram.HdrHistogram.decode(text)


def distribution(extra: Extra, points: int = CURVE_POINTS) -> tuple[list[float], list[float]]:
    """(1/(1-p), latency in µs) along the benchmark's percentile distribution, up to the
    percentile of its last transaction; empty where no histogram was stored."""
    histogram = decode_histogram(extra)
    if histogram is None or histogram.get_total_count() < 1:
        return [], []
    unit = str(rr_figures(extra).get("histogram_unit") or "ns")
    divisor = UNIT_DIVISOR.get(unit, 1000.0)
    top = math.log10(max(float(histogram.get_total_count()), 2.0))
    xs = [10 ** (top * i / (points - 1)) for i in range(points)]
    ys = [histogram.get_value_at_percentile(100.0 * (1.0 - 1.0 / x)) / divisor for x in xs]
    return xs, ys


def nines_axis(ax: Axes, top: float) -> None:
    """A log x axis of 1/(1-p), its decades labelled as percentiles: 0%, 90%, 99%, 99.9%."""
    from matplotlib.ticker import FixedLocator, NullLocator

    decades = list(range(0, max(1, math.ceil(math.log10(max(top, 10.0)))) + 1))
    ax.set_xscale("log")
    ax.set_xlim(1, 10 ** decades[-1])
    ax.xaxis.set_major_locator(FixedLocator([10.0**d for d in decades]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([percentile_label(d) for d in decades], fontsize=8)
    ax.set_xlabel("percentile (log scale of 1/(1-p))")


def percentile_label(decade: int) -> str:
    """``0%``, ``90%``, ``99%``, ``99.9%``, ... for 1/(1-p) = 10**decade."""
    if decade == 0:
        return "0%"
    return f"{100.0 - 10.0 ** (2 - decade):.{max(0, decade - 2)}f}%"


def _distribution_panel(ax: Axes, results: Sequence[Extra], modes: Sequence[str]) -> int:
    """A curve per (mode, threads, load) of one size; returns the curves drawn."""
    keys: list[LatencyKey] = sorted(
        {latency_key(e) for e in results}, key=lambda k: (k[1], k[2] or 0.0)
    )
    drawn, top = 0, 10.0
    styles = ("-", "--", ":", "-.")
    for index, key in enumerate(keys):
        for mode in modes:
            extra = next((e for e in results if latency_key(e) == key and e["mode"] == mode), None)
            xs, ys = ([], []) if extra is None else distribution(extra)
            if not xs:
                continue
            label = f"{mode}, {threads_label(key[1])}"
            if key[2] is not None:
                label += f", {key[2]:g}/s"
            ax.plot(xs, ys, color=mode_color(mode, modes), linestyle=styles[index % 4], label=label)
            top, drawn = max(top, xs[-1]), drawn + 1
    nines_axis(ax, top)
    return drawn


def plot_latency_distribution(run: Run) -> Figure:
    """The percentile distribution per request size (HdrHistogram style), a curve per mode."""
    results = rr_results([r.extra for r in run.results])
    sizes = sorted({int(e["size"]) for e in results})
    modes = order_modes(str(e["mode"]) for e in results)
    fig, axes = panel_grid(len(sizes), 5.0, 3.8)
    for ax, size in zip(axes, sizes, strict=False):
        drawn = _distribution_panel(ax, [e for e in results if int(e["size"]) == size], modes)
        ax.set_title(size_label(size))
        ax.set_ylabel("round trip (µs, log scale)")
        if drawn:
            log_y(ax)
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no histogram stored", transform=ax.transAxes, ha="center")
    return finish(fig, run, "Request/response latency by percentile", DISTRIBUTION_NOTE)
