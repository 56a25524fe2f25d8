"""Shared constants for the pytester tests."""

from __future__ import annotations

import os

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
