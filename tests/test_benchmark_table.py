"""pytest-benchmark's own terminal table must rank netcopy benchmarks by what they measure.

Every mode's rounds are calibrated to the same length, so a round of a slow mode
holds fewer messages than a fast mode's: ranked by round time, the slow mode can
come out "fastest" ``(1.0)``. The plugin makes the stats pytest-benchmark ranks
time per message (iterations = messages per round), and says so in the table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_benchmark.stats import Stats

from pytest_netcopy.bench.runner import per_message_stats
from pytest_netcopy.plugin import hooks

SIZE = 65536
#: calibration and warm-up messages of the slow mode: 8 probe messages (the
#: calibration's first round, 256 KiB at 64 KiB), then 1 warm-up round of the
#: 1 message per round those make it calibrate to (8 x 50 ms >> a 30 ms round)
SLOW_START = 9

CONFTEST = f"""
import time
from pytest_netcopy import FunctionMode

calls = [0]

def send_slow(sock, fields):
    '''Very slow while calibrating (so its rounds get 1 message), slow after.'''
    calls[0] += 1
    time.sleep(0.05 if calls[0] <= {SLOW_START} else 0.002)
    sock.sendall(b"".join(fields))

def pytest_netcopy_add_modes(registry):
    registry.add(FunctionMode("slow", send_slow))
"""

TEST = f"""
def test_sweep(netcopy, netcopy_mode):
    netcopy.run(size={SIZE}, threads=1)
"""

OPTIONS = (
    "-p", "no:xdist", "-p", "no:cacheprovider",
    "--netcopy-modes=two_copy,slow", "--netcopy-round-time=0.03", "--netcopy-rounds=3",
    "--netcopy-warmup-rounds=1", "--netcopy-control=none", "--netcopy-user-rounds=0",
    "--netcopy-counters=none", "--netcopy-timeout=30",
)  # fmt: skip


def table_rows(output: str) -> list[tuple[str, str]]:
    """The rows of pytest-benchmark's table: (name, the Min column as printed)."""
    rows = re.findall(r"^(test_sweep\[\w+\])\s+([\d,.]+ \([\d,.]+\)|[\d,.]+)", output, re.M)
    return [(name, value) for name, value in rows]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A two-mode sweep (two_copy and a mode far slower per message): its output and JSON."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_sweep.py").write_text(TEST)
    out = root / "run.json"
    # module scope: before conftest's autouse fixture that drops xdist's variables
    # (pytest-benchmark disables itself in an xdist worker)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *OPTIONS, f"--benchmark-json={out}", "--color=no"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, out


def test_the_table_ranks_the_faster_mode_first(sweep: tuple[str, Path]) -> None:
    output, path = sweep
    benches = {b["extra_info"]["mode"]: b for b in json.loads(path.read_text())["benchmarks"]}
    fast, slow = benches["two_copy"]["extra_info"], benches["slow"]["extra_info"]
    # what made the old table lie: the slow mode's rounds are the shorter ones
    assert min(slow["rounds"]["seconds"]) < min(fast["rounds"]["seconds"])
    assert fast["messages_per_second"] > 3 * slow["messages_per_second"]
    rows = table_rows(output)
    assert [name for name, _ in rows] == ["test_sweep[two_copy]", "test_sweep[slow]"], output
    assert rows[0][1].endswith("(1.0)"), output
    assert re.search(r"^Name \(time in per-message [num]?s\)", output, re.M), output


def test_the_stats_are_per_message_and_extra_info_is_netcopys(sweep: tuple[str, Path]) -> None:
    _, path = sweep
    for bench in json.loads(path.read_text())["benchmarks"]:
        extra, stats = bench["extra_info"], bench["stats"]
        assert extra["netcopy_schema"] == 1
        assert stats["iterations"] == extra["messages_per_round"]
        assert stats["rounds"] == len(extra["rounds"]["seconds"]) == 3
        # pytest-benchmark times the round around netcopy's own clock: a little longer (by
        # its bookkeeping, which a busy machine can stretch; not by a factor of the count)
        for per_message, seconds in zip(stats["data"], extra["rounds"]["seconds"], strict=True):
            assert seconds - 1e-6 <= per_message * extra["messages_per_round"] <= seconds + 0.05


def test_pytest_benchmark_compare_reads_the_json(sweep: tuple[str, Path]) -> None:
    _, path = sweep
    compare = Path(sys.executable).with_name("pytest-benchmark")
    result = subprocess.run(
        [str(compare), "compare", str(path)],
        cwd=path.parent, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_sweep[two_copy]" in result.stdout


def scale_unit(unit: str, benchmarks: list[dict[str, Any]]) -> tuple[str, float]:
    """The plugin's wrapper around pytest-benchmark's scale unit, given its result ("u", 1e6)."""
    wrapper = hooks.pytest_benchmark_scale_unit(None, unit, benchmarks, {}, {}, "min")
    next(wrapper)
    with pytest.raises(StopIteration) as stop:
        wrapper.send(("u", 1e6))
    result: tuple[str, float] = stop.value.value
    return result


def test_the_header_names_per_message_only_for_rows_that_are() -> None:
    netcopy = {"iterations": 32, "extra_info": {"netcopy_schema": 1, "messages_per_round": 32}}
    failed = {"iterations": 1, "extra_info": {"netcopy_schema": 1, "messages_per_round": 32}}
    other = {"iterations": 1, "extra_info": {}}
    assert scale_unit("seconds", [netcopy, netcopy]) == ("per-message u", 1e6)
    assert scale_unit("seconds", [failed, other]) == ("u", 1e6)
    assert scale_unit("operations", [netcopy]) == ("u", 1e6)
    mixed = scale_unit("seconds", [netcopy, other])[0]
    assert f"Name (time in {mixed}s)" == (
        "Name (time in us per call; netcopy rows: per message, in us)"
    )


def test_per_message_stats_divide_each_round_and_skip_a_disabled_benchmark() -> None:
    meta = SimpleNamespace(stats=Stats(), iterations=1)
    for seconds in (0.02, 0.04):
        meta.stats.update(seconds)
    per_message_stats(SimpleNamespace(stats=meta), 4)
    assert meta.iterations == 4
    assert meta.stats.data == [0.005, 0.01]
    assert meta.stats.min == 0.005  # nothing cached from the per-round data
    per_message_stats(SimpleNamespace(stats=None), 4)  # --benchmark-disable: no stats
