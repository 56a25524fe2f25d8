"""``netcopy compare`` and baseline resolution, on hand-written runs in tests/data/gate/.

The files: ``baseline.json`` (3 benchmarks, 10 rounds each), ``rerun.json``
(the same code again, 1-2% noise), ``slower.json`` (two_copy 20% slower, 25%
more CPU per byte, a second syscall per message; zero_copy 20% faster; one
new benchmark), ``other_machine.json`` (another kernel and CPU, no counters,
one_copy not run), ``truncated.json`` (the first third of baseline.json),
``foreign.json`` (pytest-benchmark output of another suite).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import get_machine_id

from pytest_netcopy import cli
from pytest_netcopy.results.baseline import (
    BaselineError,
    find_baselines,
    local_machine_id,
    resolve_baseline,
)

DATA = Path(__file__).parent / "data" / "gate"
ROOT = Path(__file__).resolve().parent.parent
HAVE_REPORT = importlib.util.find_spec("pytest_netcopy.cli.report") is not None

Main = Callable[[Sequence[str]], int]


@pytest.fixture
def netcopy(monkeypatch: pytest.MonkeyPatch) -> Main:
    """``cli.main``; with a stand-in for ``report`` while that module is not written yet."""
    if not HAVE_REPORT:
        stub = types.ModuleType("pytest_netcopy.cli.report")
        stub.register = lambda subparsers: None  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "pytest_netcopy.cli.report", stub)
    return cli.main


def compare(main: Main, *args: str | Path) -> int:
    return main(["compare", *(str(a) for a in args)])


# ---------------------------------------------------------------------------
# through cli.main


def test_identical_rerun_passes(netcopy: Main, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(netcopy, DATA / "baseline.json", DATA / "rerun.json") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "netcopy gate: no regression in 3 benchmarks"
    assert "REGRESSION" not in out


def test_slower_run_fails_with_exit_1(netcopy: Main, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(netcopy, DATA / "baseline.json", DATA / "slower.json") == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("netcopy gate: 4 regressions in two_copy-4096B-1t")
    assert "IMPROVEMENT" in out  # zero_copy: reported, not failed
    assert "new, not in the baseline (not compared): two_copy-65536B-1t" in out


def test_two_sided_fails_on_an_improvement(
    netcopy: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = "throughput_gbps:-30% cpu_ns_per_byte:+30% syscalls_per_message:+200%"
    base, slower = DATA / "baseline.json", DATA / "slower.json"
    assert compare(netcopy, base, slower, "--gate", gate) == 0
    assert compare(netcopy, base, slower, "--gate", "throughput_gbps:-40%", "--two-sided") == 0
    capsys.readouterr()
    assert compare(netcopy, base, slower, "--gate", "throughput_gbps:-10%", "--two-sided") == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert "1 improvement in zero_copy-65536B-2t (throughput_gbps)" in last


def test_another_machine_is_said_above_the_table(
    netcopy: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare(netcopy, DATA / "baseline.json", DATA / "other_machine.json") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "machines differ (a change may come from the machine, not the code):"
    assert any("cpu_model" in line and "AMD EPYC 7B13" in line for line in lines[3:6])
    assert lines[6].split()[0] == "benchmark"
    assert "in the baseline only (not run now, not compared): one_copy-4096B-1t" in lines
    assert lines[-1] == (  # issue 12: not comparable rows are named as undecided
        "netcopy gate: no regression in 2 benchmarks; 4 undecided: two_copy-4096B-1t "
        "(cpu_vs_control: current: null (not counted); syscalls_per_message: current: not "
        "recorded), zero_copy-65536B-2t (cpu_vs_control: current: null (not counted); "
        "syscalls_per_message: current: not recorded)"
    )


def test_runs_without_the_control_are_refused_by_rules_that_need_it(
    netcopy: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    old = str(DATA.parent / "runs" / "real_run.json")  # made before the control send
    assert compare(netcopy, str(DATA / "baseline.json"), old) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"netcopy compare: error: {old} has no control figures (made with "
        "--netcopy-control=none or by an older pytest-netcopy), so the default rules on "
        "cpu_vs_control, throughput_vs_control cannot compare it; give rules on absolute "
        "figures, e.g. --gate 'throughput_gbps:-10% cpu_ns_per_byte:+10% "
        "syscalls_per_message:+10%'"
    )
    assert compare(netcopy, old, old, "--gate", "throughput_gbps:-10%") == 0


def test_strict_machine_refuses(netcopy: Main, capsys: pytest.CaptureFixture[str]) -> None:
    code = compare(netcopy, DATA / "baseline.json", DATA / "other_machine.json", "--strict-machine")
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("netcopy compare: error: refusing to compare runs from")
    assert "kernel_release '6.1.0-21-amd64' (baseline) vs '6.8.0-45-generic'" in captured.err


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("truncated.json", "is not valid JSON (truncated or corrupt?)"),
        ("foreign.json", "has no netcopy benchmarks"),
    ],
)
@pytest.mark.parametrize("side", ["base", "new"])
def test_bad_files_give_one_line_naming_the_file(
    netcopy: Main, capsys: pytest.CaptureFixture[str], name: str, problem: str, side: str
) -> None:
    files = [DATA / "baseline.json", DATA / name]
    if side == "base":
        files.reverse()
    assert compare(netcopy, *files) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(DATA / name) in err and problem in err
    assert "Traceback" not in err


def test_missing_file_is_bad_input(
    netcopy: Main, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.json"
    code = compare(netcopy, missing, DATA / "rerun.json", "--storage", tmp_path / "store")
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"BASE {str(missing)!r} is not an existing file" in err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--gate", "throughput_gbps:10%", "--gate: bad gate rule 'throughput_gbps:10%'"),
        ("--gate", " , ", "has no rule"),
        ("--format", "nope", "--format 'nope' is not a table format"),
        ("--speed-tolerance", "fast", "--speed-tolerance 'fast': expected a percentage"),
    ],
)
def test_bad_options_are_one_line_errors(
    netcopy: Main, capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    code = compare(netcopy, DATA / "baseline.json", DATA / "rerun.json", option, value)
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("netcopy compare: error: ")
    assert expected in err


def test_help_names_every_option_and_its_default(
    netcopy: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        netcopy(["compare", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    defaults = (
        "throughput_vs_control:-15%@-zero_copy cpu_vs_control:+15%@-zero_copy "
        "throughput_vs_control:-25%@zero_copy cpu_vs_control:+25%@zero_copy "
        "syscalls_per_message:+10% user_instructions_per_message:+10%@-zero_copy "
        "user_instructions_per_message:+25%@zero_copy"
    )
    assert f"Default: '{defaults}'" in text
    for option in [
        "--gate RULES",
        "--two-sided",
        "--strict-machine",
        "--format FMT",
        "--storage DIR",
        "--speed-tolerance PCT",
        "--allow-empty",
    ]:
        assert option in text
    assert "Default: 'simple'" in text and "Default: '.benchmarks'" in text
    assert "'off': judge at any speed. Default: '5%'" in text


def test_format_option(netcopy: Main, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare(netcopy, DATA / "baseline.json", DATA / "rerun.json", "--format", "github") == 0
    assert "| two_copy-4096B-1t " in capsys.readouterr().out


def test_saved_run_ids(netcopy: Main, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / local_machine_id()
    folder.mkdir()
    shutil.copy(DATA / "baseline.json", folder / "0001_base.json")
    shutil.copy(DATA / "slower.json", folder / "0002_slower.json")
    assert compare(netcopy, "0001", "0002", "--storage", tmp_path) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"baseline: {folder / '0001_base.json'}"
    assert compare(netcopy, "*base", "*base", "--storage", tmp_path) == 0


# ---------------------------------------------------------------------------
# as a program

DRIVER = """\
import importlib.util, sys, types
if importlib.util.find_spec("pytest_netcopy.cli.report") is None:  # not written yet
    stub = types.ModuleType("pytest_netcopy.cli.report")
    stub.register = lambda subparsers: None
    sys.modules["pytest_netcopy.cli.report"] = stub
