"""benchmarks/rr_anchor.py: sockperf's full log read as round trips, the ABBA order of the
slices and of the time-shared turns, a paused process that runs only in its turns,
histograms merged as if every round trip had been recorded in one, and whole (short) runs
of both methods against the real sockperf, nothing left running."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import BENCHMARKS, load_script

from pytest_netcopy.transport.rr import new_histogram, record_all

anchor = load_script("rr_anchor", BENCHMARKS / "rr_anchor.py")

#: the head and first rows of a log written by sockperf 3.7 (``--full-rtt --full-log``)
FULL_LOG = """\
sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; SentMessages=13699;
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=3; ReceivedMessages=3
sockperf: ---> percentile 50.000 =   62.863
------------------------------
packet, txTime(sec), rxTime(sec), rtt(usec)
0, 2.415593169, 2.415656403, 63.234
1, 2.415656453, 2.415719316, 62.863
2, 2.415719366, 2.415779985, 60.619
------------------------------
"""


def test_the_full_log_gives_every_round_trip_in_ns() -> None:
    assert anchor.full_log_round_trips(FULL_LOG) == [63_234, 62_863, 60_619]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sockperf: Test ended\n", "no rtt column"),
        ("packet, txTime(sec), rxTime(sec), rtt(usec)\n------\n", "no round trips"),
    ],
)
def test_a_log_without_round_trips_is_an_error_not_an_empty_side(text: str, says: str) -> None:
    with pytest.raises(RuntimeError, match=says):
        anchor.full_log_round_trips(text)


def test_slices_alternate_abba_so_a_steady_drift_falls_on_every_side_alike() -> None:
    calls: list[str] = []

    def arm(name: str) -> object:
        return lambda: calls.append(name) or len(calls)

    got = anchor.interleave({n: arm(n) for n in "ABC"}, 4)
    assert "".join(calls) == "ABCCBAABCCBA"
    # each side's slices in the order they ran; the mean position of each side is the same
    assert got == {"A": [1, 6, 7, 12], "B": [2, 5, 8, 11], "C": [3, 4, 9, 10]}


def test_time_shared_turns_alternate_abba_and_end_as_soon_as_ours_has_finished() -> None:
    calls: list[str] = []
    turns = [lambda n=n: calls.append(n) for n in "ABC"]  # type: ignore[misc]
    taken = anchor.take_turns(turns, lambda: calls.count("B") == 3, "ours")
    assert "".join(calls) == "ABCCBAAB"  # not one turn after B's third
    assert taken == 8


def test_time_shared_turns_give_up_after_their_limit() -> None:
    with pytest.raises(RuntimeError, match=r"^64 B: our run had not finished after 0.05 s$"):
        anchor.take_turns([lambda: time.sleep(0.01)], lambda: False, "64 B: our run", 0.05)


#: a process that counts every 5 ms into a file, with a child that only sleeps
COUNTER = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "a") as out:
    while True:
        out.write("x"); out.flush(); time.sleep(0.005)
"""


