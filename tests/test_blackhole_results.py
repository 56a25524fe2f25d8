"""Transmit-only results (issue 15) as the readers see them, from fake results: where
zero-copy's sender CPU per byte starts to pay, the zero-copy accounting, and that
validate, the report, the CSV, the plot and the gate take ``integrity.ok: null`` without
calling it intact or corrupt."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_netcopy.gate.compare import compare_runs
from pytest_netcopy.gate.policy import DEFAULT_RULES
from pytest_netcopy.report.crossovers import (
    NEVER_PAID,
    cpu_crossovers,
    crossovers,
    render_cpu_crossovers,
)
from pytest_netcopy.report.csvout import write_csv
from pytest_netcopy.report.document import render_report
from pytest_netcopy.results.record import (
    KERNEL_COPIES_NOTE,
    TRANSMIT_ONLY_NOTE,
    integrity_entry,
    zerocopy_entries,
)
from pytest_netcopy.results.runs import load_run

REAL = Path(__file__).parent / "data" / "runs" / "real_run.json"


def result(mode: str, size: int, cpu: float | None, threads: int = 1) -> dict[str, Any]:
    zc = mode == "udp_zero_copy"
    return {
        "mode": mode,
        "size": size,
        "threads": threads,
        "target": "blackhole",
        "cpu_ns_per_byte": cpu,
        "integrity": integrity_entry("blackhole", 0),
        **(zerocopy_entries({"sends": 9, "completions": 9, "copied": 0}) if zc else {}),
    }


def sweep(pairs: dict[int, tuple[float, float]], threads: int = 1) -> list[dict[str, Any]]:
    """size -> (udp_zero_copy's CPU ns/byte, udp_one_copy's)."""
    return [
        result(mode, size, cpu, threads)
        for size, both in pairs.items()
        for mode, cpu in zip(("udp_zero_copy", "udp_one_copy"), both, strict=True)
    ]


@pytest.mark.parametrize(
    ("pairs", "verdict", "pays"),
    [
        ({1400: (2.0, 1.0), 16384: (0.3, 0.4), 60000: (0.1, 0.2)},
         "zero-copy starts to pay at 16384 B", 16384),
        ({1400: (2.0, 1.0), 16384: (0.5, 0.4), 60000: (0.3, 0.2)},
         f"{NEVER_PAID} (up to 60000 B)", None),
        ({1400: (0.9, 1.0), 16384: (0.3, 0.4)},
         "zero-copy pays at every size (1400..16384 B)", 1400),
        # cheaper in the middle only: it does not stay below, so it never paid
        ({1400: (2.0, 1.0), 4096: (0.5, 0.6), 16384: (0.5, 0.4)},
         f"{NEVER_PAID} (cheaper at 4096 B, not at 16384 B)", None),
        # cheaper at the smallest, dearer in between, cheaper from 60000 B on
        ({1400: (0.9, 1.0), 4096: (0.7, 0.6), 60000: (0.1, 0.2)},
         "zero-copy starts to pay at 60000 B", 60000),
    ],
)  # fmt: skip
def test_where_zero_copy_pays(
    pairs: dict[int, tuple[float, float]], verdict: str, pays: int | None
) -> None:
    (found,) = cpu_crossovers(sweep(pairs))
    assert found.size == pays
    assert found.describe() == verdict
    assert found.values == tuple(pairs.values())
    assert found.challenger == "udp_zero_copy" and found.incumbent == "udp_one_copy"


def test_the_lines_show_both_figures_per_size_and_per_thread_count() -> None:
    results = sweep({1400: (2.0, 1.0), 60000: (0.1, 0.2)}) + sweep({1400: (0.5, 1.0)}, 2)
    lines = render_cpu_crossovers(results)
    assert lines == [
        "transmit only (blackhole target, 6 results): nothing receives, payload not verified; "
        "sender CPU ns/byte, udp_zero_copy vs udp_one_copy:",
        "threads=1: 1400 B 2.000 vs 1.000 (2.00x), 60000 B 0.100 vs 0.200 (0.50x); "
        "zero-copy starts to pay at 60000 B",
        "threads=2: 1400 B 0.500 vs 1.000 (0.50x); zero-copy pays at every size (1400..1400 B)",
    ]


def test_only_transmit_only_results_count_and_the_speed_crossovers_ignore_them() -> None:
    sink = [dict(r, target="sink", integrity={"ok": True}) for r in sweep({4096: (0.1, 0.2)})]
    assert cpu_crossovers(sink) == [] and render_cpu_crossovers(sink) == []
    assert crossovers(sweep({4096: (0.1, 0.2)})) == []  # udp_* are not the TCP comparisons


def test_without_sender_cpu_there_is_nothing_to_compare() -> None:
    lines = render_cpu_crossovers(sweep({4096: (None, 0.2)}))  # type: ignore[dict-item]
    assert lines[1] == (
        "no size with both udp_zero_copy and udp_one_copy and their sender CPU (task-clock): "
        "nothing to compare"
    )


def test_a_kernel_that_copied_gets_the_honest_line() -> None:
    results = sweep({4096: (0.3, 0.2)})
    results[0].update(zerocopy_entries({"sends": 9, "completions": 9, "copied": 9}))
    assert render_cpu_crossovers(results)[-1] == KERNEL_COPIES_NOTE
    assert KERNEL_COPIES_NOTE not in render_cpu_crossovers(sweep({4096: (0.3, 0.2)}))


@pytest.mark.parametrize(
    ("totals", "fraction", "effective"),
    [
        ({"completions": 10, "copied": 0}, 0.0, True),
        ({"completions": 10, "copied": 10}, 1.0, False),  # TCP zero_copy on loopback
        ({"completions": 8, "copied": 2}, 0.25, False),
        ({"completions": 0, "copied": 0}, None, False),  # nothing came back: not effective
    ],
)
def test_zero_copy_accounting(
    totals: dict[str, int], fraction: float | None, effective: bool
) -> None:
    entries = zerocopy_entries({"sends": 10, **totals})
    assert entries["zerocopy"]["copied_fraction"] == fraction
    assert entries["zerocopy_effective"] is effective
    assert entries["zerocopy"]["sends"] == 10


# ---------------------------------------------------------------------------
# a saved run of transmit-only results, through every reader


@pytest.fixture
def transmit_run(tmp_path: Path) -> Path:
    """real_run.json's 1-thread one_copy and zero_copy as the blackhole target's UDP modes."""
    data = json.loads(REAL.read_text(encoding="utf-8"))
    kept = []
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        if extra["threads"] != 1 or extra["mode"] not in ("one_copy", "zero_copy"):
            continue
        bench = copy.deepcopy(bench)
        extra = bench["extra_info"]
        extra["mode"] = "udp_" + extra["mode"]
        extra["target"] = "blackhole"
        extra["integrity"] = integrity_entry("blackhole", 0)
        if "zerocopy" in extra:
            z = extra["zerocopy"]
            extra.update(zerocopy_entries({**z, "copied": 0}))
        bench["name"] = bench["name"].replace("one_copy", "udp_one_copy")
        bench["name"] = bench["name"].replace("[zero_copy", "[udp_zero_copy")
        kept.append(bench)
    data["benchmarks"] = kept
    path = tmp_path / "blackhole.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_validate_loads_transmit_only_results(transmit_run: Path) -> None:
    run = load_run(transmit_run)
    assert {r.extra["integrity"]["ok"] for r in run.results} == {None}
    assert {r.extra["integrity"]["note"] for r in run.results} == {TRANSMIT_ONLY_NOTE}


def test_report_and_csv_say_transmit_only_never_intact_or_corrupt(transmit_run: Path) -> None:
    text = render_report([load_run(transmit_run)])
    assert "transmit only" in text
    assert "intact" not in text and "CORRUPT" not in text and "INTEGRITY FAILURE" not in text
    assert "Transmit only (blackhole target): where zero-copy's sender CPU pays" in text
    out = io.StringIO()
    write_csv([r.extra for r in load_run(transmit_run).results], out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows and {row["Integrity"] for row in rows} == {"transmit only"}
    assert {row["VerifiedBytes"] for row in rows} == {"0"}


def test_the_gate_compares_transmit_only_runs(transmit_run: Path) -> None:
    run = load_run(transmit_run)
    outcome = compare_runs(run, run, DEFAULT_RULES)
    assert outcome.compared == len(run.results) > 0
    assert outcome.rows and not outcome.regressions


def test_the_crossover_plot_adds_the_cpu_panel(transmit_run: Path) -> None:
    pytest.importorskip("matplotlib", reason="needs matplotlib (pip install '.[plot]')")
    from pytest_netcopy.report.plots_crossover import plot_crossover

    run = load_run(transmit_run)
    fig = plot_crossover(run)
    (ax,) = [a for a in fig.axes if a.get_visible()]  # only transmit-only results: one panel
    title = ax.get_title()
    assert title.startswith("transmit only: sender CPU ns/byte")
    (found,) = cpu_crossovers([r.extra for r in run.results])
    assert found.describe() in title
    labels = sorted(ax.get_legend_handles_labels()[1])
    assert labels == ["udp_one_copy, 1 thread", "udp_zero_copy, 1 thread"]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == (1 if found.size is not None and found.overtakes else 0)
