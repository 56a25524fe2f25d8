"""The gate inside a pytest session, end to end through pytester (real sockets, a real sink).

The slower build is ``benchmarks/trust/extra_copy.py`` (two_copy that copies
each message again before sending it, under the same name, so its benchmarks
match the baseline's). On this 2-vCPU VM the same code moves 30% from run to
run, and its throughput drops up to 4x while another benchmark runs next to
it under xdist; one extra copy of a 64 KiB message costs ~6% of the
sender's CPU: no threshold tells one copy from that noise between two runs
here (``benchmarks/trust.py`` measures it). So this test makes the
regression unmistakable (``EXTRA_COPIES`` copies: ~75x the time per
message) and sets thresholds wide enough that a busy neighbour does not trip
them (-90% throughput, +200% CPU per byte): it
checks the plumbing (options, table, exit status, last line, marker), not
the statistics, which tests/test_gate.py covers.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.gate.policy import DEFAULT_RULES
from pytest_netcopy.gate.rules import format_rules, parse_rules
from pytest_netcopy.plugin.gate import parse_gate

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "gate"
EXTRA_COPY = ROOT / "benchmarks" / "trust" / "extra_copy.py"

#: the slower build's extra copies of each message (see the module docstring)
EXTRA_COPIES = "1024"
RULES = "throughput_gbps:-90% cpu_ns_per_byte:+200%"
#: enough rounds for Mann-Whitney U to reach p < 0.01 (5+5 at least), short ones
RUN = (
    *FAST,
    "--netcopy-rounds=8", "--netcopy-round-time=0.01", "--netcopy-warmup-rounds=1",
    "--netcopy-sizes=64K", "--netcopy-threads=1", "--netcopy-modes=two_copy",
    "--netcopy-nodelay",
)  # fmt: skip

#: a second test whose benchmark (4 KiB) the marker lets get much slower
RELAXED = """
import pytest

@pytest.mark.netcopy(sizes=[4096], gate="throughput_gbps:-100% cpu_ns_per_byte:+1e9%")
def test_relaxed(netcopy, netcopy_mode, netcopy_size, netcopy_threads):
    assert netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads).intact
