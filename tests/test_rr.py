"""Request/response end to end through pytester (real sink, real sockets), its options,
its grid and its calibration arithmetic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _support import FAST
from hdrh.histogram import HdrHistogram

from pytest_netcopy.bench.rr import transactions_per_round
from pytest_netcopy.plugin.grid import grid_id
from pytest_netcopy.results.runs import load_run
from pytest_netcopy.results.schema import benchmark_id, group_id

SWEEP = """
def test_send_path(
    netcopy, netcopy_pattern, netcopy_mode, netcopy_size, netcopy_threads, netcopy_rr_rate
):
    result = netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads)
    assert result.intact
"""
RR_KEYS = {
    "response_size", "tcp_nodelay", "transactions", "transactions_per_second",
    "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us", "mean_us", "stddev_us",
    "beyond", "histogram", "histogram_unit", "rate", "counted_transactions",
}  # fmt: skip
ROUND_KEYS = {"rr_p50_us", "rr_p99_us", "rr_transactions", "rr_transactions_per_second"}
#: a small explicit target (the default is 20,000): the e2e runs stay short
SMALL = ("--netcopy-rr-transactions=600", "--netcopy-counters=none", "--netcopy-user-rounds=0")


def run_json(pytester: pytest.Pytester, *args: str, passed: int) -> list[dict[str, Any]]:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(*FAST, *SMALL, *args, "--benchmark-json=out.json")
    result.assert_outcomes(passed=passed)
    data = json.loads((pytester.path / "out.json").read_text())
    benchmarks: list[dict[str, Any]] = data["benchmarks"]
    return benchmarks


def test_both_patterns_run_by_default_and_record_the_contract(pytester: pytest.Pytester) -> None:
    benchmarks = run_json(
        pytester, "--netcopy-sizes=4K", "--netcopy-threads=1", "--netcopy-modes=two_copy",
        "--netcopy-rr-threads=1,2", "--netcopy-response-size=128", passed=3,
    )  # fmt: skip
    by_name = {b["name"]: b for b in benchmarks}
    assert set(by_name) == {
        "test_send_path[two_copy-4096B-1t]",
        "test_send_path[rr-two_copy-4096B-1t]",
        "test_send_path[rr-two_copy-4096B-2t]",
    }
    stream = by_name["test_send_path[two_copy-4096B-1t]"]["extra_info"]
    assert stream["pattern"] == "stream" and "rr" not in stream
    for threads in (1, 2):
        bench = by_name[f"test_send_path[rr-two_copy-4096B-{threads}t]"]
        assert bench["group"] == f"rr-4096B-{threads}t"
        extra = bench["extra_info"]
        assert extra["pattern"] == "rr" and extra["threads"] == threads
        rr = extra["rr"]
        assert set(rr) == RR_KEYS
        assert rr["response_size"] == 128 and rr["tcp_nodelay"] is True
        assert rr["rate"] is None and rr["histogram_unit"] == "ns"
        assert rr["counted_transactions"] is None  # --netcopy-counters=none: no counted round
        # the measured rounds hold at least the target (2 rounds here)
        assert rr["transactions"] >= 600
        assert rr["transactions"] == extra["messages_per_round"] * 2
        assert 0 < rr["p50_us"] <= rr["p90_us"] <= rr["p99_us"] <= rr["p999_us"]
        assert rr["p999_us"] <= rr["p9999_us"] <= rr["max_us"]
        assert set(rr["beyond"]) == {"p99", "p999", "p9999"}
        assert rr["beyond"]["p99"] <= 0.01 * rr["transactions"] + 1
        # the stored histogram decodes back to the same percentiles
        histogram = HdrHistogram.decode(rr["histogram"].encode())
        assert histogram.get_total_count() == rr["transactions"]
        for key, p in (("p50_us", 50.0), ("p99_us", 99.0), ("p999_us", 99.9)):
            assert histogram.get_value_at_percentile(p) / 1000 == pytest.approx(rr[key])
        rounds = extra["rounds"]
        assert set(rounds) >= ROUND_KEYS
        for key in ROUND_KEYS:
            assert len(rounds[key]) == 2, key
        assert sum(rounds["rr_transactions"]) == rr["transactions"]
        # the stream keys stay: the request bytes, verified by the sink
        assert extra["integrity"]["ok"] is True
        assert extra["integrity"]["verified_bytes"] == rr["transactions"] * 4096
        assert "control" not in extra  # no control rounds for request/response
    # the file loads: stream and rr of the same mode, size and threads are not duplicates
    run = load_run(pytester.path / "out.json")
    assert sorted(r.variant for r in run.results) == ["rr", "rr", "stream"]


def test_the_counters_count_a_round_of_their_own_not_the_timed_ones(
    pytester: pytest.Pytester,
) -> None:
    # the later options win over SMALL's (600 transactions, no counters)
    (bench,) = run_json(
        pytester, "--netcopy-rr-transactions=2000", "--netcopy-patterns=rr",
        "--netcopy-sizes=256", "--netcopy-modes=two_copy", "--netcopy-rr-threads=2",
        "--netcopy-counters=task-clock,context-switches", passed=1,
    )  # fmt: skip
    extra = bench["extra_info"]
    rr, counters = extra["rr"], extra["counters"]
    counted = rr["counted_transactions"]
    # one round as long as the warm-up round (the round time's worth), not the 2,000
    assert 2 <= counted < rr["transactions"] / 4
    assert counted % 2 == 0  # the same count on both connections
    assert counters["task-clock"]["status"] == "ok" and counters["task-clock"]["value"] > 0
    # a blocking round trip puts the sender to sleep about once: counted over the measured
    # rounds these would be about the 2,000 transactions' worth, not the counted round's
    switches = counters["context-switches"]["value"]
    assert 0 < switches <= 4 * counted
    # the sink's figures are the counted round's too, and per byte of its requests
    assert extra["sink_counters"]["task-clock"]["value"] > 0
    cpu = counters["task-clock"]["value"] / (counted * 256)
    assert extra["cpu_ns_per_byte"] == pytest.approx(cpu)
    # no per-round counter list: the timed rounds were not counted
    assert "cpu_ns_per_byte" not in extra["rounds"]
    assert len(extra["rounds"]["rr_p50_us"]) == 2


def test_nagle_back_on_is_recorded(pytester: pytest.Pytester) -> None:
    benchmarks = run_json(
        pytester, "--netcopy-patterns=rr", "--netcopy-sizes=256", "--netcopy-modes=one_copy",
        "--netcopy-rr-threads=1", "--netcopy-rr-nodelay=off", passed=1,
    )  # fmt: skip
    extra = benchmarks[0]["extra_info"]
    assert extra["rr"]["tcp_nodelay"] is False and extra["tcp_nodelay"] is False


def test_open_loop_records_offered_and_achieved(pytester: pytest.Pytester) -> None:
    benchmarks = run_json(
        pytester, "--netcopy-patterns=rr", "--netcopy-sizes=256", "--netcopy-modes=two_copy",
        "--netcopy-rr-threads=1", "--netcopy-rr-rate=2000", "--netcopy-rr-transactions=400",
        passed=1,
    )  # fmt: skip
    bench = benchmarks[0]
    assert bench["name"] == "test_send_path[rr-two_copy-256B-1t-2000tps]"
    assert bench["group"] == "rr-256B-1t-2000tps"
    rate = bench["extra_info"]["rr"]["rate"]
    assert set(rate) == {"offered_per_connection", "achieved_per_connection",
                         "kept_schedule", "late_fraction"}  # fmt: skip
    assert rate["offered_per_connection"] == 2000.0
    assert rate["achieved_per_connection"] > 0
    assert 0 <= rate["late_fraction"] <= 1 and isinstance(rate["kept_schedule"], bool)
    assert bench["extra_info"]["rr"]["transactions"] >= 400


def test_a_corrupted_response_fails_the_benchmark(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETCOPY_SINK_TEST_CORRUPT_RESPONSE", "3:60")
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, *SMALL, "--netcopy-patterns=rr", "--netcopy-sizes=256",
        "--netcopy-modes=two_copy", "--netcopy-rr-threads=1",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*response corrupted: connection 0, sequence number 3, offset 60 (field 7, byte 4)*"]
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--netcopy-patterns", "udp", "*'udp' is not a pattern: expected stream, rr*"),
        ("--netcopy-rr-threads", "0", "*'0' is not a thread count*"),
        ("--netcopy-response-size", "100", "*100 is not a usable message size*"),
        ("--netcopy-response-size", "64,128", "*expected one response size*"),
        ("--netcopy-rr-rate", "-5", "*'-5' is not a rate*"),
        ("--netcopy-rr-nodelay", "maybe", "*expected on or off*"),
        ("--netcopy-rr-transactions", "0", "*"),
    ],
)
def test_a_bad_value_is_a_one_line_usage_error(
    pytester: pytest.Pytester, option: str, value: str, message: str
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(f"{option}={value}", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}='{value}': {message}"])
    assert "Traceback" not in result.stderr.str()


def test_ids_and_groups() -> None:
    assert benchmark_id("two_copy", 4096, 1, pattern="rr") == "rr-two_copy-4096B-1t"
    assert benchmark_id("two_copy", 4096, 1, pattern="rr", rate=1000.0) == (
        "rr-two_copy-4096B-1t-1000tps"
    )
    assert group_id(4096, 1, pattern="rr", rate=1000.0) == "rr-4096B-1t-1000tps"
    assert benchmark_id("two_copy", 4096, 1) == "two_copy-4096B-1t"  # streams unchanged
    assert grid_id("one_copy", 64, 4, "rr", 2.5) == "rr-one_copy-64B-4t-2.5tps"


@pytest.mark.parametrize(
    ("by_time", "minimum", "rounds", "threads", "expected"),
    [
        (1300, 20_000, 10, 1, 2000),  # the tail needs more than the round length gives
        (1300, 20_000, 10, 4, 1300),  # 4 x 10 x 1300 = 52,000 already
        (100, 20_000, 10, 3, 667),  # rounded up: 3 x 10 x 667 >= 20,000
        (5000, 20_000, 10, 1, 5000),
        (0, 1, 10, 8, 1),
    ],
)
def test_calibration_reaches_the_transaction_target(
    by_time: int, minimum: int, rounds: int, threads: int, expected: int
) -> None:
    count = transactions_per_round(by_time, minimum, rounds, threads)
    assert count == expected
    assert count * rounds * threads >= minimum
