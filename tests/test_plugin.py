"""The plugin end to end, through pytester in subprocesses (real sockets, a real sink)."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.bench.settings import Settings
from pytest_netcopy.plugin.grid import grid_id
from pytest_netcopy.plugin.options import BENCH_SPECS, OPTIONS, SPECS

EXTRA_KEYS = {
    "netcopy_schema", "mode", "size", "threads", "messages_per_round", "bytes_per_round",
    "throughput_gbps", "throughput_gbps_per_connection", "ns_per_message", "rounds",
    "integrity", "placement", "sink_recv_buffer", "steal_ms",
}  # fmt: skip


def pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_sweep_writes_trustworthy_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=256,4K", "--netcopy-threads=1,2", "--benchmark-json=out.json"
    )
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        [
            "*netcopy: throughput by size x threads*",
            "*two_copy*one_copy*zero_copy*",
            "*4096 B*",
            "*ns per message*",
        ]
    )
    # time per message is inverse throughput: "latency" may appear only to say so
    assert re.search(r"(?<!not )latency", result.stdout.str().lower()) is None
    data = json.loads((pytester.path / "out.json").read_text())
    names = sorted(b["name"] for b in data["benchmarks"])
    assert "test_send_path[two_copy-4096B-2t]" in names
    assert "test_send_path[zero_copy-256B-1t]" in names
    assert len(names) == 12
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        assert set(extra) >= EXTRA_KEYS
        assert bench["group"] == f"{extra['size']}B-{extra['threads']}t"
        assert bench["name"].endswith(f"[{extra['mode']}-{extra['size']}B-{extra['threads']}t]")
        assert extra["netcopy_schema"] == 1
        assert extra["bytes_per_round"] == extra["messages_per_round"] * extra["size"]
        assert extra["messages_per_round"] == extra["messages_per_connection"] * extra["threads"]
        assert len(extra["rounds"]["seconds"]) == 2
        # hypervisor steal per round, from this machine's /proc/stat (0 on bare metal)
        steal = extra["rounds"]["steal_ms"]
        assert len(steal) == 2 and all(s is not None and s >= 0 for s in steal)
        assert extra["steal_ms"] == sum(steal)
        # the untimed user-time pass: 6 rounds by default, a figure only when sampled
        user = extra["user_time"]
        per_pass = extra["pass_rounds"]["user_cpu_ns_per_byte"]
        if user["status"] == "ok":
            assert user["rounds"] == len(per_pass) == 6
            assert extra["user_cpu_ns_per_byte"] == pytest.approx(statistics.median(per_pass))
        else:  # an account that may not sample: said why, no figure
            assert user["reason"] and extra["user_cpu_ns_per_byte"] is None and per_pass == []
        assert extra["integrity"] == {"ok": True, "verified_bytes": 2 * extra["bytes_per_round"]}
        assert extra["throughput_gbps"] > 0
        per_conn = extra["throughput_gbps_per_connection"] * extra["threads"]
        assert per_conn == pytest.approx(extra["throughput_gbps"])
        assert extra["tcp_nodelay"] is False
        assert extra["tcp_congestion"]  # the algorithm in effect, whatever the machine allows
        placement = extra["placement"]
        assert set(placement) == {"sender_cpus", "sink_cpus", "pinned"}
        if len(os.sched_getaffinity(0)) >= 2:
            assert placement["pinned"] is True
            assert not set(placement["sender_cpus"]) & set(placement["sink_cpus"])
        # the control: one round before each measured round and one after the last
        control = extra["control"]
        assert control["mode"] == "bare_send"
        assert len(control["rounds"]["throughput_gbps"]) == 3
        assert control["verified_bytes"] == 3 * control["messages_per_round"] * extra["size"]
        ratios = extra["rounds"]["throughput_vs_control"]
        assert len(ratios) == 2
        gbps, ctl = extra["rounds"]["throughput_gbps"], control["rounds"]["throughput_gbps"]
        for i, ratio in enumerate(ratios):  # the median of the control rounds nearby
            assert ratio == pytest.approx(gbps[i] / statistics.median(ctl[max(0, i - 1) : i + 3]))
        assert extra["throughput_vs_control"] == pytest.approx(statistics.median(ratios))
        if extra["cpu_ns_per_byte"] is not None:  # task-clock counted (not where perf is off)
            assert extra["cpu_vs_control"] > 0
        else:
            assert extra["cpu_vs_control"] is None
        if extra["mode"] == "zero_copy":
            zc = extra["zerocopy"]
            assert zc["sends"] >= 2 * extra["messages_per_round"]
            assert zc["completions"] == zc["sends"]
            assert 0 <= zc["copied"] <= zc["completions"]
            assert zc["enobufs"] >= 0
        else:
            assert "zerocopy" not in extra
    facts = data["machine_info"]["netcopy"]
    for key in ("kernel_release", "cpu_count", "net.core.optmem_max", "net.ipv4.tcp_wmem",
                "net.ipv4.tcp_rmem", "kernel.perf_event_paranoid"):  # fmt: skip
        assert key in facts


def test_plugin_does_nothing_to_a_suite_that_does_not_use_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_other="""
        import os
        from pathlib import Path

        def children():
            me = str(os.getpid())
            out = []
            for pid in os.listdir("/proc"):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cmd = Path(f"/proc/{pid}/cmdline").read_text()
                except OSError:
                    continue
                if stat[1] == me:
                    out.append(cmd)
            return out

        def test_plain():
            assert 1 + 1 == 2

        def test_timed(benchmark):
            benchmark(sum, range(100))

        def test_no_sink_was_started():
            assert not [c for c in children() if "pytest_netcopy" in c]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error",
                                           "--benchmark-json=out.json")  # fmt: skip
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert "netcopy: throughput" not in out and "Nagle" not in out
    data = json.loads((pytester.path / "out.json").read_text())
    assert "netcopy" not in data["machine_info"]
    assert all(not b["extra_info"] for b in data["benchmarks"])


