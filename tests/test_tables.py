"""report tables and crossovers: the modes table, the runs table and the crossover sizes."""

from __future__ import annotations

import copy
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tabulate import tabulate_formats

from pytest_netcopy.report.crossovers import Crossover, crossovers, render_crossovers
from pytest_netcopy.report.figures import round_spread
from pytest_netcopy.report.formats import check_table_format
from pytest_netcopy.report.metrics import COUNTER_KEYS
from pytest_netcopy.report.ranking import order_modes
from pytest_netcopy.report.tables import modes_table, runs_table, table_legend
from pytest_netcopy.results.runs import load_run

RUNS = Path(__file__).parent / "data" / "runs"


def extras(name: str) -> list[dict[str, Any]]:
    return [dict(r.extra) for r in load_run(RUNS / name).results]


@pytest.fixture(scope="module")
def pmu() -> list[dict[str, Any]]:
    return extras("pmu_run.json")


@pytest.fixture(scope="module")
def real() -> list[dict[str, Any]]:
    """A real run on a VM without a hardware PMU (tests/data/runs/README.txt)."""
    return extras("real_run.json")


@pytest.fixture(scope="module")
def nodelay() -> list[dict[str, Any]]:
    return extras("real_run_nodelay.json")


def result(mode: str, size: int, threads: int, gbps: float, **more: Any) -> dict[str, Any]:
    """A minimal extra_info as the live plugin would pass it (no counters)."""
    extra: dict[str, Any] = {
        "mode": mode,
        "size": size,
        "threads": threads,
        "throughput_gbps": gbps,
        "messages_per_second": gbps * 1e9 / 8 / size,
        "ns_per_message": size * 8 / gbps,
        "integrity": {"ok": True, "verified_bytes": 1000},
    }
    if mode == "zero_copy":
        extra["zerocopy"] = {"sends": 10, "completions": 10, "copied": 10, "enobufs": 0}
    extra.update(more)
    return extra