from pytest_netcopy.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_program(prefix: list[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *prefix, "compare", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


PROGRAMS = [
    pytest.param(["-c", DRIVER], id="cli.main"),
    pytest.param(
        ["-m", "pytest_netcopy"],
        id="python -m pytest_netcopy",
        marks=pytest.mark.skipif(not HAVE_REPORT, reason="pytest_netcopy/report.py not there yet"),
    ),
]


@pytest.mark.parametrize("prefix", PROGRAMS)
def test_program_exit_statuses(prefix: list[str]) -> None:
    ok = run_program(prefix, DATA / "baseline.json", DATA / "rerun.json")
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.splitlines()[-1] == "netcopy gate: no regression in 3 benchmarks"

    bad = run_program(prefix, DATA / "baseline.json", DATA / "slower.json")
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[-1].startswith("netcopy gate: 4 regressions in")

    broken = run_program(prefix, DATA / "baseline.json", DATA / "truncated.json")
    assert broken.returncode == 2
    assert broken.stdout == ""
    assert broken.stderr.startswith("netcopy compare: error: ")
    assert "truncated.json" in broken.stderr and "Traceback" not in broken.stderr


# ---------------------------------------------------------------------------
# resolve_baseline: pytest-benchmark's --benchmark-compare rules


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    store = tmp_path / ".benchmarks"
    here, there = store / "Linux-CPython-3.11-64bit", store / "Linux-CPython-3.12-64bit"
    for folder, names in [
        (here, ["0001_base.json", "0002_base.json", "0003_tuned.json"]),
        (there, ["0001_base.json", "0004_base.json"]),
        (store, ["loose_run.json"]),
    ]:
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_text("{}")
    return store


MID = "Linux-CPython-3.11-64bit"


@pytest.mark.parametrize(
    ("value", "machine", "expected"),
    [
        ("0001", MID, f"{MID}/0001_base.json"),
        ("0002", MID, f"{MID}/0002_base.json"),
        ("*base", MID, f"{MID}/0002_base.json"),
        ("*tuned", MID, f"{MID}/0003_tuned.json"),
        ("0003_tuned", MID, f"{MID}/0003_tuned.json"),
        ("", MID, f"{MID}/0003_tuned.json"),
        ("loose", MID, "loose_run.json"),
        ("*base", None, "Linux-CPython-3.12-64bit/0004_base.json"),
        ("0001", None, "Linux-CPython-3.12-64bit/0001_base.json"),
        ("*-3.12-*/0001", MID, "Linux-CPython-3.12-64bit/0001_base.json"),
    ],
)
def test_resolve_baseline_ids(
    storage: Path, value: str, machine: str | None, expected: str
) -> None:
    assert resolve_baseline(value, storage, machine) == storage / expected


@pytest.mark.parametrize(
    "value", ["", "0001", "0002", "*base", "*tuned", "loose", "*/0001", "0009", "0003_tuned.json"]
)
@pytest.mark.parametrize("machine", [MID, None])
def test_resolve_baseline_agrees_with_pytest_benchmark(
    storage: Path, value: str, machine: str | None
) -> None:
    # a bare --benchmark-compare loads FileStorage.load()'s default glob
    query = value or "[0-9][0-9][0-9][0-9]_"
    store: Any = FileStorage(storage, logger=None, default_machine_id=machine)  # type: ignore[no-untyped-call]
    theirs = store.query(query)
    ours = find_baselines(value, storage, machine)
    assert [p.resolve() for p in ours] == [p.resolve() for p in theirs]


def test_resolve_baseline_takes_an_existing_file_as_is(storage: Path) -> None:
    assert resolve_baseline(str(DATA / "baseline.json"), storage) == DATA / "baseline.json"


def test_resolve_baseline_errors_name_the_value_and_the_search(storage: Path) -> None:
    with pytest.raises(BaselineError) as info:
        resolve_baseline("base", storage, MID)
    message = str(info.value)
    assert "'base' is neither an existing file nor a saved run" in message
    assert f"{storage / MID / 'base*.json'} and {storage / 'base*.json'}" in message
    assert "use '*base'" in message

    with pytest.raises(BaselineError, match="not a saved-run query either"):
        resolve_baseline("a/b/c", storage, MID)
    with pytest.raises(BaselineError, match=r"a saved-run query leaves out '\.json': '0003_tuned'"):
        resolve_baseline("0003_tuned.json", storage, MID)
    with pytest.raises(BaselineError, match="does not exist"):
        resolve_baseline("0001", storage / "nowhere", MID)
    with pytest.raises(BaselineError, match="save a baseline first with --benchmark-save"):
        resolve_baseline("", storage / "nowhere", MID)


def test_local_machine_id_is_pytest_benchmarks() -> None:
    assert local_machine_id() == get_machine_id()  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------------
# issue 13: the gate must not pass by accident


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("throughput_gpbs:-10%",
         "--gate: bad gate rule 'throughput_gpbs:-10%': unknown metric 'throughput_gpbs'; "
         "expected one of: throughput_gbps, "),
        ("throughput_gbps:-10%@two_cpy",
         "--gate: bad gate rule 'throughput_gbps:-10%@two_cpy': unknown mode 'two_cpy'; "
         "expected modes from: one_copy, two_copy, zero_copy (the modes in BASE and NEW)"),
    ],
)  # fmt: skip
def test_unknown_metric_or_mode_is_bad_input(
    netcopy: Main, capsys: pytest.CaptureFixture[str], rules: str, expected: str
) -> None:
    code = compare(netcopy, DATA / "baseline.json", DATA / "rerun.json", "--gate", rules)
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"netcopy compare: error: {expected}")


