"""Issue 16's reports: the latency table, the limited-by line, the CSV's columns, the latency
plots, the gate's rr_p50_us / rr_p99_us, and a real request/response run rendered."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from _support import FAST
from hdrh.histogram import HdrHistogram

from pytest_netcopy import cli
from pytest_netcopy.gate.catalog import check_rules
from pytest_netcopy.gate.compare import compare_runs
from pytest_netcopy.gate.policy import DEFAULT_RULES
from pytest_netcopy.gate.row import IMPROVEMENT, NO_REGRESSION, REGRESSION
from pytest_netcopy.gate.rules import parse_rules
from pytest_netcopy.report.csvout import COLUMNS, LATENCY_TCP_COLUMNS, write_csv
from pytest_netcopy.report.latency import FASTEST_MARK, FEW_MARK, latency_table
from pytest_netcopy.report.tables import modes_table
from pytest_netcopy.report.tcpinfo import limited_by_cell, limited_by_line
from pytest_netcopy.results.runs import Result, Run, load_run

RUNS = Path(__file__).parent / "data" / "runs"


def rr_extra(
    mode: str,
    p50: float,
    *,
    size: int = 4096,
    threads: int = 1,
    transactions: int = 20_000,
    beyond: tuple[int, int, int] = (200, 20, 2),
    rate: dict[str, Any] | None = None,
    rounds: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """A request/response result as the contract lays it out (no histogram)."""
    return {
        "netcopy_schema": 1,
        "pattern": "rr",
        "mode": mode,
        "size": size,
        "threads": threads,
        "throughput_gbps": 1.0,
        "integrity": {"ok": True, "verified_bytes": 1},
        "rounds": rounds or {},
        "rr": {
            "response_size": 64,
            "tcp_nodelay": True,
            "transactions": transactions,
            "transactions_per_second": 25_000.0,
            "p50_us": p50,
            "p90_us": p50 * 1.5,
            "p99_us": p50 * 2,
            "p999_us": p50 * 3,
            "p9999_us": p50 * 4,
            "max_us": p50 * 5,
            "mean_us": p50 * 1.1,
            "stddev_us": p50 / 3,
            "beyond": dict(zip(("p99", "p999", "p9999"), beyond, strict=True)),
            "histogram": "",
            "histogram_unit": "ns",
            "rate": rate,
        },
    }


def stream_extra(mode: str, tcp_info: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "mode": mode,
        "size": 4096,
        "threads": 1,
        "throughput_gbps": 10.0,
        "messages_per_second": 3e5,
        "ns_per_message": 3000.0,
        "integrity": {"ok": True, "verified_bytes": 1},
    }
    if tcp_info is not None:
        extra["tcp_info"] = tcp_info
    return extra


def plain_rows(table: str) -> list[str]:
    return [line for line in table.splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# the latency table


def test_latency_table_puts_the_modes_side_by_side_and_marks_the_lowest_p50() -> None:
    results = [rr_extra("zero_copy", 50.0), rr_extra("two_copy", 40.0), rr_extra("one_copy", 45.0)]
    table = latency_table(results, fmt="plain")
    header, *body = plain_rows(table)
    assert header.split() == ["size", "threads", "load", "two_copy", "one_copy", "zero_copy"]
    p50 = next(line for line in body if "p50 µs" in line)
    assert p50.split()[-4:] == [FASTEST_MARK, "40.0", "45.0", "50.0"]
    assert [line.split()[0] for line in body[1:4]] == ["p99", "p99.9", "transactions/s"]


def test_fewer_than_1000_samples_beyond_a_percentile_are_flagged() -> None:
    # p99 has 2,000 samples beyond it (not flagged), p99.9 only 200 (flagged)
    results = [rr_extra("two_copy", 40.0, transactions=200_000, beyond=(2000, 200, 20))]
    lines = {line.split("µs")[0].split()[-1]: line for line in plain_rows(latency_table(results))}
    assert FEW_MARK not in lines["p99"] and lines["p99"].rstrip(" │").endswith("80.0")
    assert lines["p99.9"].rstrip(" │").endswith(f"120 {FEW_MARK}")
    # the median of 1,500 transactions has 750 beyond it: flagged too
    small = latency_table([rr_extra("two_copy", 40.0, transactions=1500)], fmt="plain")
    assert f"40.0 {FEW_MARK}" in small


def test_open_loop_shows_offered_and_achieved_and_a_missed_schedule() -> None:
    kept = {"offered_per_connection": 1000.0, "achieved_per_connection": 999.0}
    kept |= {"kept_schedule": True, "late_fraction": 0.0}
    missed = kept | {"achieved_per_connection": 640.0, "kept_schedule": False, "late_fraction": 0.4}
    results = [
        rr_extra("two_copy", 40.0, rate=kept),
        rr_extra("one_copy", 41.0, rate=missed),
        rr_extra("two_copy", 39.0),  # closed loop: a row of its own
    ]
    rows = plain_rows(latency_table(results, fmt="plain"))
    assert any("closed loop" in row for row in rows)
    assert any("1,000/s per conn" in row for row in rows)
    schedule = next(row for row in rows if "schedule" in row)
    assert schedule.split()[-4:] == ["kept", "MISSED", "(40%", "late)"]
    achieved = next(row for row in rows if "achieved/s" in row)
    assert achieved.split()[-2:] == ["999", "640"]


def test_streams_and_rr_of_the_same_key_stay_apart_in_the_report(tmp_path: Path) -> None:
    run = load_run(RUNS / "rr_run.json")
    extras = [r.extra for r in run.results]
    assert {r.variant for r in run.results} == {"stream", "rr", "rr-1000tps"}
    table = modes_table([e for e in extras if e.get("pattern") != "rr"], fmt="plain")
    assert "p50" not in table and "limited by" in table


# ---------------------------------------------------------------------------
# limited by


def test_limited_by_line_and_cell() -> None:
    shares = {"receive_window": 0.25, "send_buffer": 0.05, "sender": 0.7}
    extra = stream_extra("two_copy", {"limited_by": shares, "missing": {}})
    assert limited_by_line(extra) == (
        "limited by: receive window 25% / send buffer 5% / the sender itself 70%"
    )
    assert limited_by_cell(extra) == "25 / 5 / 70"


def test_limited_by_null_says_why_never_zero() -> None:
    why = "kernel returned 104 bytes; tcpi_busy_time needs Linux 4.10+"
    extra = stream_extra("two_copy", {"limited_by": None, "missing": {"limited_by": why}})
    assert limited_by_line(extra) == f"limited by: not known ({why})"
    table = modes_table([extra, stream_extra("one_copy")], fmt="plain")
    assert "limited by" in table and f"not known ({why})" in table
    # no tcp_info anywhere (a run made before it): no line at all
    assert limited_by_line(stream_extra("two_copy")) is None
    assert "limited by" not in modes_table([stream_extra("two_copy")], fmt="plain")


# ---------------------------------------------------------------------------
# CSV


def read_csv(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = io.StringIO()
    write_csv(results, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_csv_appends_latency_and_tcp_info_columns() -> None:
    shares = {"receive_window": 0.1, "send_buffer": 0.0, "sender": 0.9}
    info = {"rtt_us": 31.5, "limited_by": shares, "missing": {}}
    stream = stream_extra("two_copy", info) | {"rounds": {}}
    late = {"offered_per_connection": 500.0, "achieved_per_connection": 400.0}
    late |= {"kept_schedule": False, "late_fraction": 0.2}
    rows = read_csv([rr_extra("two_copy", 40.0, rate=late), stream])
    header = list(rows[0])
    assert tuple(header) == COLUMNS + LATENCY_TCP_COLUMNS  # ours appended, the rest in order
    first, second = rows
    assert (first["Pattern"], first["p50_us"], first["TCP_RTT_us"]) == ("stream", "", "31.5")
    assert first["Limited_Sender_pct"] == "90"
    assert (second["Pattern"], second["p50_us"], second["p99_us"]) == ("rr", "40", "80")
    assert (second["TransactionsPerSecond"], second["Transactions"]) == ("25000", "20000")
    assert (second["OfferedRate_per_connection"], second["KeptSchedule"]) == ("500", "false")
    assert second["Limited_Sender_pct"] == ""  # no tcp_info: empty, never 0


def test_csv_of_a_stream_run_without_tcp_info_keeps_its_columns() -> None:
    rows = read_csv([stream_extra("two_copy") | {"rounds": {}}])
    assert tuple(rows[0]) == COLUMNS


# ---------------------------------------------------------------------------
# plots


def encoded_histogram(values_us: list[float]) -> str:
    histogram = HdrHistogram(1000, 60_000_000_000, 3)
    for value in values_us:
        histogram.record_value(int(value * 1000))
    text: str = histogram.encode().decode("ascii")
    return text


def test_latency_plots_are_written_and_decode_the_stored_histogram(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from pytest_netcopy.report import plots
    from pytest_netcopy.report.plots_latency import distribution, percentile_label

    rng = random.Random(7)
    values = [rng.lognormvariate(3.5, 0.4) for _ in range(5000)]
    extra = rr_extra("two_copy", 40.0)
    extra["rr"]["histogram"] = encoded_histogram(values)
    xs, ys = distribution(extra, points=301)
    decoded = HdrHistogram.decode(extra["rr"]["histogram"])
    assert xs[0] == 1.0 and xs[-1] == pytest.approx(5000)
    at_99 = min(range(len(xs)), key=lambda i: abs(xs[i] - 100))
    expected = decoded.get_value_at_percentile(100 * (1 - 1 / xs[at_99])) / 1000
    assert ys[at_99] == pytest.approx(expected)
    assert ys == sorted(ys)  # a distribution never falls
    assert [percentile_label(d) for d in range(5)] == ["0%", "90%", "99%", "99.9%", "99.99%"]
    written = plots.write_plots(load_run(RUNS / "rr_run.json"), tmp_path)
    names = [p.name for p in written]
    assert names[-2:] == ["7_latency_vs_size.png", "8_latency_distribution.png"]
    assert all(p.stat().st_size > 10_000 for p in written)
    # a stream-only run gets exactly the plots it always got
    assert [p.name for p in plots.write_plots(load_run(RUNS / "real_run.json"), tmp_path)] == list(
        plots.PLOTS
    )


# ---------------------------------------------------------------------------
# the gate


def gate_result(extra: dict[str, Any]) -> Result:
    return Result(name=str(extra["mode"]), group=None, extra=extra, stats={})


def gate_run(*extras: dict[str, Any]) -> Run:
    results = [gate_result(e) for e in extras]
    return Run(Path("r.json"), {}, {}, None, results)


P99 = [80.0, 82.0, 79.0, 81.0, 80.5, 79.5, 81.5, 80.2, 79.8, 80.8]


def rr_rounds(p99: list[float]) -> dict[str, Any]:
    return rr_extra("two_copy", 40.0, rounds={"rr_p50_us": [40.0] * 10, "rr_p99_us": p99})


def test_an_rr_rule_parses_and_names_a_known_metric() -> None:
    rules = parse_rules("rr_p99_us:+30% rr_p50_us:+20%@two_copy")
    check_rules(rules)
    assert [(r.metric, r.direction) for r in rules] == [("rr_p99_us", 1), ("rr_p50_us", 1)]
    assert not any(r.metric.startswith("rr") for r in DEFAULT_RULES)  # the lead decides


def test_rr_p99_regression_is_caught_and_an_unchanged_pair_passes() -> None:
    rules = parse_rules("rr_p99_us:+30%")
    base = gate_run(rr_rounds(P99))
    worse = compare_runs(base, gate_run(rr_rounds([v * 1.6 for v in P99])), rules)
    (row,) = worse.rows
    assert (row.benchmark, row.verdict) == ("rr-two_copy-4096B-1t", REGRESSION)
    assert worse.failed
    same = compare_runs(base, gate_run(rr_rounds(list(reversed(P99)))), rules)
    (row,) = same.rows
    assert row.verdict == NO_REGRESSION and not same.failed
    better = compare_runs(base, gate_run(rr_rounds([v * 0.5 for v in P99])), rules)
    assert better.rows[0].verdict == IMPROVEMENT


def test_rules_judge_only_the_results_that_have_their_metric() -> None:
    stream = {"netcopy_schema": 1, "mode": "two_copy", "size": 4096, "threads": 1}
    stream |= {"pattern": "stream", "throughput_vs_control": 0.9, "rounds": {}}
    rr = rr_rounds(P99)
    rules = parse_rules("rr_p99_us:+30% throughput_vs_control:-15%")
    outcome = compare_runs(gate_run(stream, rr), gate_run(stream, rr), rules)
    judged = {(row.benchmark, row.metric) for row in outcome.rows}
    # the same (mode, size, threads) twice, matched by pattern: neither stands in for the other
    assert judged == {
        ("two_copy-4096B-1t", "throughput_vs_control"),
        ("rr-two_copy-4096B-1t", "rr_p99_us"),
    }
    assert outcome.compared == 2
    assert any(
        "not applicable" in note and "throughput_vs_control" in note for note in outcome.notes
    )


def test_an_rr_run_under_the_default_rules_judges_nothing_and_says_so() -> None:
    rr = rr_rounds(P99)
    outcome = compare_runs(gate_run(rr), gate_run(rr), DEFAULT_RULES)
    assert outcome.rows == [] and outcome.empty  # not a pass: nothing was judged
    assert outcome.passed_benchmarks == []
    assert "rr_p99_us:+30%" in "\n".join(outcome.notes)


def test_a_figure_an_rr_result_stores_as_null_is_not_applicable_not_undecided() -> None:
    """A real RR result records syscalls_per_message with a null total (not counted): the
    default syscall rule must not leave a row "undecided" for it on every gated run."""
    rr = rr_rounds(P99) | {"syscalls_per_message": {"total": None, "not_counted": "rr"}}
    outcome = compare_runs(gate_run(rr), gate_run(rr), parse_rules("syscalls_per_message:+10%"))
    assert outcome.rows == []
    assert any("not applicable" in n and "syscalls_per_message" in n for n in outcome.notes)
    counted = rr | {"syscalls_per_message": {"total": 2.0}}
    (row,) = compare_runs(gate_run(counted), gate_run(counted), DEFAULT_RULES).rows
    assert row.metric == "syscalls_per_message"  # a value: judged as for a stream


def test_rr_metric_without_rounds_falls_back_to_the_benchmark_percentile() -> None:
    old, new = rr_extra("two_copy", 40.0), rr_extra("two_copy", 60.0)
    (row,) = compare_runs(gate_run(old), gate_run(new), parse_rules("rr_p50_us:+30%")).rows
    assert (row.baseline, row.current, row.verdict) == (40.0, 60.0, REGRESSION)


# ---------------------------------------------------------------------------
# a real request/response run, rendered


RR_SWEEP = """
def test_send_path(
    netcopy, netcopy_pattern, netcopy_mode, netcopy_size, netcopy_threads, netcopy_rr_rate
):
    assert netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads).intact
