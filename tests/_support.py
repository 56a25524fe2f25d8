"""Shared constants for the pytester tests, and the loader of benchmarks/ scripts."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

#: the repository's benchmarks/ directory (its scripts are not a package)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: options that keep a pytester run of the plugin short
FAST = (
    "-p", "no:cacheprovider",
    "-W", "error",
    "--netcopy-round-time=0.002",
    "--netcopy-rounds=2",
    "--netcopy-warmup-rounds=0",
    "--netcopy-timeout=20",
)  # fmt: skip

SWEEP = """
def test_send_path(netcopy, netcopy_mode, netcopy_size, netcopy_threads):
    result = netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads)
    assert result.intact
"""


def perf_fds() -> set[str]:
    """This process's open perf_event file descriptors."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]":
                fds.add(fd)
        except OSError:
            continue
    return fds


def load_script(name: str, path: Path) -> ModuleType:
    """The script at ``path`` imported as module ``name`` (kept in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