"""


def last_line(result: pytest.RunResult) -> str:
    return [line for line in result.outlines if line.strip()][-1]


def row(result: pytest.RunResult, bench: str, metric: str) -> str:
    rows = [r for r in result.outlines if r.startswith(f"{bench}  ") and f" {metric} " in r]
    assert len(rows) == 1, result.stdout.str()
    return rows[0]


# ---------------------------------------------------------------------------
# end to end


def test_save_rerun_slower_build_and_two_sided(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sweep=SWEEP, test_relaxed=RELAXED)
    pytester.makepyfile(slow_build=EXTRA_COPY.read_text())
    # the rules machinery under test, not the speed guard: with a parallel test run on
    # the same CPUs, the control send's speed moves by more than its 5% between runs
    gate = (
        f"--netcopy-gate={RULES}",
        "--netcopy-baseline=*base",
        "--netcopy-gate-speed-tolerance=off",
    )

    # 1. the baseline, saved in pytest-benchmark's storage
    saved = pytester.runpytest_subprocess(*RUN, "--benchmark-save=base")
    saved.assert_outcomes(passed=2)
    (base_file,) = (pytester.path / ".benchmarks").glob("*/0001_base.json")
    extra = {
        b["extra_info"]["size"]: b["extra_info"]
        for b in json.loads(base_file.read_text())["benchmarks"]
    }
    # the counters issue records it; null where task-clock may not be counted
    has_cpu = extra[65536].get("cpu_ns_per_byte") is not None

    # 2. the same code again: passes, and the verdict is the last line
    rerun = pytester.runpytest_subprocess(*RUN, *gate)
    rerun.assert_outcomes(passed=2)
    assert rerun.ret == pytest.ExitCode.OK, rerun.stdout.str()
    rerun.stdout.fnmatch_lines(
        [
            f"netcopy gate: on; baseline *0001_base.json; rules {RULES} (--netcopy-gate)",
            "*netcopy gate: this session vs baseline *0001_base.json*",
            "benchmark*metric*rule*baseline*current*change*p (Mann-Whitney U)*verdict",
        ]
    )
    assert "two_copy-65536B-1t  throughput_gbps" in rerun.stdout.str()
    # (an "improvement" may be noted: a baseline run next to a busy neighbour is slow)
    assert last_line(rerun).startswith("netcopy gate: no regression in 2 benchmarks")

    # 3. one build whose send path got slower: fails on throughput and CPU per byte
    monkeypatch.setenv("NETCOPY_EXTRA_COPIES", EXTRA_COPIES)
    slow = pytester.runpytest_subprocess(
        *RUN, *gate, "-p", "slow_build", "--benchmark-json=slow.json"
    )
    monkeypatch.delenv("NETCOPY_EXTRA_COPIES")
    text = slow.stdout.str()
    slow.assert_outcomes(passed=2)  # every test passed ...
    assert slow.ret == pytest.ExitCode.TESTS_FAILED, text  # ... and the gate failed the session
    assert "Traceback" not in text + slow.stderr.str()
    throughput = row(slow, "two_copy-65536B-1t", "throughput_gbps")
    assert throughput.endswith("REGRESSION") and " -90% " in throughput, throughput
    assert "(exact, 8+8 rounds)" in throughput
    cpu = row(slow, "two_copy-65536B-1t", "cpu_ns_per_byte")
    # the marker's rules for the 4 KiB benchmark, which got as much slower
    relaxed = row(slow, "two_copy-4096B-1t", "throughput_gbps")
    # (issue 12: "ok" is now "no regression (no change beyond N% at 80% power)")
    assert " -100% " in relaxed and " no regression (" in relaxed, relaxed
    if has_cpu:
        assert cpu.endswith("REGRESSION"), cpu
        assert last_line(slow) == (
            "netcopy gate: 2 regressions in two_copy-65536B-1t (throughput_gbps, cpu_ns_per_byte)"
        )
    else:  # cpu_ns_per_byte not counted on this machine
        assert "not comparable" in cpu, cpu
        expected = "netcopy gate: 1 regression in two_copy-65536B-1t (throughput_gbps)"
        assert last_line(slow) == expected
    # pytest's own line comes just before the gate's
    lines = [line for line in slow.outlines if line.strip()]
    assert "2 passed" in lines[-2]
    assert "Rerun to confirm it" in text

    # 4. two-sided: the normal build against the slow run is an improvement, and fails
    better = pytester.runpytest_subprocess(
        *RUN, f"--netcopy-gate={RULES}", "--netcopy-baseline=slow.json",
        "--netcopy-gate-two-sided", "-k", "test_send_path", "--netcopy-gate-speed-tolerance=off",
    )  # fmt: skip
    better.assert_outcomes(passed=1)
    assert better.ret == pytest.ExitCode.TESTS_FAILED, better.stdout.str()
    assert row(better, "two_copy-65536B-1t", "throughput_gbps").endswith("IMPROVEMENT")
    better.stdout.fnmatch_lines(["in the baseline only (not run now, not compared): *4096B-1t"])
    assert last_line(better) == (
        "netcopy gate: 1 improvement in two_copy-65536B-1t (throughput_gbps) "
        "(two-sided: refresh the baseline)"
    )


def test_the_default_rules_catch_a_slower_send_path_relative_to_the_control(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.makepyfile(slow_build=EXTRA_COPY.read_text())
    # a baseline for a gate carries the instruction count (auto counts it when the run
    # is saved or gated; a bare --benchmark-json asks for it)
    saved = pytester.runpytest_subprocess(
        *RUN, "--benchmark-json=base.json", "--netcopy-instructions=on"
    )
    saved.assert_outcomes(passed=1)
    monkeypatch.setenv("NETCOPY_EXTRA_COPIES", "64")
    slow = pytester.runpytest_subprocess(
        *RUN, "--netcopy-baseline=base.json", "-p", "slow_build", "--netcopy-gate"
    )
    text = slow.stdout.str()
    assert slow.ret == pytest.ExitCode.TESTS_FAILED, text
    slow.stdout.fnmatch_lines(
        [f"netcopy gate: on; baseline base.json; rules {format_rules(DEFAULT_RULES)} (default)"]
    )  # fmt: skip
    # The sender's user-mode instructions per message are the robust figure: 64 more
    # copies of each message multiply them, and the machine's speed does not move a
    # count. CPU per byte against the control (~4x) fails too, unless the control's
    # speed moved by more than 5% (a parallel test run shares the CPUs): then it is
    # not judged, and says why. (Throughput against the control fails too on a quiet
    # machine; with starved CPUs, wall-clock rounds of 10 ms can stall on the
    # receiver: not insisted on.)
    counted = row(slow, "two_copy-65536B-1t", "user_instructions_per_message")
    if shutil.which("valgrind") is None:  # no PMU here either: not counted, and says so
        assert "not recorded" in counted or "not counted" in counted, counted
    else:
        assert counted.endswith("REGRESSION"), counted
    cpu = row(slow, "two_copy-65536B-1t", "cpu_vs_control")
    assert cpu.endswith("REGRESSION") or "machine ran at another speed" in cpu, cpu
    assert re.fullmatch(
        r"netcopy gate: [123] regressions? in two_copy-65536B-1t \(.*\).*",
        last_line(slow),
    )


@pytest.mark.parametrize(
    "args",
    [
        # no control, but rules that do not need it
        ["--netcopy-control=none", "--netcopy-gate=throughput_gbps:-90%", "--netcopy-baseline=OLD"],
        # report only: the rows say "not comparable", nothing is refused
        ["--netcopy-baseline=OLD"],
    ],
)
def test_what_the_control_check_lets_through(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    old = str(DATA.parent / "runs" / "real_run.json")  # made before the control send
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=4K", "--netcopy-threads=1", "--netcopy-modes=two_copy",
        *[a.replace("OLD", old) for a in args],
    )  # fmt: skip
    text = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    if "--netcopy-control=none" in args:
        # let through to the gate: the verdict itself follows this machine's speed against a
        # stored 17.4 Gbps (a loaded CI runner can fall below -90%, or straddle it and stay
        # undecided), so any of the three verdicts is fine, never "refused" or "not comparable"
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), text
        assert re.match(
            r"netcopy gate: (no regression in 1 benchmark|1 regression in two_copy-4096B-1t"
            r"|nothing judged: all 1 row of 1 benchmark undecided)",
            last_line(result),
        ), text
        verdict = row(result, "two_copy-4096B-1t", "throughput_gbps")
        assert verdict.endswith(("REGRESSION", ")")) or "undecided:" in verdict, text
    else:
        assert result.ret == pytest.ExitCode.OK, text
        assert last_line(result).startswith("netcopy gate: no regression in 1 benchmark")


def test_baseline_without_gate_reports_only_and_says_machines_differ(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=4K", "--netcopy-threads=1", "--netcopy-modes=two_copy",
        f"--netcopy-baseline={DATA / 'baseline.json'}",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "netcopy gate: off (report only); baseline *baseline.json; rules "
            f"{' '.join(str(r) for r in DEFAULT_RULES)} (default)",
            "*netcopy comparison (report only): this session vs baseline *baseline.json*",
            "machines differ (a change may come from the machine, not the code):",
            "  kernel_release '6.1.0-21-amd64' (baseline) vs *",
            "two_copy-4096B-1t  throughput_vs_control *",
            "in the baseline only (not run now, not compared): one_copy-4096B-1t, "
            "zero_copy-65536B-2t",
            "report only: --netcopy-gate is off, so this comparison does not change the exit "
            "status",
        ]
    )
    assert last_line(result).startswith("netcopy gate: ")
    assert last_line(result).endswith(" (report only)")


def test_gate_with_no_netcopy_benchmark_says_so(pytester: pytest.Pytester) -> None:
    # issue 13: a gate that judged nothing fails, unless --netcopy-gate-allow-empty
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    args = ("-p", "no:cacheprovider", f"--netcopy-baseline={DATA / 'baseline.json'}")
    result = pytester.runpytest_subprocess(*args, "--netcopy-gate")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(result) == (
        "netcopy gate: no netcopy benchmark ran in this session, nothing judged; a gate "
        "that judged nothing fails (--netcopy-gate-allow-empty accepts it)"
    )
    result = pytester.runpytest_subprocess(*args, "--netcopy-gate", "--netcopy-gate-allow-empty")
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result) == (
        "netcopy gate: no netcopy benchmark ran in this session, nothing judged "
        "(allowed by --netcopy-gate-allow-empty)"
    )
    # report only: the exit status is left alone
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.OK


def test_gate_whose_rows_are_all_not_comparable_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    # two_copy records no zerocopy figures: the one row is not comparable
    args = (
        *FAST, "--netcopy-sizes=4K", "--netcopy-threads=1", "--netcopy-modes=two_copy",
        f"--netcopy-baseline={DATA / 'baseline.json'}", "--netcopy-gate=zerocopy.copied:+0",
    )  # fmt: skip
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert last_line(result) == (
        "netcopy gate: nothing judged: all 1 row of 1 benchmark not comparable; a gate "
        "that judged nothing fails (--netcopy-gate-allow-empty accepts it)"
    )
    monkeypatch.setenv("NETCOPY_GATE_ALLOW_EMPTY", "true")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert last_line(result).endswith(
        "not comparable (allowed by environment variable NETCOPY_GATE_ALLOW_EMPTY)"
    )


@pytest.mark.parametrize("where", ["cli", "ini", "env"])
def test_a_missing_absolute_baseline_is_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    (pytester.path / ".benchmarks" / "some-machine").mkdir(parents=True)
    args = ["--collect-only", "-p", "no:cacheprovider"]
    if where == "cli":
        args.append("--netcopy-baseline=/nonexistent.json")
        phrase = "--netcopy-baseline"
    elif where == "ini":
        pytester.makeini("[pytest]\nnetcopy_baseline = /nonexistent.json\n")
        phrase = "ini option netcopy_baseline in *tox.ini"
    else:
        monkeypatch.setenv("NETCOPY_BASELINE", "/nonexistent.json")
        phrase = "environment variable NETCOPY_BASELINE"
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {phrase}='/nonexistent.json' is not an existing file"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


ADDED_MODE = """
from pytest_netcopy import FunctionMode