"""


def test_a_real_run_renders(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """A small real session (both patterns), then report, csv and the fixture's schema."""
    pytester.makepyfile(test_sweep=RR_SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-rr-transactions=600", "--netcopy-counters=none",
        "--netcopy-user-rounds=0", "--netcopy-sizes=4K", "--netcopy-threads=1",
        "--netcopy-rr-threads=1", "--netcopy-modes=two_copy,one_copy",
        "--benchmark-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*request/response latency by size x threads*", "*p99.9 µs*"])
    out_json = str(pytester.path / "out.json")
    assert cli.main(["report", out_json, "--format", "plain"]) == 0
    report = capsys.readouterr().out
    assert "Request/response latency by size x threads:" in report
    assert "closed loop" in report and FEW_MARK in report  # 1,200 transactions: a thin tail
    assert cli.main(["csv", out_json]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    rr_rows = [row for row in rows if row["Pattern"] == "rr"]
    assert len(rr_rows) == 2 and all(float(row["p50_us"]) > 0 for row in rr_rows)
    # the hand-made fixture has the real run's keys
    real = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    fixture = json.loads((RUNS / "rr_run.json").read_text())["benchmarks"]
    for pattern in ("stream", "rr"):
        want = next(b["extra_info"] for b in real if b["extra_info"]["pattern"] == pattern)
        have = next(b["extra_info"] for b in fixture if b["extra_info"]["pattern"] == pattern)
        if pattern == "rr":
            assert set(have["rr"]) == set(want["rr"])
            assert set(have["rounds"]) >= {k for k in want["rounds"] if k.startswith("rr_")}
        if "tcp_info" in want:
            assert set(have["tcp_info"]) == set(want["tcp_info"])
