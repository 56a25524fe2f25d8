"""The README's worked example of a user's own mode: the root conftest.py's ``joined``.

It must work from a clone as the README says (``pytest benchmarks/
--netcopy-modes=two_copy,joined``), and loading it must change nothing else.
The functional run is tiny: one benchmark, 10 ms rounds, a fraction of a
second of sending.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_netcopy.results.schema import benchmark_id
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.send.modes import FunctionMode

ROOT = Path(__file__).resolve().parent.parent


def root_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("netcopy_root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_pytest(*args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh process from the repository root, as a user of a clone runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_hook_adds_joined_to_a_registry_and_nothing_else() -> None:
    registry = builtin_registry()
    before = registry.names()
    root_conftest().pytest_netcopy_add_modes(registry=registry)
    assert registry.names() == [*before, "joined"]
    mode = registry.get("joined")
    assert isinstance(mode, FunctionMode)
    assert mode.description == 'b"".join of the 8 fields into a new bytes object, then sendall.'


def test_send_joined_sends_the_fields_in_order() -> None:
    fields = [memoryview(bytes([i]) * 16) for i in range(8)]
    a, b = socket.socketpair()
    with a, b:
        root_conftest().send_joined(a, fields)
        a.shutdown(socket.SHUT_WR)
        received = b"".join(iter(lambda: b.recv(4096), b""))
    assert received == b"".join(fields)


def test_joined_runs_from_a_clone_with_a_verified_payload(tmp_path: Path) -> None:
    out = tmp_path / "joined.json"
    result = run_pytest(
        "benchmarks/",
        "--netcopy-modes=joined",
        "--netcopy-patterns=stream",  # the sweep's request/response points: tests/test_rr.py
        "--netcopy-sizes=4096",
        "--netcopy-threads=1",
        "--netcopy-round-time=0.01",
        "--netcopy-rounds=2",
        "--netcopy-timeout=30",
        f"--benchmark-json={out}",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = json.loads(out.read_text())
    by_param = {b["param"]: b for b in run["benchmarks"]}
    assert list(by_param) == [benchmark_id("joined", 4096, 1)] == ["joined-4096B-1t"]
    info = by_param["joined-4096B-1t"]["extra_info"]
    assert (info["mode"], info["size"], info["threads"]) == ("joined", 4096, 1)
    assert info["integrity"]["ok"] is True
    # the sink checked every byte of both measured rounds
    assert info["integrity"]["verified_bytes"] >= 2 * info["bytes_per_round"] > 0
    assert len(info["rounds"]["throughput_gbps"]) == 2


@pytest.mark.parametrize("modes", [None, "two_copy,joined"])
def test_the_root_conftest_leaves_the_default_modes_alone(modes: str | None) -> None:
    args = ["benchmarks/", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    args += [f"--netcopy-modes={modes}"] if modes else []
    args += ["--netcopy-sizes=4096", "--netcopy-threads=1", "--netcopy-patterns=stream"]
    result = run_pytest(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    wanted = modes.split(",") if modes else ["two_copy", "one_copy", "zero_copy"]
    ids = [f"benchmarks/test_sweep.py::test_send_path[{m}-4096B-1t]" for m in wanted]
    assert [line for line in result.stdout.splitlines() if "::" in line] == ids


def test_the_readme_shows_the_root_conftest_as_it_is() -> None:
    """The README's custom-mode example is conftest.py's code, docstring and __future__ aside."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your own send mode", 1)[1]
    shown = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = (ROOT / "conftest.py").read_text().split("from __future__ import annotations\n\n", 1)[1]
    assert shown == code