def pytest_netcopy_add_modes(registry):
    registry.add(FunctionMode("my_mode", lambda sock, fields: sock.sendall(b"".join(fields))))
"""


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("throughput_gpbs:-25%",
         "ERROR: @pytest.mark.netcopy(gate='throughput_gpbs:-25%') on test_marked.py::test_marked: "
         "bad gate rule 'throughput_gpbs:-25%': unknown metric 'throughput_gpbs'; expected one "
         "of: throughput_gbps, *"),
        ("throughput_gbps:-25%@my_mod",
         "ERROR: @pytest.mark.netcopy(gate='throughput_gbps:-25%@my_mod') on "
         "test_marked.py::test_marked: bad gate rule 'throughput_gbps:-25%@my_mod': unknown mode "
         "'my_mod'; expected modes from: two_copy, one_copy, zero_copy, udp_two_copy, "
         "udp_one_copy, udp_zero_copy, udp_gso, my_mode"),
        ("throughput_gbps:-25%@my_mode", None),
    ],
)  # fmt: skip
def test_marker_rules_name_known_metrics_and_modes(
    pytester: pytest.Pytester, gate: str, message: str | None
) -> None:
    pytester.makeconftest(ADDED_MODE)
    pytester.makepyfile(
        test_marked=f"""
        import pytest

        @pytest.mark.netcopy(gate={gate!r})
        def test_marked(netcopy):
            pass
        """
    )
    args = ("--collect-only", "-p", "no:cacheprovider", "--netcopy-gate=steal_ms:+1@-my_mode")
    result = pytester.runpytest_subprocess(*args, f"--netcopy-baseline={DATA / 'baseline.json'}")
    if message is None:
        assert result.ret == pytest.ExitCode.OK, result.stderr.str()
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_no_gate_output_without_a_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.makeini("[pytest]\nnetcopy_gate = throughput_gbps:-5%\n")
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=256", "--netcopy-threads=1", "--netcopy-modes=one_copy"
    )
    result.assert_outcomes(passed=1)
    assert "netcopy gate" not in result.stdout.str()


# ---------------------------------------------------------------------------
# options: checked before anything runs


@pytest.mark.parametrize(
    ("args", "ini", "env", "message"),
    [
        (["--netcopy-gate"], "", {},
         "ERROR: --netcopy-gate needs a baseline to compare with, and none was given: add "
         "--netcopy-baseline=PATH_OR_ID *"),
        ([], "", {"NETCOPY_GATE": "on"},
         "ERROR: environment variable NETCOPY_GATE needs a baseline to compare with*"),
        (["--netcopy-gate-two-sided"], "", {},
         "ERROR: --netcopy-gate-two-sided needs a baseline to compare with*"),
        (["--netcopy-gate=throughput_gbps:10%", "--netcopy-baseline=BASE"], "", {},
         "ERROR: --netcopy-gate='throughput_gbps:10%': bad gate rule 'throughput_gbps:10%': "
         "the threshold needs a sign*"),
        (["--netcopy-baseline=BASE", "--netcopy-gate", "test_sweep.py"], "", {},
         "ERROR: --netcopy-gate='test_sweep.py': bad gate rule 'test_sweep.py': no ':' *; if "
         "'test_sweep.py' is a test path, --netcopy-gate took it as its rules: write "
         "--netcopy-gate=RULES, or put a bare --netcopy-gate after the paths"),
        (["--netcopy-baseline=BASE", "--netcopy-gate"], "netcopy_gate = cpu:+1% cpu:+2%", {},
         "ERROR: ini option netcopy_gate in *tox.ini='cpu:+1% cpu:+2%': bad gate rule 'cpu:+2%': "
         "a rule for a rise of cpu is given twice (cpu:+1%)"),
        (["--netcopy-gate=throughput_gpbs:-10%", "--netcopy-baseline=BASE"], "", {},
         "ERROR: --netcopy-gate='throughput_gpbs:-10%': bad gate rule 'throughput_gpbs:-10%': "
         "unknown metric 'throughput_gpbs'; expected one of: throughput_gbps, *"),
        (["--netcopy-baseline=BASE"], "netcopy_gate = throughput_gbps:-10%@two_cpy", {},
         "ERROR: ini option netcopy_gate in *tox.ini='throughput_gbps:-10%@two_cpy': bad gate "
         "rule 'throughput_gbps:-10%@two_cpy': unknown mode 'two_cpy'; expected modes from: "
         "two_copy, one_copy, zero_copy, udp_two_copy, udp_one_copy, udp_zero_copy, udp_gso"),
        (["--netcopy-baseline=BASE"], "", {"NETCOPY_GATE": "counters.cycles:+5%"},
         "ERROR: environment variable NETCOPY_GATE='counters.cycles:+5%': bad gate rule "
         "'counters.cycles:+5%': unknown metric 'counters.cycles'; *"),
        (["--netcopy-gate-allow-empty"], "", {},
         "ERROR: --netcopy-gate-allow-empty needs a baseline to compare with*"),
        (["--netcopy-baseline=BASE", "--netcopy-gate-speed-tolerance=a lot"], "", {},
         "ERROR: --netcopy-gate-speed-tolerance='a lot': expected a percentage with its '%' "
         "such as '10%'*"),
        (["--netcopy-baseline=nope.json"], "", {},
         "ERROR: --netcopy-baseline='nope.json' is neither an existing file nor a saved run: "
         "searched *; a saved-run query leaves out '.json': 'nope'"),
        (["--netcopy-baseline=0042"], "", {},
         "ERROR: --netcopy-baseline='0042' is neither an existing file nor a saved run: "
         "searched .benchmarks/*/0042*.json and .benchmarks/0042*.json*"),
        (["--netcopy-baseline=TRUNCATED"], "", {},
         "ERROR: --netcopy-baseline='*truncated.json': *truncated.json: is not valid JSON "
         "(truncated or corrupt?): *"),
        (["--netcopy-baseline=FOREIGN"], "", {},
         "ERROR: --netcopy-baseline='*foreign.json': *foreign.json: has no netcopy benchmarks*"),
        ([], "netcopy_baseline = DIR", {},
         "ERROR: ini option netcopy_baseline in *tox.ini='*gate' is a directory, expected a "
         "pytest-benchmark JSON file or a saved-run query such as '0001' or '*base'"),
        (["--netcopy-baseline=BASE", "--netcopy-gate-strict-machine"], "", {},
         "ERROR: --netcopy-gate-strict-machine: refusing to compare with the baseline "
         "*baseline.json, which comes from another machine: kernel_release '6.1.0-21-amd64' "
         "(baseline) vs *; save a baseline on this machine (--benchmark-save=NAME), or leave "
         "out --netcopy-gate-strict-machine"),
        (["--netcopy-baseline=BASE"], "", {"NETCOPY_GATE_TWO_SIDED": "maybe"},
         "ERROR: environment variable NETCOPY_GATE_TWO_SIDED='maybe': expected true or false"),
        (["--netcopy-baseline=BASE", "--netcopy-gate", "--netcopy-control=none"], "", {},
         "ERROR: --netcopy-control='none': the gate rules (default) compare cpu_vs_control, "
         "throughput_vs_control, which only a run with the control send has; leave the control "
         "on (bare_send), gate on absolute figures, e.g. --netcopy-gate='throughput_gbps:-10% "
         "cpu_ns_per_byte:+10% syscalls_per_message:+10%', or turn the gate off for this run "
         "(--netcopy-gate=off)"),
        (["--netcopy-baseline=OLD", "--netcopy-gate"], "", {},
         "ERROR: the baseline *real_run.json has no control figures (made with "
         "--netcopy-control=none or by an older pytest-netcopy), so the gate rules (default) on "
         "cpu_vs_control, throughput_vs_control cannot compare anything: save a new baseline*"),
    ],
)  # fmt: skip
def test_bad_gate_options_are_usage_errors_before_anything_runs(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: str,
    env: dict[str, str],
    message: str,
) -> None:
    files = {
        "BASE": DATA / "baseline.json",
        "TRUNCATED": DATA / "truncated.json",
        "FOREIGN": DATA / "foreign.json",
        "DIR": DATA,
        "OLD": DATA.parent / "runs" / "real_run.json",  # made before the control send
    }
    for key, path in files.items():
        args = [a.replace(key, str(path)) for a in args]
        ini = ini.replace(key, str(path))
    pytester.makepyfile(test_sweep=SWEEP)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_bad_marker_rule_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.netcopy(gate="throughput_gbps:-ten%")
        def test_marked(netcopy):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: @pytest.mark.netcopy(gate='throughput_gbps:-ten%') on "
            "test_marked.py::test_marked: bad gate rule 'throughput_gbps:-ten%': 'ten' is not "
            "a plain non-negative number*"
        ]
    )
    assert "Traceback" not in result.stderr.str()


def test_ini_rules_apply_when_a_baseline_is_given_and_cli_beats_env_beats_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.makeini(
        f"[pytest]\nnetcopy_baseline = {DATA / 'baseline.json'}\n"
        "netcopy_gate =\n    throughput_gbps:-5%\n    cpu_ns_per_byte:+5%\n"
    )
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["netcopy gate: on; baseline *baseline.json; rules throughput_gbps:-5% "
         "cpu_ns_per_byte:+5% (ini option netcopy_gate in *tox.ini)"]
    )  # fmt: skip
    monkeypatch.setenv("NETCOPY_GATE", "throughput_gbps:-7%")
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["netcopy gate: on; *rules throughput_gbps:-7% (environment variable NETCOPY_GATE)"]
    )
    # a bare switch turns the gate on and takes its rules from the next source
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider",
                                           "--netcopy-gate")  # fmt: skip
    result.stdout.fnmatch_lines(["netcopy gate: on; *rules throughput_gbps:-7% (environment*"])
    monkeypatch.setenv("NETCOPY_GATE", "off")
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["netcopy gate: off (report only); *"])


def test_help_lists_the_gate_options_with_their_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    text = " ".join(result.stdout.str().split())
    for option, default in [
        ("--netcopy-baseline=PATH_OR_ID", "Default: '' (ini: netcopy_baseline, env: "),
        ("--netcopy-gate=[RULES]", "Default: off (ini: netcopy_gate, env: NETCOPY_GATE)"),
        ("--netcopy-gate-two-sided", "Default: 'false'"),
        ("--netcopy-gate-strict-machine", "Default: 'false'"),
        ("--netcopy-gate-speed-tolerance=PCT|off", "Default: '5%'"),
        (
            "--netcopy-gate-allow-empty",
            "Default: 'false' (ini: netcopy_gate_allow_empty, env: NETCOPY_GATE_ALLOW_EMPTY)",
        ),
    ]:
        assert option in text, option
        assert default in text[text.index(option) :][:900], option
    assert format_rules(DEFAULT_RULES) in text


# ---------------------------------------------------------------------------
# parse_gate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (True, None)),
        ("  ", (True, None)),
        ("true", (True, None)),
        ("On", (True, None)),
        ("off", (False, None)),
        ("0", (False, None)),
        ("throughput_gbps:-5%", (True, tuple(parse_rules("throughput_gbps:-5%")))),
        (" , ", (True, None)),
    ],
)
def test_parse_gate(text: str, expected: tuple[bool, object]) -> None:
    assert parse_gate(text) == expected


def test_parse_gate_rejects_bad_rules() -> None:
    with pytest.raises(ValueError, match="bad gate rule 'maybe'"):
        parse_gate("maybe")


# ---------------------------------------------------------------------------
# issue 12: decisions that take the rounds they need

#: 4+4 rounds are too few for an interval at the first look's level (P(U = 0) = 1/70),
#: and 4+6 at the second's: undecided at both looks, whatever the machine does; the
#: threshold is -1e6%, so never a regression nor an improvement (a busy neighbour may
#: slow either run 20x)
LOOKS = (
    *FAST, "--netcopy-rounds=4", "--netcopy-round-time=0.005", "--netcopy-sizes=4K",
    "--netcopy-threads=1", "--netcopy-modes=two_copy", "--netcopy-user-rounds=0",
    "--netcopy-instructions=off",
)  # fmt: skip
LOOK_GATE = (
    "--netcopy-gate=throughput_gbps:-1e6% syscalls_per_message:+1000%",
    "--netcopy-gate-speed-tolerance=off", "--netcopy-gate-max-rounds=6",
)  # fmt: skip


def extra_info(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    (bench,) = json.loads(path.read_text())["benchmarks"]
    return bench["extra_info"], bench["stats"]


def test_an_undecided_benchmark_measures_more_rounds_up_to_the_budget(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.runpytest_subprocess(*LOOKS, "--benchmark-json=base.json").assert_outcomes(passed=1)
    gated = pytester.runpytest_subprocess(
        *LOOKS, *LOOK_GATE, "--netcopy-baseline=base.json", "--benchmark-json=new.json"
    )
    text = gated.stdout.str()
    gated.assert_outcomes(passed=1)
    assert gated.ret == pytest.ExitCode.OK, text  # undecided does not fail by default
    assert "measures more, up to 6 rounds / 10 s" in text
    info, stats = extra_info(pytester.path / "new.json")
    assert len(info["rounds"]["throughput_gbps"]) == 6, (info.get("gate_rounds"), text)
    assert len(info["rounds"]["seconds"]) == 6
    assert len(info["control"]["rounds"]["throughput_gbps"]) == 7  # one before each, one after
    assert len(info["rounds"]["throughput_vs_control"]) == 6
    assert info["gate_rounds"] == {
        "added": 2, "looks": [4, 6], "max_rounds": 6,
        "reason": "undecided (throughput_gbps) at the budget of 6 rounds",
    }  # fmt: skip
    assert stats["rounds"] == 4  # pytest-benchmark's own stats keep the first rounds
    assert "undecided: too few comparable rounds (4+6)" in row(
        gated, "two_copy-4096B-1t", "throughput_gbps"
    )


def test_strict_fails_on_undecided_and_without_a_gate_nothing_extra_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.runpytest_subprocess(*LOOKS, "--benchmark-json=base.json").assert_outcomes(passed=1)
    # two rules: the syscall count is decided (threshold alone), throughput is not
    gate = LOOK_GATE
    strict = pytester.runpytest_subprocess(
        *LOOKS, *gate, "--netcopy-baseline=base.json", "--netcopy-gate-strict"
    )
    assert strict.ret == pytest.ExitCode.TESTS_FAILED, strict.stdout.str()
    assert last_line(strict) == (
        "netcopy gate: no regression in 1 benchmark; 1 undecided (fails a strict gate): "
        "two_copy-4096B-1t (throughput_gbps: too few comparable rounds)"
    )
    lenient = pytester.runpytest_subprocess(*LOOKS, *gate, "--netcopy-baseline=base.json")
    assert lenient.ret == pytest.ExitCode.OK, lenient.stdout.str()
    assert last_line(lenient) == (
        "netcopy gate: no regression in 1 benchmark; 1 undecided: "
        "two_copy-4096B-1t (throughput_gbps: too few comparable rounds)"
    )
    # a baseline without the gate (report only): the rounds asked for, no look
    report = pytester.runpytest_subprocess(
        *LOOKS, "--netcopy-baseline=base.json", "--benchmark-json=report.json"
    )
    report.assert_outcomes(passed=1)
    info, _ = extra_info(pytester.path / "report.json")
    assert len(info["rounds"]["throughput_gbps"]) == 4 and "gate_rounds" not in info
