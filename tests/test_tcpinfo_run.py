"""TCP_INFO through a real pool and a real run: each round carries it, the JSON has the
contract's keys and per-round lists, and an old kernel's short struct (asked for with a
104-byte buffer, as such a kernel would return) gives nulls with reasons, never zeros."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.results.runs import load_run
from pytest_netcopy.results.tcpinfo import FIGURE_KEYS
from pytest_netcopy.results.validate import problem
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pool import SenderPool

CONTRACT = {"rtt_us", "rttvar_us", "snd_cwnd", "delivery_rate_bps", "retrans", "busy_us",
            "rwnd_limited_us", "sndbuf_limited_us", "limited_by", "missing"}  # fmt: skip
RUN = ("--netcopy-patterns=stream", "--netcopy-sizes=65536", "--netcopy-threads=2",
       "--netcopy-modes=two_copy", "--netcopy-counters=none", "--netcopy-user-rounds=0",
       "--netcopy-rounds=3", "--netcopy-round-time=0.02")  # fmt: skip


def test_each_round_of_a_real_pool_carries_tcp_info() -> None:
    sink = SinkProcess(timeout=20)
    sink.ensure_running()
    try:
        with SenderPool(sink, builtin_registry().get("two_copy"), 65536, 2, timeout=20) as pool:
            got = pool.run_round(50)
            pool.finish_stream()
    finally:
        sink.close()
    info = got.tcp_info
    assert info is not None
    assert (got.retransmits, got.retransmits_not_counted) == (info.retrans, None)
    assert info.rtt_us is not None and info.rtt_us > 0
    assert info.snd_cwnd is not None and info.snd_cwnd > 0
    if "bytes_sent" not in info.missing:  # Linux 4.19+: every payload byte left, and more
        assert info.bytes_sent is not None and info.bytes_sent >= got.bytes


def run_json(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(*FAST, *RUN, *args, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    load_run(pytester.path / "out.json")  # the schema's checks accept it
    data = json.loads((pytester.path / "out.json").read_text())
    extra: dict[str, Any] = data["benchmarks"][0]["extra_info"]
    return extra


def test_a_run_records_tcp_info_per_benchmark_and_per_round(pytester: pytest.Pytester) -> None:
    extra = run_json(pytester)
    info = extra["tcp_info"]
    assert set(info) >= CONTRACT
    assert info["retrans"] == extra["retransmits"]  # one reading behind both
    per_round = extra["rounds"]["tcp_info"]
    assert len(per_round) == len(extra["rounds"]["seconds"]) == 3
    assert all(set(r) == set(FIGURE_KEYS) for r in per_round)
    for key in FIGURE_KEYS:  # a value, or null with the reason: never both, never neither
        assert (info[key] is None) == (key in info["missing"]), key
        if info[key] is not None:
            assert info[key] == pytest.approx(
                sum(r[key] for r in per_round)
                if key in ("retrans", "busy_us", "rwnd_limited_us", "sndbuf_limited_us",
                           "bytes_sent", "bytes_retrans")
                else sum(r[key] for r in per_round) / 3
            )  # fmt: skip
    assert info["rtt_us"] > 0 and info["snd_cwnd"] > 0
    shares = info["limited_by"]
    if shares is None:
        assert info["missing"]["limited_by"]
    else:
        assert set(shares) == {"receive_window", "send_buffer", "sender"}
        assert sum(shares.values()) == pytest.approx(1.0) or shares["sender"] == 0.0


OLD_KERNEL = """
import pytest_netcopy.transport.tcpinfo as tcpinfo

tcpinfo.BUFFER = 104  # what a 3.x kernel returns: up to tcpi_total_retrans
"""


def test_an_old_kernels_short_struct_records_nulls_with_reasons(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(OLD_KERNEL)
    extra = run_json(pytester)
    info = extra["tcp_info"]
    assert info["rtt_us"] > 0 and isinstance(info["retrans"], int)
    assert extra["retransmits"] == info["retrans"]  # still counted: offset 100 is there
    for key in ("delivery_rate_bps", "busy_us", "rwnd_limited_us", "sndbuf_limited_us",
                "min_rtt_us", "bytes_sent", "bytes_retrans"):  # fmt: skip
        assert info[key] is None, key
        assert info["missing"][key].startswith("kernel returned 104 bytes; tcpi_"), key
        assert all(r[key] is None for r in extra["rounds"]["tcp_info"]), key
    assert info["missing"]["delivery_rate_bps"].endswith("tcpi_delivery_rate needs Linux 4.9+")
    assert info["missing"]["busy_us"].endswith("tcpi_busy_time needs Linux 4.10+")
    assert info["limited_by"] is None and "needs Linux 4.10+" in info["missing"]["limited_by"]
    assert info["busy_fraction"] is None


def extra_with(info: Any, per_round: Any) -> dict[str, Any]:
    """A minimal valid result carrying ``tcp_info`` and ``rounds.tcp_info``."""
    return {
        "netcopy_schema": 1, "mode": "two_copy", "size": 4096, "threads": 1,
        "messages_per_round": 1, "bytes_per_round": 4096, "throughput_gbps": 1.0,
        "throughput_gbps_per_connection": 1.0, "ns_per_message": 1.0,
        "integrity": {"ok": True, "verified_bytes": 4096},
        "placement": {"sender_cpus": [], "sink_cpus": [], "pinned": False},
        "rounds": {"seconds": [0.1], "tcp_info": per_round}, "tcp_info": info,
    }  # fmt: skip


def test_the_schema_checks_take_tcp_info_and_refuse_bad_values() -> None:
    good = {"rtt_us": 20.5, "busy_us": None, "missing": {"busy_us": "kernel returned 168 bytes"},
            "limited_by": {"receive_window": 0.5, "send_buffer": 0.0, "sender": 0.5}}  # fmt: skip
    assert problem(extra_with(good, [{"rtt_us": 20.5, "busy_us": None}])) is None
    bad_round = problem(extra_with(good, [{"rtt_us": "fast"}, 3]))
    assert bad_round is not None and bad_round.startswith("rounds.tcp_info=")
    bad_info = problem(extra_with({**good, "rtt_us": math.inf}, []))
    assert bad_info is not None and bad_info.startswith("tcp_info=")
    bad_shares = problem(extra_with({**good, "limited_by": {"sender": [1]}}, []))
    assert bad_shares is not None and bad_shares.startswith("tcp_info=")


RR_SWEEP = """
def test_send_path(netcopy, netcopy_pattern, netcopy_mode, netcopy_size, netcopy_threads):
    assert netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads).intact
"""


def test_a_request_response_run_records_tcp_info_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=RR_SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-patterns=rr", "--netcopy-sizes=256", "--netcopy-modes=two_copy",
        "--netcopy-rr-threads=1", "--netcopy-rr-transactions=600", "--netcopy-counters=none",
        "--netcopy-user-rounds=0", "--benchmark-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    extra = json.loads((pytester.path / "out.json").read_text())["benchmarks"][0]["extra_info"]
    assert extra["pattern"] == "rr"
    info = extra["tcp_info"]
    assert set(info) >= CONTRACT and info["rtt_us"] > 0
    assert len(extra["rounds"]["tcp_info"]) == len(extra["rounds"]["seconds"])
