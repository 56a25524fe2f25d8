"""plots.py: each figure checked through matplotlib's objects, and ``netcopy plot`` end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pytest_netcopy import cli
from pytest_netcopy.report import plots
from pytest_netcopy.results.runs import Run, load_run

RUNS = Path(__file__).parent / "data" / "runs"
MODES = ["two_copy", "one_copy", "zero_copy"]


@pytest.fixture(scope="module")
def pmu() -> Run:
    return load_run(RUNS / "pmu_run.json")


@pytest.fixture(scope="module")
def real() -> Run:
    """A real run on a VM without a hardware PMU (tests/data/runs/README.txt)."""
    return load_run(RUNS / "real_run.json")


def errorbars(ax: Axes) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def bar_spans(container: ErrorbarContainer) -> list[float]:
    """Lengths of the vertical error bars of one series."""
    (segments,) = [c.get_segments() for c in container.lines[2]]
    return [abs(seg[1][1] - seg[0][1]) for seg in segments]


def xdata(line: Line2D) -> list[float]:
    return [float(x) for x in np.asarray(line.get_xdata(), dtype=float)]


def visible_axes(fig: Figure) -> list[Axes]:
    return [ax for ax in fig.axes if ax.get_visible()]


@pytest.mark.parametrize(
    "plot",
    list(plots.PLOTS.values()),
    ids=list(plots.PLOTS),
)
@pytest.mark.parametrize("run_name", ["pmu", "real"])
def test_every_plot_names_the_machine_and_its_error_bars(
    plot: Callable[[Run], Figure], run_name: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(run_name)
    fig = plot(run)
    assert isinstance(fig, Figure)
    footer = fig.get_supxlabel()
    cpu = run.machine_info["netcopy"]["cpu_model"]
    kernel = run.machine_info["netcopy"]["kernel_release"]
    assert cpu in footer and f"kernel {kernel}" in footer
    assert "error bars" in footer
    assert fig.get_suptitle()
    axes = visible_axes(fig)
    assert all(ax.get_xlabel() for ax in axes)
    assert axes[0].get_ylabel()  # panels that share y with it may leave theirs out


def test_throughput_vs_size(pmu: Run) -> None:
    fig = plots.plot_throughput(pmu)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["1 thread", "2 threads"]
    assert "Gbps" in axes[0].get_ylabel()
    for ax in axes:
        assert "message size (bytes" in ax.get_xlabel()
        assert ax.get_xscale() == "log"
        series = errorbars(ax)
        assert [c.get_label() for c in series] == MODES
        for container in series:
            xs = xdata(container.lines[0])
            assert xs == [256, 1024, 4096, 16384, 65536]
            assert any(span > 0 for span in bar_spans(container))  # from the per-round data
    assert legend_labels(axes[0]) == MODES
    assert [t.get_text() for t in axes[0].get_xticklabels()] == [
        "256 B",
        "1 KiB",
        "4 KiB",
        "16 KiB",
        "64 KiB",
    ]


def test_time_per_message_vs_threads(real: Run) -> None:
    fig = plots.plot_time_per_message(real)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["256 B", "1 KiB", "4 KiB", "16 KiB", "64 KiB"]
    assert "not latency" in fig.get_suptitle()
    for ax in axes:
        assert ax.get_ylabel() == "time per message (ns, log scale)"
        assert ax.get_yscale() == "log"
        assert "threads" in ax.get_xlabel()
        assert [c.get_label() for c in errorbars(ax)] == MODES
        for container in errorbars(ax):
            assert xdata(container.lines[0]) == [1, 2]
    assert "latency" not in " ".join(ax.get_ylabel() for ax in axes)


def test_cache_misses_counted(pmu: Run) -> None:
    fig = plots.plot_cache_misses(pmu)
    llc, l1 = visible_axes(fig)
    assert "LLC-load-misses" in llc.get_title() and "L1-dcache-load-misses" in l1.get_title()
    for ax in (llc, l1):
        assert "per message" in ax.get_ylabel()
        assert ax.get_yscale() == "log"
        # totals over all rounds: plain lines, no error bar glyphs that would suggest a spread
        assert errorbars(ax) == []
        assert len(ax.get_lines()) == 6  # 3 modes x 2 thread counts
        assert "zero_copy, 2 threads" in legend_labels(ax)
    # the starved group (zero_copy 256 B 2 threads) is left out, not drawn as 0
    zero2 = next(line for line in llc.get_lines() if line.get_label() == "zero_copy, 2 threads")
    assert xdata(zero2) == [1024, 4096, 16384, 65536]
    assert "no per-round spread recorded" in fig.get_supxlabel()


def test_cache_misses_per_message_from_the_totals(pmu: Run) -> None:
    """Counter values are totals over the measured rounds: / (messages_per_round x rounds)."""
    fig = plots.plot_cache_misses(pmu)
    llc = visible_axes(fig)[0]
    line = next(line for line in llc.get_lines() if line.get_label() == "two_copy, 1 thread")
    extra = next(r.extra for r in pmu.results if r.key == ("two_copy", 4096, 1))
    total = extra["counters"]["LLC-load-misses"]["value"]
    expected = total / (extra["messages_per_round"] * len(extra["rounds"]["seconds"]))
    ys = np.asarray(line.get_ydata(), dtype=float)
    assert float(ys[xdata(line).index(4096)]) == pytest.approx(expected)


def test_cache_misses_without_a_pmu(real: Run) -> None:
    fig = plots.plot_cache_misses(real)
    for ax in visible_axes(fig):
        assert errorbars(ax) == [] and ax.get_lines() == []
        notes = [t.get_text() for t in ax.texts]
        assert any("not counted on this machine (no hardware PMU)" in n for n in notes)
        assert ax.get_xlabel() and "per message" in ax.get_ylabel()


def test_cycles_per_byte_with_a_pmu(pmu: Run) -> None:
    fig = plots.plot_cycles_per_byte(pmu)
    (ax,) = visible_axes(fig)
    assert fig.get_suptitle().startswith("CPU cycles per byte")
    assert "cycles/B" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    assert errorbars(ax) == [] and len(ax.get_lines()) == 6  # no per-round cycles recorded
    assert "no per-round spread recorded" in fig.get_supxlabel()


def test_cycles_per_byte_falls_back_to_cpu_time(real: Run) -> None:
    fig = plots.plot_cycles_per_byte(real)
    (ax,) = visible_axes(fig)
    assert "CPU ns per byte" in fig.get_suptitle()
    assert "no PMU counted cycles" in fig.get_suptitle()
    assert "(ns/B" in ax.get_ylabel() and ax.get_yscale() == "log"
    series = errorbars(ax)
    assert len(series) == 6
    assert all(any(span > 0 for span in bar_spans(c)) for c in series)  # rounds.cpu_ns_per_byte
    # the bars span exactly the rounds' extremes of rounds.cpu_ns_per_byte
    two1 = next(c for c in series if c.get_label() == "two_copy, 1 thread")
    extra = next(r.extra for r in real.results if r.key == ("two_copy", 256, 1))
    per_round = extra["rounds"]["cpu_ns_per_byte"]
    assert bar_spans(two1)[0] == pytest.approx(max(per_round) - min(per_round))
    assert "min..max of the measured rounds' CPU ns/byte" in fig.get_supxlabel()


def test_overall_comparison_at_16k(pmu: Run) -> None:
    fig = plots.plot_overall(pmu)
    (ax,) = visible_axes(fig)
    assert "16 KiB" in fig.get_suptitle()
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == MODES
    assert all(len(b.patches) == 2 for b in bars)
    heights = {b.get_label(): [p.get_height() for p in b.patches] for b in bars}
    at16k = {
        (r.mode, r.threads): r.extra["throughput_gbps"] for r in pmu.results if r.size == 16384
    }
    assert heights["one_copy"] == [at16k["one_copy", 1], at16k["one_copy", 2]]
    assert "Gbps" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 thread", "2 threads"]
    assert plots.overall_size([{"size": s} for s in (256, 8192, 65536)]) == 8192


def vertical_lines(ax: Axes) -> list[float]:
    return [
        xdata(line)[0]
        for line in ax.get_lines()
        if len(set(xdata(line))) == 1 and line.get_linestyle() == ":"
    ]


def stars(ax: Axes) -> list[float]:
    return [xdata(line)[0] for line in ax.get_lines() if line.get_marker() == "*"]


def test_crossover_plot_marks_the_sizes(pmu: Run, real: Run) -> None:
    fig = plots.plot_crossover(pmu)
    one, zero = visible_axes(fig)
    assert "one_copy / two_copy" in one.get_title()
    assert "zero_copy / better copying mode" in zero.get_title()
    assert "ratio" in one.get_ylabel() and "message size" in one.get_xlabel()
    assert one.get_yscale() == "log"
    assert legend_labels(one) == ["1 thread: overtakes at 16 KiB", "2 threads: overtakes at 64 KiB"]
    assert legend_labels(zero) == ["1 thread: never ahead", "2 threads: never ahead"]
    assert sorted(vertical_lines(one)) == sorted(stars(one)) == [16384, 65536]
    assert vertical_lines(zero) == stars(zero) == []
    assert len(errorbars(one)) == len(errorbars(zero)) == 2
    labels = [t.get_text() for t in one.texts]
    assert labels == ["16 KiB (1 thread)", "64 KiB (2 threads)"]

    fig = plots.plot_crossover(real)
    one, zero = visible_axes(fig)
    assert legend_labels(one) == ["1 thread: overtakes at 64 KiB", "2 threads: never ahead"]
    assert legend_labels(zero) == ["1 thread: never ahead", "2 threads: never ahead"]
    assert vertical_lines(one) == stars(one) == [65536] and vertical_lines(zero) == []
    assert all(any(span > 0 for span in bar_spans(c)) for c in errorbars(one))


def test_crossover_plot_draws_what_the_verdict_ranks_by(tmp_path: Path) -> None:
    # one_copy measured in fast spells (more Gbps) but slower than two_copy against
    # the control each ran beside: the line must show the ratio the verdict uses
    data = json.loads((RUNS / "real_run.json").read_text())
    against_control = {"two_copy": 1.0, "one_copy": 0.9, "zero_copy": 0.5}
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        ratio = against_control[extra["mode"]]
        if extra["mode"] == "one_copy":
            extra["throughput_gbps"] *= 3.0
            extra["rounds"]["throughput_gbps"] = [
                g * 3.0 for g in extra["rounds"]["throughput_gbps"]
            ]
        extra["throughput_vs_control"] = ratio
        rounds = len(extra["rounds"]["throughput_gbps"])
        extra["rounds"]["throughput_vs_control"] = [ratio * (1 + 0.01 * i) for i in range(rounds)]
    path = tmp_path / "with_control.json"
    path.write_text(json.dumps(data))
    one, zero = visible_axes(plots.plot_crossover(load_run(path)))
    assert legend_labels(one) == ["1 thread: never ahead", "2 threads: never ahead"]
    assert stars(one) == []
    # zero_copy against the better copying mode by the same figure: two_copy (1.0)
    for ax, low, high in ((one, 0.85, 0.95), (zero, 0.45, 0.55)):
        assert len(errorbars(ax)) == 2  # a line per thread count
        for container in errorbars(ax):
            ys = np.asarray(container.lines[0].get_ydata(), dtype=float)
            assert all(low < y < high for y in ys)
    assert "against its control" in fig_note(one)


def fig_note(ax: Axes) -> str:
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    label = fig._supxlabel  # matplotlib keeps no public getter
    assert label is not None
    return str(label.get_text())


def test_write_plots(pmu: Run, tmp_path: Path) -> None:
    written = plots.write_plots(pmu, tmp_path / "new" / "dir")
    assert [p.name for p in written] == list(plots.PLOTS)
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000


def test_netcopy_plot_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status = cli.main(["plot", str(RUNS / "real_run.json"), "-o", str(tmp_path), "--dpi", "40"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert out.splitlines() == [str(tmp_path / name) for name in plots.PLOTS]


def test_missing_matplotlib_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(plots.PlotDependencyError, match=r"pip install 'pytest-netcopy\[plot\]'"):
        plots.require_matplotlib()
