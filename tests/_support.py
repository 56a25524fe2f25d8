"""Shared constants for the pytester tests."""

from __future__ import annotations

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
