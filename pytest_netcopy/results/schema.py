"""The results format's fixed points: its version, the keys every benchmark carries,
the benchmark id and group, and how a recorded number is read.

Everything that writes or reads a netcopy result names these from here, so the
format has one owner (documented in docs/results-schema.md).
"""

from __future__ import annotations

import math
from typing import Any

#: ``extra_info["netcopy_schema"]``: bump it, and note the change in
#: docs/results-schema.md, whenever a key changes meaning or type.
SCHEMA_VERSION = 1

#: extra_info keys every netcopy benchmark carries (schema 1).
REQUIRED_KEYS = (
    "netcopy_schema",
    "mode",
    "size",
    "threads",
    "messages_per_round",
    "bytes_per_round",
    "throughput_gbps",
    "throughput_gbps_per_connection",
    "ns_per_message",
    "rounds",
    "integrity",
    "placement",
    "sink_recv_buffer",
)


def group_id(size: int, threads: int, *, pattern: str = "stream", rate: float | None = None) -> str:
    """The pytest-benchmark group of a benchmark: modes side by side, ``4096B-2t``;
    request/response ``rr-4096B-2t``, on a schedule ``rr-4096B-2t-1000tps``."""
    group = f"{size}B-{threads}t"
    if pattern != "stream":
        group = f"{pattern}-{group}"
    if rate is not None:
        group += f"-{rate:g}tps"
    return group


def benchmark_id(
    mode: str, size: int, threads: int, *, pattern: str = "stream", rate: float | None = None
) -> str:
    """The readable id of one benchmark of the grid: ``two_copy-4096B-2t``; request/response
    ``rr-two_copy-4096B-2t`` (on a schedule ``rr-two_copy-4096B-2t-1000tps``)."""
    point = f"{mode}-{group_id(size, threads, rate=rate)}"
    return point if pattern == "stream" else f"{pattern}-{point}"


def as_float(value: Any) -> float | None:
    """A finite float, or None for null/missing/non-numeric/NaN (never a fake 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None
