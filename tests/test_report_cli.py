"""``netcopy report`` and ``netcopy csv`` through ``cli.main``, against golden files.

The golden files live in tests/data/runs/golden/. After an intended change of
the output, regenerate them and review the diff:

    NETCOPY_REGEN_GOLDEN=1 pytest tests/test_report_cli.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_netcopy import cli
from pytest_netcopy.report.crossovers import crossovers_title
from pytest_netcopy.report.csvout import COLUMNS, REFERENCE_COLUMNS, csv_row
from pytest_netcopy.results.baseline import local_machine_id
from pytest_netcopy.results.runs import load_run

RUNS = Path(__file__).parent / "data" / "runs"
GOLDEN = RUNS / "golden"
REGEN = os.environ.get("NETCOPY_REGEN_GOLDEN") == "1"


def netcopy(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no golden file {path}: run with NETCOPY_REGEN_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), (
        f"output differs from {path}; if intended, regenerate: "
        "NETCOPY_REGEN_GOLDEN=1 pytest tests/test_report_cli.py"
    )


@pytest.fixture
def in_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from tests/data/runs so the reports name the files as given (stable goldens)."""
    monkeypatch.chdir(RUNS)


# ---------------------------------------------------------------------------
# golden output


@pytest.mark.usefixtures("in_runs")
@pytest.mark.parametrize(
    ("golden", "argv"),
    [
        ("report_pmu_plain.txt", ["report", "pmu_run.json", "--format", "plain"]),
        ("report_pmu_github.md", ["report", "pmu_run.json", "--format", "github"]),
        ("report_real_default.txt", ["report", "real_run.json"]),
        (
            "report_two_runs_plain.txt",
            ["report", "real_run.json", "real_run_nodelay.json", "--format", "plain"],
        ),
        (
            "report_two_runs_github.md",
            ["report", "real_run.json", "real_run_nodelay.json", "--format", "github"],
        ),
        ("csv_pmu.csv", ["csv", "pmu_run.json"]),
        ("csv_real.csv", ["csv", "real_run.json"]),
        # issue 16: request/response results and TCP_INFO (rr_run.json, make_rr_run.py)
        ("report_rr_default.txt", ["report", "rr_run.json"]),
        ("report_rr_github.md", ["report", "rr_run.json", "--format", "github"]),
        (
            "report_rr_two_runs_plain.txt",
            ["report", "real_run.json", "rr_run.json", "--format", "plain"],
        ),
        ("csv_rr.csv", ["csv", "rr_run.json"]),
    ],
)
def test_golden(capsys: pytest.CaptureFixture[str], golden: str, argv: list[str]) -> None:
    status, out, err = netcopy(capsys, *argv)
    assert (status, err) == (0, "")
    check_golden(golden, out)