def test_nothing_judged_fails_unless_allowed(
    netcopy: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    # other_machine.json counted no CPU time: every row is not comparable
    files = (DATA / "baseline.json", DATA / "other_machine.json", "--gate", "cpu_ns_per_byte:+5%")
    assert compare(netcopy, *files) == 3
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        "netcopy gate: nothing judged: all 2 rows of 2 benchmarks not comparable; "
        "a gate that judged nothing fails (--allow-empty accepts it)"
    )
    assert compare(netcopy, *files, "--allow-empty") == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        "netcopy gate: nothing judged: all 2 rows of 2 benchmarks not comparable "
        "(allowed by --allow-empty)"
    )


def test_no_benchmark_in_common_fails(
    netcopy: Main, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (DATA / "rerun.json").read_text()
    renamed = tmp_path / "renamed.json"
    renamed.write_text(text.replace('"mode": "two_copy"', '"mode": "two_copy_b"')
                       .replace('"mode": "one_copy"', '"mode": "one_copy_b"')
                       .replace('"mode": "zero_copy"', '"mode": "zero_copy_b"'))  # fmt: skip
    assert compare(netcopy, DATA / "baseline.json", renamed) == 3
    out = capsys.readouterr().out
    assert "netcopy gate: nothing judged: no benchmark is in both runs;" in out


@pytest.mark.parametrize("side", ["BASE", "NEW"])
def test_missing_absolute_path_is_one_line(
    netcopy: Main, capsys: pytest.CaptureFixture[str], tmp_path: Path, side: str
) -> None:
    store = tmp_path / ".benchmarks"
    (store / local_machine_id()).mkdir(parents=True)  # the storage exists
    missing = tmp_path / "nope.json"
    files = [missing, DATA / "rerun.json"] if side == "BASE" else [DATA / "rerun.json", missing]
    assert compare(netcopy, *files, "--storage", store) == 2
    err = capsys.readouterr().err
    assert err == f"netcopy compare: error: {side} {str(missing)!r} is not an existing file\n"


def test_resolve_baseline_absolute_missing_path(storage: Path) -> None:
    with pytest.raises(BaselineError) as info:
        resolve_baseline("/nonexistent.json", storage, MID)
    assert str(info.value) == "'/nonexistent.json' is not an existing file"


# ---------------------------------------------------------------------------
# issue 12: undecided rows are named, and fail only under --strict (exit 4)

ALL_BUT_USER = "throughput_vs_control:-15% cpu_vs_control:+15% syscalls_per_message:+10%"


def test_undecided_rows_are_named_and_fail_only_under_strict(
    netcopy: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    # other_machine.json counted no CPU time: cpu_vs_control is not comparable there,
    # throughput_vs_control is judged: a comparison with undecided rows
    args = (DATA / "baseline.json", DATA / "other_machine.json", "--gate", ALL_BUT_USER)
    assert compare(netcopy, *args) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("netcopy gate: no regression in 2 benchmarks; ")
    assert " undecided: two_copy-4096B-1t (cpu_vs_control: current: null (not counted)" in last
    assert compare(netcopy, *args, "--strict") == 4
    last = capsys.readouterr().out.splitlines()[-1]
    assert " undecided (fails a strict gate): two_copy-4096B-1t" in last
    # a regression is exit 1 with or without --strict
    assert compare(netcopy, DATA / "baseline.json", DATA / "slower.json", "--strict") == 1
    # and with nothing undecided, --strict passes
    assert compare(netcopy, DATA / "baseline.json", DATA / "rerun.json", "--gate", ALL_BUT_USER,
                   "--strict") == 0  # fmt: skip


def test_strict_is_in_the_help(netcopy: Main, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        netcopy(["compare", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--strict fail (exit 4) when a row is undecided" in out
    assert "4: undecided under --strict" in out