def strip_counters(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same run as made before the counters issue: none of its keys."""
    drop = {*COUNTER_KEYS, "counters", "sink_counters", "instructions_per_byte", "ipc"}
    return [{k: v for k, v in r.items() if k not in drop} for r in results]


def body_rows(table: str) -> list[list[str]]:
    """Cells of the plain-format table, one list per text line."""
    return [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()[1:] if line.strip()]


# ---------------------------------------------------------------------------
# modes_table


def test_modes_side_by_side_in_reference_order_then_alphabetical() -> None:
    results = [
        result(mode, 4096, 1, gbps)
        for mode, gbps in (("zz_mine", 1), ("zero_copy", 2), ("aa_mine", 3), ("one_copy", 4))
    ] + [result("two_copy", 4096, 1, 5)]
    header = modes_table(results, fmt="plain").splitlines()[0].split()
    assert header == ["size", "threads", "two_copy", "one_copy", "zero_copy", "aa_mine", "zz_mine"]
    assert order_modes(["b", "zero_copy", "a", "two_copy"]) == ["two_copy", "zero_copy", "a", "b"]


def test_rows_sorted_by_size_then_threads() -> None:
    results = [
        result("two_copy", size, threads, 1.0)
        for size, threads in ((65536, 1), (256, 2), (4096, 1), (256, 1), (4096, 2))
    ]
    rows = [r for r in body_rows(modes_table(results, fmt="plain")) if r[0].endswith(" B")]
    assert [(r[0], r[1]) for r in rows] == [
        ("256 B", "1"),
        ("256 B", "2"),
        ("4096 B", "1"),
        ("4096 B", "2"),
        ("65536 B", "1"),
    ]


def test_cell_lines_and_fastest_marked() -> None:
    results = [
        result("two_copy", 16384, 1, 30.0),
        result("one_copy", 16384, 1, 32.5),
        result("zero_copy", 16384, 1, 14.0),
    ]
    table = modes_table(results, fmt="plain")
    rows = {r[0] if not r[0].endswith(" B") else r[2]: r[-3:] for r in body_rows(table)}
    assert rows["Gbps"] == ["30.00", "* 32.50", "14.00"]
    assert rows["ns per message"] == ["4,369", "4,033", "9,362"]
    assert rows["messages/s"] == ["229 k", "248 k", "107 k"]
    # zero_copy only: the other modes' cells are blank
    assert rows["zero-copy copied %"][-2:] == ["zero-copy copied %", "100.0"]
    assert rows["integrity"] == ["intact", "intact", "intact"]
    assert "* fastest mode" in table


def test_round_spread_marks_benchmarks_whose_rounds_did_not_hold_still() -> None:
    steady = [30.0, 30.3, 29.7, 30.1, 29.9]
    step = [40.0, 40.2, 39.8, 31.0, 31.2]  # the machine changed speed mid-benchmark
    results = [
        result("two_copy", 16384, 1, 30.0, rounds={"throughput_gbps": steady}),
        result("one_copy", 16384, 1, 39.8, rounds={"throughput_gbps": step}),
        result("zero_copy", 16384, 1, 14.0, rounds={"throughput_gbps": [14.0]}),
    ]
    assert round_spread(results[0]) == pytest.approx(100 * statistics.pstdev(steady) / 30.0)
    assert round_spread(results[1]) == pytest.approx(
        100 * statistics.pstdev(step) / statistics.mean(step)
    )
    assert round_spread(results[2]) is None  # one round: no spread
    table = modes_table(results, fmt="plain")
    spread = next(r for r in body_rows(table) if "round spread %" in r)
    assert spread[-3:] == ["0.7", "! 12.0", "n/a"]
    assert "! over 5%: a round stalled or the machine changed speed" in table
    # without per-round data (older or hand-made results), no line and no legend
    bare = modes_table([result("two_copy", 16384, 1, 30.0)], fmt="plain")
    assert "round spread" not in bare


@given(st.lists(st.floats(0.1, 100.0), min_size=2, max_size=20), st.floats(0.01, 100.0))
def test_round_spread_does_not_depend_on_the_unit(gbps: list[float], scale: float) -> None:
    one = round_spread({"rounds": {"throughput_gbps": gbps}})
    scaled = round_spread({"rounds": {"throughput_gbps": [g * scale for g in gbps]}})
    assert one is not None and scaled is not None
    assert scaled == pytest.approx(one, rel=1e-6, abs=1e-9)


def test_the_ratio_to_the_control_is_a_line_only_when_recorded() -> None:
    results = [
        result("two_copy", 65536, 1, 42.0, throughput_vs_control=0.862),
        result("one_copy", 65536, 1, 40.0, throughput_vs_control=0.8),
    ]
    table = modes_table(results, fmt="plain")
    rows = {r[0] if not r[0].endswith(" B") else r[2]: r[-2:] for r in body_rows(table)}
    assert rows["Gbps vs control"] == ["0.86", "0.80"]
    assert "Gbps vs control = Gbps / the control send's (bare_send" in table
    older = modes_table([result("two_copy", 65536, 1, 42.0)], fmt="plain")
    assert "vs control" not in older


def test_modes_measured_in_different_spells_are_ranked_against_the_control() -> None:
    # one_copy ran while the machine was fast, two_copy while it was slow: 62 vs 43 Gbps,
    # yet both ran at 0.89 of the same control send (a real sweep here, 2026-11-24)
    spell = [
        result("two_copy", 65536, 1, 42.7, throughput_vs_control=0.893),
        result("one_copy", 65536, 1, 61.9, throughput_vs_control=0.887),
        result("two_copy", 16384, 1, 40.0, throughput_vs_control=0.95),
        result("one_copy", 16384, 1, 30.0, throughput_vs_control=0.90),
    ]
    table = modes_table(spell, fmt="plain")
    rows = [r for r in body_rows(table) if "Gbps" in r]
    assert rows[-1][-2:] == ["* 42.70", "61.90"]  # 65536 B: two_copy, by the ratio
    assert "highest Gbps vs control where every mode has it" in table
    (found,) = crossovers(spell)
    assert found.describe() == "one_copy never overtakes two_copy (up to 65536 B)"
    # without the ratio on every mode, Gbps decides
    mixed = [spell[0], {k: v for k, v in spell[1].items() if k != "throughput_vs_control"}]
    assert "* 61.90" in modes_table(mixed, fmt="plain")
    assert (
        crossovers(mixed)[0].describe()
        == "one_copy ahead of two_copy at 65536 B (the only size measured)"
    )


def test_never_called_latency() -> None:
    results = [result("two_copy", 256, 1, 2.0), result("one_copy", 256, 1, 1.5)]
    for fmt in ("plain", "github", "simple_grid"):
        text = modes_table(results, fmt=fmt)
        assert "ns per message" in text
        # the only mention is the legend saying what it is not
        assert text.lower().count("latency") == text.lower().count("not latency") == 1


def test_copied_percent_and_integrity_failures() -> None:
    zero = result("zero_copy", 4096, 1, 3.0)
    zero["zerocopy"] = {"sends": 200, "completions": 200, "copied": 50, "enobufs": 0}
    broken = result("two_copy", 4096, 1, 9.0, integrity={"ok": False, "verified_bytes": 0})
    no_completions = result("zero_copy", 256, 1, 1.0)
    no_completions["zerocopy"] = {"sends": 0, "completions": 0, "copied": 0}
    rows = body_rows(modes_table([zero, broken, no_completions], fmt="plain"))
    copied = [r for r in rows if "zero-copy copied %" in r]
    assert [r[-1] for r in copied] == ["n/a", "25.0"]
    integrity = [r for r in rows if "integrity" in r]
    assert integrity[1][-2:] == ["CORRUPT", "intact"]


def test_counter_lines_from_the_fixture(pmu: list[dict[str, Any]]) -> None:
    table = modes_table(pmu, fmt="plain")
    for label in ("sender CPU ns/byte", "sink CPU ns/byte", "syscalls/message", "cycles/byte"):
        assert label in table
    # the group that multiplexing starved (zero_copy 256 B, 2 threads) says n/a, not 0
    rows = body_rows(table)
    start = next(i for i, r in enumerate(rows) if r[:2] == ["256 B", "2"])
    cycles = next(r for r in rows[start:] if r[0] == "cycles/byte")
    assert cycles[-1] == "n/a"
    assert all(v != "n/a" for v in cycles[1:-1])


def test_counters_auto_leaves_out_what_was_never_counted(real: list[dict[str, Any]]) -> None:
    table = modes_table(real, fmt="plain")
    assert "cycles/byte (cycles: not supported)" in table  # the note says why
    assert not any(r[0] == "cycles/byte" for r in body_rows(table))
    assert "sender CPU ns/byte" in table


def test_counters_true_shows_na_never_zero(real: list[dict[str, Any]]) -> None:
    rows = body_rows(modes_table(real, fmt="plain", counters=True))
    cycles = [r for r in rows if r[0] == "cycles/byte"]
    assert len(cycles) == 10
    assert all(cell == "n/a" for r in cycles for cell in r[1:])


def test_counters_false_and_runs_without_counter_data(pmu: list[dict[str, Any]]) -> None:
    for table in (modes_table(pmu, counters=False), modes_table(strip_counters(pmu))):
        assert "ns/byte" not in table and "cycles/byte" not in table
        assert "not counted" not in table  # no counters issue data: nothing to explain


@pytest.mark.parametrize("fmt", ["simple_grid", "plain", "github", "grid", "simple"])
def test_fits_a_terminal(pmu: list[dict[str, Any]], fmt: str) -> None:
    table = modes_table(pmu, fmt=fmt, legend=False)
    assert max(len(line) for line in table.splitlines()) <= 100


@pytest.mark.parametrize("fmt", tabulate_formats)
def test_every_tabulate_format_renders(pmu: list[dict[str, Any]], fmt: str) -> None:
    table = modes_table(pmu[:6], fmt=fmt).replace("\\_", "_")  # latex escapes "_"
    for mode in ("two_copy", "one_copy", "zero_copy"):
        assert mode in table
    assert "ns per message" in table


def test_formats_without_multiline_cells_get_a_row_per_metric() -> None:
    results = [result("two_copy", 256, 1, 2.0), result("one_copy", 256, 1, 1.0)]
    tsv = modes_table(results, fmt="tsv", legend=False).splitlines()
    assert len(tsv) == 1 + 4  # header, Gbps, messages/s, ns per message, integrity
    assert tsv[1].split("\t")[2].strip() == "Gbps"
    assert tsv[2].split("\t")[0].strip() == ""  # the key only on a group's first row


def test_unknown_format_and_empty_input() -> None:
    with pytest.raises(ValueError, match="unknown table format 'nope'"):
        modes_table([result("two_copy", 256, 1, 1.0)], fmt="nope")
    assert modes_table([]) == "(no netcopy results)"


def test_one_table_format_check_with_each_callers_text() -> None:
    check_table_format("github")
    check_table_format("github", option="--format")
    with pytest.raises(ValueError) as plain:
        check_table_format("nope")
    assert str(plain.value) == (
        f"unknown table format 'nope'; choose one of {', '.join(tabulate_formats)}"
    )
    with pytest.raises(ValueError) as option:
        check_table_format("nope", option="--format")
    choices = ", ".join(sorted(tabulate_formats))
    assert str(option.value) == f"--format 'nope' is not a table format; choose one of {choices}"


def test_legend_can_be_placed_by_the_caller() -> None:
    results = [result("two_copy", 256, 1, 2.0), result("zero_copy", 256, 1, 1.0)]
    full = modes_table(results)
    bare = modes_table(results, legend=False)
    assert full == "\n".join([bare, *table_legend(results)])


# ---------------------------------------------------------------------------
# runs_table


def test_runs_side_by_side_with_the_change() -> None:
    first = [result("two_copy", 4096, 1, 10.0), result("one_copy", 4096, 1, 8.0)]
    second = [result("two_copy", 4096, 1, 12.5), result("zero_copy", 4096, 1, 4.0)]
    table = runs_table([("a", first), ("b", second)], fmt="plain")
    assert table.splitlines()[0].split() == [
        "size",
        "threads",
        "mode",
        "run",
        "1",
        "run",
        "2",
        "2",
        "vs",
        "1",
    ]
    rows = body_rows(table)
    gbps = [r for r in rows if "Gbps" in r]
    assert gbps[0][-3:] == ["* 10.00", "* 12.50", "+25.0%"]
    assert gbps[1][-3:] == ["8.00", "not run", "n/a"]  # one_copy only in run 1
    assert gbps[2][-3:] == ["not run", "4.00", "n/a"]
    ns = next(r for r in rows if "ns per message" in r)
    assert ns[-1] == "-20.0%"
    assert "change: of the median-round figures against run 1" in table


def test_a_change_that_rounds_to_zero_has_no_minus_sign() -> None:
    first = [result("two_copy", 4096, 1, 10.0, cpu_ns_per_byte=1.0)]
    second = [result("two_copy", 4096, 1, 9.9996, cpu_ns_per_byte=0.9996)]
    table = runs_table([("a", first), ("b", second)], fmt="plain")
    changes = [r[-1] for r in body_rows(table) if r[-1].endswith("%")]
    assert changes == ["+0.0%"] * 4  # Gbps, messages/s, ns per message, sender CPU ns/byte
    assert "-0.0" not in table


def test_runs_table_integrity_change() -> None:
    good = [result("two_copy", 256, 1, 1.0)]
    bad = [result("two_copy", 256, 1, 1.0, integrity={"ok": False, "verified_bytes": 0})]
    rows = body_rows(runs_table([("a", good), ("b", bad)], fmt="plain"))
    assert next(r for r in rows if "integrity" in r)[-3:] == ["intact", "CORRUPT", "now CORRUPT"]


def test_runs_table_of_the_fixtures(pmu: list[dict[str, Any]], real: list[dict[str, Any]]) -> None:
    table = runs_table([("pmu", pmu), ("real", real)], fmt="simple_grid", legend=False)
    assert table.count("two_copy") == 10
    assert max(len(line) for line in table.splitlines()) <= 100


# ---------------------------------------------------------------------------
# crossovers


def test_fixture_crossovers_as_the_summary_prints_them(
    pmu: list[dict[str, Any]], real: list[dict[str, Any]], nodelay: list[dict[str, Any]]
) -> None:
    assert render_crossovers(crossovers(pmu)).splitlines() == [
        "threads=1: one_copy overtakes two_copy at 16384 B; "
        "zero_copy never overtakes copying (up to 65536 B)",
        "threads=2: one_copy overtakes two_copy at 65536 B (also ahead at 4096 B, behind in "
        "between); zero_copy never overtakes copying (up to 65536 B)",
    ]
    # the real runs: one_copy ahead only at 64 KiB with one sender thread (54.2 vs 51.9
    # Gbps; 53.3 vs 50.0 with Nagle off), zero_copy far behind everywhere on loopback
    expected_real = [
        "threads=1: one_copy overtakes two_copy at 65536 B; "
        "zero_copy never overtakes copying (up to 65536 B)",
        "threads=2: one_copy never overtakes two_copy (up to 65536 B); "
        "zero_copy never overtakes copying (up to 65536 B)",
    ]
    assert render_crossovers(crossovers(real)).splitlines() == expected_real
    assert render_crossovers(crossovers(nodelay)).splitlines() == expected_real


def test_real_run_is_sane(real: list[dict[str, Any]], nodelay: list[dict[str, Any]]) -> None:
    """The committed real runs are what their README says: 30 intact benchmarks each."""
    for run in (real, nodelay):
        assert len(run) == 30
        assert all(r["integrity"]["ok"] for r in run)
        at_64k = [
            r["throughput_gbps"] for r in run if r["size"] == 65536 and r["mode"] != "zero_copy"
        ]
        assert min(at_64k) > 10  # tens of Gbps on loopback
    assert {r["tcp_nodelay"] for r in real} == {False}
    assert {r["tcp_nodelay"] for r in nodelay} == {True}


def sweep(
    gbps: dict[str, Sequence[float]], sizes: Sequence[int] = (256, 1024, 4096)
) -> list[dict[str, Any]]:
    return [
        result(mode, size, 1, value)
        for mode, values in gbps.items()
        for size, value in zip(sizes, values, strict=True)
    ]


def test_zero_copy_against_the_better_copying_mode() -> None:
    # zero_copy beats two_copy at 4096 but not one_copy: it has not overtaken copying
    found = crossovers(
        sweep({"two_copy": [3, 2, 1], "one_copy": [2, 3, 5], "zero_copy": [1, 1, 4]})
    )
    zero = next(c for c in found if c.challenger == "zero_copy")
    assert zero.incumbent == "copying"
    assert zero.ahead == (False, False, False)
    assert zero.describe() == "zero_copy never overtakes copying (up to 4096 B)"
    one = next(c for c in found if c.challenger == "one_copy")
    assert (one.size, one.overtakes, one.first_ahead) == (1024, True, 1024)


def test_only_two_copy_to_compare_with() -> None:
    found = crossovers(sweep({"two_copy": [3, 2, 1], "zero_copy": [1, 3, 4]}))
    assert [(c.challenger, c.incumbent, c.size) for c in found] == [("zero_copy", "two_copy", 1024)]
    assert render_crossovers(found) == "threads=1: zero_copy overtakes two_copy at 1024 B"


def test_ahead_everywhere_ties_and_nothing_to_compare() -> None:
    ahead = crossovers(sweep({"two_copy": [1, 1, 1], "one_copy": [2, 2, 2]}))
    assert ahead[0].describe() == "one_copy ahead of two_copy at every size (256..4096 B)"
    assert not ahead[0].overtakes
    tie = crossovers(sweep({"two_copy": [1, 1, 1], "one_copy": [1, 1, 1]}))
    assert tie[0].size is None  # equal is not ahead
    assert crossovers(sweep({"two_copy": [1, 2, 3]})) == []
    assert render_crossovers([]) == ""


@given(st.lists(st.booleans(), min_size=1, max_size=8))
def test_crossover_size_is_where_the_lead_starts_for_good(ahead: list[bool]) -> None:
    sizes = tuple(256 << i for i in range(len(ahead)))
    c = Crossover(1, "one_copy", "two_copy", sizes, tuple(ahead))
    if c.size is None:
        assert not ahead[-1]
    else:
        i = sizes.index(c.size)
        assert all(ahead[i:])
        assert i == 0 or not ahead[i - 1]
    assert (c.first_ahead is None) == (not any(ahead))
    text = c.describe()
    assert text.startswith("one_copy ")
    assert "two_copy" in text
    if c.overtakes:
        assert f"overtakes two_copy at {c.size} B" in text
    else:
        assert f"{sizes[-1]} B" in text


@given(
    st.lists(
        st.tuples(st.floats(0.1, 100), st.floats(0.1, 100), st.floats(0.1, 100)),
        min_size=1,
        max_size=6,
    )
)
def test_crossovers_agree_with_the_numbers(rows: list[tuple[float, float, float]]) -> None:
    sizes = [256 << i for i in range(len(rows))]
    results = [
        result(mode, size, 2, gbps)
        for size, row in zip(sizes, rows, strict=True)
        for mode, gbps in zip(("two_copy", "one_copy", "zero_copy"), row, strict=True)
    ]
    one, zero = crossovers(copy.deepcopy(results))
    assert one.ahead == tuple(r[1] > r[0] for r in rows)
    assert zero.ahead == tuple(r[2] > max(r[0], r[1]) for r in rows)
    assert one.threads == zero.threads == 2


# ---------------------------------------------------------------------------
# failed benchmarks and the single-mode legend (issue 13)


def test_a_failed_benchmark_reads_failed_not_not_run() -> None:
    results = [result("two_copy", 256, 1, 2.0), result("one_copy", 256, 1, 1.0)]
    failed = {("zero_copy", 256, 1), ("two_copy", 4096, 1)}
    table = modes_table([*results, result("zero_copy", 1024, 1, 1.0)], fmt="plain", failed=failed)
    rows = {r[0]: r for r in body_rows(table) if r[0].endswith(" B")}
    assert rows["256 B"][-1] == "failed"  # zero_copy failed at 256 B
    assert rows["1024 B"][3:5] == ["not run", "not run"]  # never tried there
    # a row where every mode failed is still shown, with what failed
    assert rows["4096 B"][3:] == ["failed", "not run", "not run"]
    assert "not run" not in modes_table(results, fmt="plain", failed={("one_copy", 256, 1)})


def test_the_fastest_mode_legend_only_where_modes_are_compared() -> None:
    single = [result("two_copy", 256, 1, 2.0), result("two_copy", 4096, 2, 3.0)]
    for lines in (
        modes_table(single).splitlines(),
        table_legend(single),
        runs_table([("a", single), ("b", single)]).splitlines(),
        table_legend(single, several_runs=True),
    ):
        assert not any("fastest mode" in line for line in lines)
    several = [*single, result("one_copy", 256, 1, 1.0)]
    assert any("fastest mode" in line for line in modes_table(several).splitlines())
    assert any("fastest mode" in line for line in table_legend(several, several_runs=True))