@pytest.mark.usefixtures("in_runs")
def test_report_has_what_the_issue_asks(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = netcopy(capsys, "report", "pmu_run.json")
    assert status == 0
    for needle in (
        "12th Gen Intel(R) Core(TM) i7-12700 · 20 CPUs · kernel 6.8.0-49-generic",
        "Gbps",
        "messages/s",
        "ns per message",
        "sender CPU ns/byte",
        "sink CPU ns/byte",
        "syscalls/message",
        "cycles/byte",
        "zero-copy copied %",
        "* fastest mode",
        "threads=1: one_copy overtakes two_copy at 16384 B; "
        "zero_copy never overtakes copying (up to 65536 B)",
        "Nagle on (TCP_NODELAY off, the default)",
        "the kernel copied every send",
    ):
        assert needle in out


@pytest.mark.usefixtures("in_runs")
def test_report_of_the_real_run(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = netcopy(capsys, "report", "real_run.json", "--format", "plain")
    assert status == 0
    for needle in (
        "machine: AMD EPYC · 2 CPUs · kernel 6.18.44-fc-v657 · no hardware PMU",
        "Nagle on (TCP_NODELAY off, the default) · pinned: sender threads on CPU 0, sink on CPU 1",
        "sender CPU ns/byte",
        "sink CPU ns/byte",
        "syscalls/message",
        "not counted in this run: cycles/byte (cycles: not supported)",
        "Crossovers (measured sizes, median-round throughput):",
        "threads=1: one_copy overtakes two_copy at 65536 B; "
        "zero_copy never overtakes copying (up to 65536 B)",
        "threads=2: one_copy never overtakes two_copy (up to 65536 B); "
        "zero_copy never overtakes copying (up to 65536 B)",
        "the kernel copied every send",
    ):
        assert needle in out, needle
    assert "CORRUPT" not in out and "INTEGRITY FAILURE" not in out


@pytest.mark.usefixtures("in_runs")
def test_report_of_runs_from_two_machines(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = netcopy(capsys, "report", "real_run.json", "pmu_run.json", "--format", "plain")
    assert status == 0
    assert "the runs come from different machines: compare ratios, not absolutes" in out
    assert "PMUs cpu_atom, cpu_core" in out and "no hardware PMU" in out
    assert "pinned: sender threads on CPUs 0-18, sink on CPU 19" in out
    assert "run 2, threads=1: one_copy overtakes two_copy at 16384 B" in out


def _kind(value: Any) -> str:
    """A JSON value's type; null counts as a number (the schema's nullable numbers)."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return "number"
    return type(value).__name__


def same_shape(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ in keys (or their order) or value types."""
    if _kind(ours) != _kind(theirs):
        return [f"{path}: {_kind(ours)} vs {_kind(theirs)}"]
    if isinstance(ours, dict):
        if list(ours) != list(theirs):
            return [f"{path}: keys {list(ours)} vs {list(theirs)}"]
        return [d for key in ours for d in same_shape(ours[key], theirs[key], f"{path}.{key}")]
    if isinstance(ours, list) and ours and theirs:  # an empty list fits any element type
        pairs = (
            zip(ours, theirs, strict=True)
            if len(ours) == len(theirs)
            else ((item, theirs[0]) for item in ours)
        )
        return [d for i, (a, b) in enumerate(pairs) for d in same_shape(a, b, f"{path}[{i}]")]
    return []


def test_pmu_fixture_follows_the_real_schema() -> None:
    """pmu_run.json is hand-made (no PMU on the machine that made the real runs): it must
    have exactly the real run's keys, in the same order, with the same value types."""
    real = json.loads((RUNS / "real_run.json").read_text())
    pmu = json.loads((RUNS / "pmu_run.json").read_text())
    assert same_shape(pmu, real) == []
    assert [b["name"] for b in pmu["benchmarks"]] == [b["name"] for b in real["benchmarks"]]
    assert pmu["machine_info"]["netcopy"]["pmus"] == ["cpu_atom", "cpu_core"]
    assert real["machine_info"]["netcopy"]["pmus"] == []
    statuses = {
        entry["status"] for b in pmu["benchmarks"] for entry in b["extra_info"]["counters"].values()
    }
    assert statuses == {"ok", "scaled", "not counted"}


@pytest.mark.usefixtures("in_runs")
def test_report_flags_corrupt_results(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = json.loads((RUNS / "real_run.json").read_text())
    data["benchmarks"][4]["extra_info"]["integrity"]["ok"] = False
    broken = tmp_path / "corrupt.json"
    broken.write_text(json.dumps(data))
    status, out, _ = netcopy(capsys, "report", str(broken), "--format", "plain")
    assert status == 0
    assert "CORRUPT" in out
    assert "INTEGRITY FAILURE: the sink received wrong bytes in one_copy 256 B 2 threads" in out


def test_report_of_a_run_without_counter_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = json.loads((RUNS / "pmu_run.json").read_text())
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        for key in list(extra):
            if key in {"counters", "sink_counters", "syscalls_per_message"} or key.endswith(
                ("_per_byte", "_per_mb", "ipc")
            ):
                del extra[key]
        extra["rounds"].pop("cpu_ns_per_byte")
    old = tmp_path / "before_counters.json"
    old.write_text(json.dumps(data))
    status, out, _ = netcopy(capsys, "report", str(old), "--counters", "all", "--format", "plain")
    assert status == 0
    assert "cycles/byte" in out and "n/a" in out
    status, out, _ = netcopy(capsys, "report", str(old), "--format", "plain")
    assert "cycles/byte" not in out and "not counted" not in out
    status, out, _ = netcopy(capsys, "csv", str(old))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert all(row["CPU_Cycles"] == "" and row["CPU_ns_per_byte"] == "" for row in rows)


# ---------------------------------------------------------------------------
# csv


@pytest.mark.usefixtures("in_runs")
def test_csv_columns_and_honest_empty_cells(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = netcopy(capsys, "csv", "pmu_run.json")
    assert status == 0
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert COLUMNS[:10] == (
        "Implementation",
        "MessageSize",
        "NumThreads",
        "Throughput_Gbps",
        "TimePerMessage_ns",
        "CPU_Cycles",
        "Instructions",
        "LLC_Misses",
        "L1_Misses",
        "ContextSwitches",
    )
    rows = list(reader)
    assert len(rows) == 30
    assert [(r["Implementation"], r["MessageSize"], r["NumThreads"]) for r in rows[:4]] == [
        ("two_copy", "256", "1"),
        ("one_copy", "256", "1"),
        ("zero_copy", "256", "1"),
        ("two_copy", "256", "2"),
    ]
    starved = next(
        r
        for r in rows
        if (r["Implementation"], r["MessageSize"], r["NumThreads"]) == ("zero_copy", "256", "2")
    )
    assert starved["CPU_Cycles"] == starved["Cycles_per_byte"] == ""
    assert "cycles=not counted" in starved["CounterStatus"]
    assert starved["ContextSwitches"] != ""  # software counters still counted
    for row in rows:
        if row["CPU_Cycles"]:  # per message = cycles per byte x message size
            expected = float(row["Cycles_per_byte"]) * int(row["MessageSize"])
            assert float(row["CPU_Cycles"]) == pytest.approx(expected, rel=1e-4)
        expected_ns = 1e9 / float(row["MessagesPerSecond"])
        assert float(row["TimePerMessage_ns"]) == pytest.approx(expected_ns, rel=1e-4)
        assert row["ZeroCopy_Copied_pct"] == ("100" if row["Implementation"] == "zero_copy" else "")


@pytest.mark.usefixtures("in_runs")
def test_csv_without_pmu_never_writes_zero(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = netcopy(capsys, "csv", "real_run.json")
    rows = list(csv.DictReader(io.StringIO(out)))
    for row in rows:
        for column in ("CPU_Cycles", "Instructions", "LLC_Misses", "L1_Misses", "IPC"):
            assert row[column] == ""
        for column in ("ContextSwitches", "CPU_ns_per_byte", "Sink_CPU_ns_per_byte"):
            assert row[column] != ""  # software counters: counted
        assert float(row["Syscalls_per_message"]) >= 1.0  # one send per message at least
        assert float(row["Sink_Syscalls_per_message"]) > 0
        assert "cycles=not supported" in row["CounterStatus"]


@pytest.mark.usefixtures("in_runs")
def test_csv_counters_per_message_from_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    """counters hold totals over the measured rounds, all sender threads: per message is
    value / (messages_per_round x len(rounds.seconds))."""
    _, out, _ = netcopy(capsys, "csv", "real_run.json")
    rows = {
        (r["Implementation"], int(r["MessageSize"]), int(r["NumThreads"])): r
        for r in csv.DictReader(io.StringIO(out))
    }
    for result in load_run(RUNS / "real_run.json").results:
        extra = result.extra
        messages = extra["messages_per_round"] * len(extra["rounds"]["seconds"])
        expected = extra["counters"]["context-switches"]["value"] / messages
        assert float(rows[result.key]["ContextSwitches"]) == pytest.approx(expected, rel=1e-5)
        assert int(rows[result.key]["Rounds"]) == 5


def test_csv_carries_the_ratios_to_the_control(capsys: pytest.CaptureFixture[str]) -> None:
    gate_run = RUNS.parent / "gate" / "baseline.json"
    _, out, _ = netcopy(capsys, "csv", str(gate_run))
    rows = list(csv.DictReader(io.StringIO(out)))
    results = {r.key: r.extra for r in load_run(gate_run).results}
    assert len(rows) == len(results) > 0
    for row in rows:
        extra = results[(row["Implementation"], int(row["MessageSize"]), int(row["NumThreads"]))]
        assert float(row["Throughput_vs_Control"]) == pytest.approx(extra["throughput_vs_control"])
        assert float(row["CPU_vs_Control"]) == pytest.approx(extra["cpu_vs_control"])
        assert row["Control_Mode"] == "bare_send"
        control = extra["control"]
        assert float(row["Control_Throughput_Gbps"]) == pytest.approx(control["throughput_gbps"])
        assert float(row["Control_CPU_ns_per_byte"]) == pytest.approx(control["cpu_ns_per_byte"])


@pytest.mark.usefixtures("in_runs")
def test_csv_without_a_control_leaves_its_columns_empty(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = netcopy(capsys, "csv", "real_run.json")  # made before the control send
    for row in csv.DictReader(io.StringIO(out)):
        assert row["Throughput_Gbps"] != ""
        # made before the control send, the user-time pass and steal accounting
        for column in COLUMNS[-7:]:
            assert column.startswith(("Control_", "Throughput_vs_", "CPU_vs_", "User_", "Host_"))
            assert row[column] == ""


def test_csv_carries_user_cpu_and_steal(capsys: pytest.CaptureFixture[str]) -> None:
    gate_run = RUNS.parent / "gate" / "baseline.json"
    _, out, _ = netcopy(capsys, "csv", str(gate_run))
    results = {r.key: r.extra for r in load_run(gate_run).results}
    for row in csv.DictReader(io.StringIO(out)):
        extra = results[(row["Implementation"], int(row["MessageSize"]), int(row["NumThreads"]))]
        assert float(row["User_CPU_ns_per_byte"]) == pytest.approx(extra["user_cpu_ns_per_byte"])
        assert row["Host_Steal_ms"] == ""  # not recorded in that run: empty, not 0
        stolen = csv_row({**extra, "steal_ms": 20.0})
        assert float(stolen["Host_Steal_ms"]) == 20.0


def test_the_crossovers_title_names_the_figure_of_every_row() -> None:
    def extra(mode: str, size: int, ratio: float | None) -> dict[str, Any]:
        return {"mode": mode, "size": size, "threads": 1, "throughput_gbps": 10.0,
                "throughput_vs_control": ratio}  # fmt: skip

    both = [extra("two_copy", 4096, 0.9), extra("one_copy", 4096, 0.8)]
    bare = [extra("two_copy", 65536, None), extra("one_copy", 65536, None)]
    half = [extra("two_copy", 16384, 0.9), extra("one_copy", 16384, None)]
    assert crossovers_title(both).endswith("throughput against the control)")
    assert crossovers_title(bare).endswith("median-round throughput)")
    # one row ranked by Gbps (one_copy has no ratio there), one by the ratio
    assert crossovers_title(both + half).endswith(
        "against the control where every mode of the row has one, else Gbps)"
    )
    assert crossovers_title(both + bare) == crossovers_title(both + half)


@pytest.mark.usefixtures("in_runs")
def test_csv_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    status, out, err = netcopy(capsys, "csv", "real_run.json", "-o", str(target))
    assert (status, out) == (0, "")
    assert f"30 rows written to {target}" in err
    assert target.read_text().splitlines()[0].startswith(",".join(REFERENCE_COLUMNS))


# ---------------------------------------------------------------------------
# input errors: one line naming the file, exit 2


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", ["report", "csv", "plot"])
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("", "is empty"),
        ('{"benchmarks": [', "is not valid JSON"),
        ('{"hello": 1}', "is not pytest-benchmark output"),
        (
            json.dumps({"benchmarks": [{"name": "test_x", "extra_info": {}, "stats": {}}]}),
            "has no netcopy benchmarks",
        ),
    ],
)
def test_bad_input_names_the_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    content: str | None,
    problem: str,
) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    argv = [command, str(path)] + (["-o", str(tmp_path / "plots")] if command == "plot" else [])
    status, out, err = netcopy(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.startswith(f"netcopy {command}: error: {path}: {problem}")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "plots").exists()


def test_second_run_broken(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.json", "[]")
    status, out, err = netcopy(capsys, "report", str(RUNS / "pmu_run.json"), bad)
    assert (status, out) == (2, "")
    assert f"{bad}: is not pytest-benchmark output" in err


def test_saved_run_ids_from_storage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / local_machine_id()
    folder.mkdir()
    shutil.copy(RUNS / "pmu_run.json", folder / "0001_base.json")
    shutil.copy(RUNS / "real_run.json", folder / "0002_later.json")
    status, out, _ = netcopy(capsys, "report", "0001", "*later", "--storage", str(tmp_path))
    assert status == 0
    assert "0001_base.json" in out and "0002_later.json" in out
    status, out, err = netcopy(capsys, "csv", "*nothing", "--storage", str(tmp_path))
    assert (status, out) == (2, "")
    assert err.startswith(
        "netcopy csv: error: '*nothing' is neither an existing file nor a saved run"
    )


def test_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = netcopy(capsys, "report", str(RUNS / "pmu_run.json"), "--format", "fancy")
    assert status == 2
    assert "--format 'fancy' is not a table format; choose one of" in err
    assert "github" in err


# ---------------------------------------------------------------------------
# --help and matplotlib as an optional extra


@pytest.mark.parametrize(
    ("command", "needles"),
    [
        ("report", ["--format FMT", "github (markdown)", "not latency", "--counters"]),
        ("csv", ["PER MESSAGE", "TimePerMessage_ns", "NOT latency", "never a fake 0", "-o FILE"]),
        ("plot", ["-o DIR", "--dpi N", "pip install 'pytest-netcopy[plot]'", "error bars"]),
    ],
)
def test_help(capsys: pytest.CaptureFixture[str], command: str, needles: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())
    for needle in needles:
        assert needle in text, needle


def test_plot_without_matplotlib_says_how_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out_dir = tmp_path / "plots"
    status, out, err = netcopy(capsys, "plot", str(RUNS / "pmu_run.json"), "-o", str(out_dir))
    assert (status, out) == (2, "")
    assert "netcopy plot: error: netcopy plot needs matplotlib" in err
    assert "pip install 'pytest-netcopy[plot]'" in err
    assert not out_dir.exists()


def test_package_imports_without_matplotlib() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import pytest_netcopy.cli.report, pytest_netcopy.report.plots\n"
        "import pytest_netcopy.report.tables, pytest_netcopy.report.csvout\n"
        "import pytest_netcopy.report.document, pytest_netcopy.report.plots_crossover\n"
        "print('ok')\n"
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")