def test_parametrize_ids_and_groups_follow_the_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "--netcopy-sizes=64K,1024", "--netcopy-threads=3",
        "--netcopy-modes=one_copy,two_copy",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "test_sweep.py::test_send_path[one_copy-65536B-3t]",
            "test_sweep.py::test_send_path[two_copy-65536B-3t]",
            "test_sweep.py::test_send_path[one_copy-1024B-3t]",
            "test_sweep.py::test_send_path[two_copy-1024B-3t]",
        ]
    )


def test_default_grid_is_60_benchmarks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(["60 tests collected*"])


@pytest.mark.parametrize(
    ("args", "ini", "env", "message"),
    [
        (["--netcopy-sizes=100"], "", {},
         "*--netcopy-sizes='100': 100 is not a usable message size: expected a multiple of 8*"),
        (["--netcopy-sizes=4k,lots"], "", {},
         "*--netcopy-sizes='4k,lots': 'lots' is not a size: expected byte counts*"),
        (["--netcopy-threads=0"], "", {},
         "*--netcopy-threads='0': '0' is not a thread count: expected whole numbers from 1*"),
        (["--netcopy-modes=two_copy,three_copy"], "", {},
         "*--netcopy-modes='two_copy,three_copy': unknown mode(s) three_copy; expected names "
         "from: two_copy, one_copy, zero_copy*"),
        ([], "netcopy_threads = 1,x", {},
         "*ini option netcopy_threads in *tox.ini='1,x': 'x' is not a thread count*"),
        ([], "", {"NETCOPY_ROUND_TIME": "-1"},
         "*environment variable NETCOPY_ROUND_TIME='-1': expected a positive number*"),
        (["--netcopy-pin=sometimes"], "", {},
         "*--netcopy-pin='sometimes': expected one of auto, off*"),
        ([], "netcopy_control = bare", {},
         "*ini option netcopy_control*='bare': expected one of bare_send, none*"),
    ],
)  # fmt: skip
def test_bad_values_are_usage_errors_naming_option_value_and_expectation(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: str,
    env: dict[str, str],
    message: str,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess("--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_cli_beats_env_beats_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.makeini(
        "[pytest]\nnetcopy_sizes = 128\nnetcopy_threads = 5\nnetcopy_modes = one_copy\n"
    )
    monkeypatch.setenv("NETCOPY_THREADS", "6")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--netcopy-modes=two_copy")
    result.stdout.fnmatch_lines(["test_sweep.py::test_send_path[two_copy-128B-6t]", "1 test*"])


def test_help_lists_every_option_with_its_default(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    text = " ".join(result.stdout.str().split())
    for option, default in [
        ("--netcopy-sizes=SIZES", "Default: '256,1024,4096,16384,65536'"),
        ("--netcopy-threads=COUNTS", "Default: '1,2,4,8'"),
        ("--netcopy-modes=MODES", "Default: 'two_copy,one_copy,zero_copy'"),
        ("--netcopy-round-time=SECONDS", "Default: '0.05'"),
        ("--netcopy-timeout=SECONDS", "Default: '60'"),
        ("--netcopy-pin=auto|off", "Default: 'auto'"),
        ("--netcopy-nodelay", "Default: 'false'"),
        ("--netcopy-control=bare_send|none", "Default: 'bare_send'"),
    ]:
        assert option in text
        assert default in text[text.index(option) :][:400]
    assert "netcopy_sizes" in text and "NETCOPY_SIZES" in text


def run_one(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """One 1 KiB two_copy benchmark with extra options: the run and its extra_info."""
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=1024", "--netcopy-threads=1", "--netcopy-modes=two_copy",
        *args, "--benchmark-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "out.json").read_text())
    return result, data["benchmarks"][0]["extra_info"]


def test_nodelay_is_recorded(pytester: pytest.Pytester) -> None:
    result, extra = run_one(pytester, "--netcopy-nodelay")
    assert extra["tcp_nodelay"] is True
    result.stdout.fnmatch_lines(["*Nagle off (TCP_NODELAY set)*"])


def test_without_the_control_nothing_of_it_is_recorded(pytester: pytest.Pytester) -> None:
    _, extra = run_one(pytester, "--netcopy-control=none")
    assert "control" not in extra
    assert "throughput_vs_control" not in extra and "cpu_vs_control" not in extra
    assert set(extra["rounds"]) == {
        "seconds",
        "throughput_gbps",
        "steal_ms",
        "retransmits",
        "cpu_ns_per_byte",
        "tcp_info",
    }


def test_without_user_rounds_no_user_figures(pytester: pytest.Pytester) -> None:
    _, extra = run_one(pytester, "--netcopy-user-rounds=0")
    assert not {"user_cpu_ns_per_byte", "user_time", "pass_rounds"} & set(extra)


def test_sink_is_stopped_when_the_session_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pid="""
        def test_remember(netcopy_sink, tmp_path_factory):
            open("sink.pid", "w").write(str(netcopy_sink.pid))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    pid = int((pytester.path / "sink.pid").read_text())
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_the_marker_takes_a_scalar_and_is_checked_like_the_option(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.netcopy(sizes=4096, threads=[2], modes="one_copy")
        def test_one(netcopy_mode, netcopy_size, netcopy_threads):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_marked.py::test_one[one_copy-4096B-2t]", "1 test*"])
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.netcopy(sizes=100)
        def test_one(netcopy_mode, netcopy_size, netcopy_threads):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()
    assert "test_marked.py::test_one: netcopy(sizes=100): 100 is not a usable message size" in (
        output
    )
    assert "Traceback" not in output


def test_a_timeout_the_kernel_would_read_as_forever_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("--collect-only", "--netcopy-timeout=0.0000001")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netcopy-timeout='0.0000001': expected at least 0.001 s*"])


# ---------------------------------------------------------------------------
# the option table and the grid ids, without a session


def test_the_benchmark_settings_are_the_option_table_s_bench_rows() -> None:
    assert [f.name for f in fields(Settings)] == [spec.name for spec in BENCH_SPECS]
    assert set(OPTIONS) == {spec.name for spec in SPECS}
    assert len(OPTIONS) == len(SPECS)  # no name twice
    for spec in SPECS:  # every name of an option derives from its row
        assert spec.cli == "--netcopy-" + spec.name.replace("_", "-")
        assert (spec.ini, spec.env) == ("netcopy_" + spec.name, "NETCOPY_" + spec.name.upper())


@pytest.mark.parametrize(
    ("mode", "size", "threads", "expected"),
    [
        ("two_copy", 4096, 2, "two_copy-4096B-2t"),
        (None, 65536, 1, "65536B-1t"),
        ("zero_copy", None, None, "zero_copy"),
        ("one_copy", 256, None, "one_copy-256B"),
        (None, None, 8, "8t"),
        ("one_copy", None, 3, "one_copy-3t"),
    ],
)
def test_grid_ids_name_the_parts_a_test_takes(
    mode: str | None, size: int | None, threads: int | None, expected: str
) -> None:
    assert grid_id(mode, size, threads) == expected


def test_a_refused_congestion_control_names_its_option_in_the_failure() -> None:
    """The transport raises the facts; the plugin phrases them with the option's name."""
    from pytest_netcopy.plugin.hooks import explain_transfer_error
    from pytest_netcopy.transport.errors import CongestionRefused, TransferError

    refused = explain_transfer_error(CongestionRefused("nosuchcc", "No such file or directory"))
    assert refused.startswith(
        "--netcopy-congestion=nosuchcc: the kernel refused it (No such file or directory); see "
    )
    assert explain_transfer_error(TransferError("the sink died")) == "the sink died"


def test_an_unknown_congestion_control_is_refused_at_the_start_naming_the_option(
    pytester: pytest.Pytester,
) -> None:
    """Was a failure of every benchmark at run time; a name the kernel has but refuses
    this account still fails there (tests/test_usage.py)."""
    pytester.makepyfile(
        "def test_one(netcopy):\n    netcopy.run('two_copy', size=4096, threads=1)\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:xdist", "-p", "no:cacheprovider", "--netcopy-congestion=nosuchcc",
        "--netcopy-round-time=0.01", "--netcopy-rounds=2", "--netcopy-counters=none",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--netcopy-congestion='nosuchcc': not a congestion control this kernel has*"]
    )
    assert "test_one" not in result.stdout.str()