def test_a_paused_process_runs_only_in_its_turns_and_ends_with_its_group(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks"
    argv = [sys.executable, "-c", COUNTER, str(ticks)]
    paused = anchor.Paused("counter", argv, 0.4, tmp_path / "log")
    try:
        paused.turn()
        assert paused.proc is not None and not paused.finished()
        first = ticks.read_text()
        assert first  # it ran in its turn
        time.sleep(0.3)
        assert ticks.read_text() == first  # and not between turns
        assert state(paused.proc.pid) == "T"
        group = members(paused.proc.pid)
        assert len(group) == 2  # the counter and its child
        paused.turn()
        assert len(ticks.read_text()) > len(first)
        assert paused.turns == 2
    finally:
        paused.end()
    assert paused.finished()
    assert wait_gone(group) == set()


def test_a_paused_process_that_fails_says_how_and_what_it_printed(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('no sink here'); raise SystemExit(3)"]
    paused = anchor.Paused("our pytest run", argv, 5.0, tmp_path / "log")
    paused.turn()
    assert paused.finished()
    with pytest.raises(RuntimeError, match=r"^our pytest run exited with 3: no sink here"):
        paused.result()


def test_a_failed_time_shared_sockperf_run_is_one_line_and_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @contextlib.contextmanager
    def server() -> Iterator[int]:
        yield 9

    def refused(port: int, size: int, seconds: int) -> list[int]:
        raise RuntimeError(f"sockperf ping-pong -m {size} failed: connection refused")

    monkeypatch.setattr(anchor.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(anchor, "sockperf_server", server)
    monkeypatch.setattr(anchor, "sockperf_client", refused)
    assert anchor.main(["--sizes", "64", "--plain"]) == 1
    assert capsys.readouterr().err == (
        "rr_anchor: sockperf ping-pong -m 64 failed: connection refused\n"
    )


def test_merged_slices_give_the_percentiles_of_all_their_round_trips() -> None:
    fast = [50_000 + 7 * i for i in range(3_000)]
    slow = [90_000 + 11 * i for i in range(1_000)]
    ours = new_histogram()
    record_all(ours, slow)
    # one slice as sockperf's list, one as our decoded histogram
    total = anchor.merged([fast, ours])
    every = new_histogram()
    record_all(every, fast + slow)
    assert anchor.percentiles(total) == anchor.percentiles(every)
    assert anchor.percentiles(total)["transactions"] == 4_000
    # and the encoded form (what our JSON holds) merges the same
    decoded = anchor.HdrHistogram.decode(ours.encode())
    assert anchor.percentiles(anchor.merged([fast, decoded])) == anchor.percentiles(every)


def test_without_sockperf_it_says_which_package_brings_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(anchor.shutil, "which", lambda tool: None)
    assert anchor.main(["--slices", "1"]) == 2
    assert "sockperf not found (Debian: sockperf" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--slices", "0", "'0': expected a whole number of at least 1"),
        ("--transactions", "many", "'many': expected a whole number of at least 1"),
        ("--sizes", "64,70000", "'64,70000': expected comma-separated sizes of 1..65535 B"),
        ("--sizes", "64,", "'64,': expected comma-separated sizes"),
        ("--quantum", "0", "'0': expected seconds, more than 0"),
        ("--quantum", "soon", "'soon': expected seconds, more than 0"),
        ("--method", "abba", "invalid choice: 'abba' (choose from"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_option(
    option: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        anchor.main([option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {says}" in err
    assert "Traceback" not in err


def test_a_failed_slice_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(size: int, seconds: int) -> list[int]:
        raise RuntimeError(f"sockperf ping-pong -m {size} failed: connection refused")

    monkeypatch.setattr(anchor.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(anchor, "sockperf_slice", refused)
    assert anchor.main(["--method", "slices", "--sizes", "64", "--slices", "1"]) == 1
    assert capsys.readouterr().err == (
        "rr_anchor: sockperf ping-pong -m 64 failed: connection refused\n"
    )


@pytest.mark.skipif(
    shutil.which("sockperf") is None, reason="needs sockperf (Debian package sockperf)"
)
def test_a_short_sliced_run_against_the_real_sockperf(tmp_path: Path) -> None:
    row = run_anchor(
        tmp_path / "anchor.json", "--method", "slices", "--sizes", "64", "--slices", "2",
        "--seconds", "1", "--transactions", "1000", "--plain",
    )  # fmt: skip
    assert row["pair"] == 1 and row["size"] == 64
    assert set(row["merged"]) == {"sockperf", "ours", "plain_python"}
    for side, slices in row["slices"].items():
        assert len(slices) == 2, side
        merged = row["merged"][side]
        assert merged["transactions"] == sum(s["transactions"] for s in slices), side
        assert 0 < merged["p50_us"] <= merged["p99_us"], side
    assert [s["transactions"] for s in row["slices"]["plain_python"]] == [1000, 1000]
    assert all(s["transactions"] >= 1000 for s in row["slices"]["ours"])
    assert all(s["transactions"] > 100 for s in row["slices"]["sockperf"])


def run_anchor(out: Path, *args: str) -> dict[str, Any]:
    """The script run with ``args`` and ``--json out``: its one row. Its sockperf servers,
    our sinks and bare loops were stopped: none is left running (it would be an orphan
    now; other xdist workers' sinks have a parent)."""
    before = orphaned_sockperfs() | orphaned_python(*LEFT_BEHIND)
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "rr_anchor.py"), *args, "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pairs within the bar" in proc.stdout
    assert orphaned_sockperfs() - before == set()
    assert orphaned_python(*LEFT_BEHIND) - before == set()
    (row,) = json.loads(out.read_text())
    return dict(row)


def orphaned_sockperfs() -> set[int]:
    """The pids of sockperf processes whose parent is gone (adopted by init)."""
    ps = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,comm="], capture_output=True, text=True, check=True
    )
    rows = (line.split() for line in ps.stdout.splitlines())
    return {int(r[0]) for r in rows if len(r) == 3 and r[1] == "1" and r[2] == "sockperf"}


@pytest.mark.skipif(
    shutil.which("sockperf") is None, reason="needs sockperf (Debian package sockperf)"
)
def test_a_short_time_shared_run_against_the_real_sockperf(tmp_path: Path) -> None:
    row = run_anchor(
        tmp_path / "anchor.json", "--sizes", "64", "--transactions", "2000",
        "--quantum", "0.3", "--plain",
    )  # fmt: skip
    assert row["method"] == "time-shared"
    assert set(row["merged"]) == set(row["turns"]) == {"sockperf", "ours", "plain_python"}
    # ours' one run took several turns; sockperf ran once per turn of its own
    assert row["turns"]["ours"] >= 2
    assert len(row["slices"]["sockperf"]) == row["turns"]["sockperf"] >= 1
    runs = row["slices"]["sockperf"]
    assert row["merged"]["sockperf"]["transactions"] == sum(r["transactions"] for r in runs)
    assert row["merged"]["ours"]["transactions"] >= 2000
    # the bare loop ran in its turns until it was told to stop, and kept what it measured
    assert row["merged"]["plain_python"]["transactions"] > 100
    for side, figures in row["merged"].items():
        assert 0 < figures["p50_us"] <= figures["p99_us"], side


def state(pid: int) -> str:
    """A process's state letter (R, S, T, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def members(pgid: int) -> set[int]:
    """The pids of process group ``pgid``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.add(int(entry.name))
    return pids


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """Those of ``pids`` still alive (not zombies) after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        alive = set()
        for pid in pids:
            with contextlib.suppress(OSError, IndexError):
                if state(pid) != "Z":
                    alive.add(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


#: what a run of the script starts besides sockperf: our sink, the bare loop's process
LEFT_BEHIND = ("pytest_netcopy.sink", "--plain-worker")


def orphaned_python(*words: str) -> set[int]:
    """The pids of processes adopted by init whose command line holds one of ``words``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError, IndexError):
                ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if ppid == "1" and any(word in cmdline for word in words):
                    pids.add(int(entry.name))
    return pids
