"""The order modes are shown in, and which mode of a size and thread count is fastest."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.results.schema import as_float

#: The reference modes in the order they are shown; other modes follow alphabetically.
MODE_ORDER = ("two_copy", "one_copy", "zero_copy")


def mode_rank(mode: str) -> tuple[int, str]:
    """Sort key: two_copy, one_copy, zero_copy, then other modes alphabetically."""
    try:
        return (MODE_ORDER.index(mode), mode)
    except ValueError:
        return (len(MODE_ORDER), mode)


def order_modes(modes: Iterable[str]) -> list[str]:
    return sorted(set(modes), key=mode_rank)


def index_results(results: Iterable[Extra]) -> dict[tuple[int, int], dict[str, Extra]]:
    """{(size, threads): {mode: extra}}; a later duplicate of (mode, size, threads) wins."""
    table: dict[tuple[int, int], dict[str, Extra]] = {}
    for extra in results:
        key = (int(extra["size"]), int(extra["threads"]))
        table.setdefault(key, {})[str(extra["mode"])] = extra
    return dict(sorted(table.items()))


def speed_key(by_mode: Mapping[str, Extra]) -> str:
    """Which figure ranks the modes of one size and thread count.

    ``throughput_vs_control`` where every mode with a throughput has it: each
    mode ran against the same control send at its own time, so a change of the
    machine's speed between two benchmarks cancels out (one_copy measured in a
    fast spell and two_copy in a slow one would otherwise look 40% apart).
    Else ``throughput_gbps``.
    """
    measured = [e for e in by_mode.values() if as_float(e.get("throughput_gbps")) is not None]
    if measured and all(as_float(e.get("throughput_vs_control")) is not None for e in measured):
        return "throughput_vs_control"
    return "throughput_gbps"


def comparable_speeds(by_mode: Mapping[str, Extra]) -> dict[str, float]:
    """Per mode of one size and thread count, the figure to rank by (:func:`speed_key`)."""
    key = speed_key(by_mode)
    speeds = {mode: as_float(extra.get(key)) for mode, extra in by_mode.items()}
    return {mode: value for mode, value in speeds.items() if value is not None}


def fastest_mode(by_mode: Mapping[str, Extra]) -> str | None:
    """The fastest mode by :func:`comparable_speeds` (ties: the first in display order)."""
    speeds = comparable_speeds(by_mode)
    best: tuple[float, str] | None = None
    for mode in order_modes(speeds):
        if best is None or speeds[mode] > best[0]:
            best = (speeds[mode], mode)
    return None if best is None else best[1]
