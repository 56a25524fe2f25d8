"""The grid: tests that take netcopy_mode / netcopy_size / netcopy_threads are parametrized.

The options give the session's grid; ``@pytest.mark.netcopy(sizes=..., threads=...,
modes=...)`` narrows it for one test, checked as the options are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_netcopy.plugin.parsers import parse_modes, parse_sizes, parse_threads
from pytest_netcopy.plugin.state import STATE_KEY
from pytest_netcopy.results.schema import benchmark_id, group_id

GRID = ("netcopy_mode", "netcopy_size", "netcopy_threads")
#: the pattern axis (issue 16): parametrized when a test takes ``netcopy_pattern``
PATTERN_GRID = ("netcopy_pattern", "netcopy_rr_rate")
MARKER_PARSERS: dict[str, Callable[[str], list[Any]]] = {
    "sizes": parse_sizes,
    "threads": parse_threads,
    "modes": parse_modes,
}


def _marker_list(metafunc: pytest.Metafunc, key: str, default: list[Any]) -> list[Any]:
    """The marker's value for ``key`` (a value or a list), checked like the option."""
    marker = metafunc.definition.get_closest_marker("netcopy")
    if marker is None or marker.kwargs.get(key) is None:
        return default
    value = marker.kwargs[key]
    items = [value] if isinstance(value, (str, int)) else list(value)
    text = ",".join(str(v) for v in items)
    try:
        parsed: list[Any] = MARKER_PARSERS[key](text)
    except ValueError as exc:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: netcopy({key}={value!r}): {exc}"
        ) from None
    if key == "modes":
        registry = metafunc.config.stash[STATE_KEY].session.registry
        unknown = [m for m in parsed if m not in registry]
        if unknown:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: netcopy(modes={value!r}): unknown mode(s) "
                f"{', '.join(unknown)}; expected names from: {', '.join(registry.names())}"
            )
    return parsed


def grid_id(
    mode: str | None,
    size: int | None,
    threads: int | None,
    pattern: str = "stream",
    rate: float | None = None,
) -> str:
    """The test id of one point: ``two_copy-4096B-2t`` (``rr-two_copy-4096B-2t``,
    ``rr-two_copy-4096B-2t-1000tps``), or the parts the test takes."""
    if size and threads:
        if mode:
            return benchmark_id(mode, size, threads, pattern=pattern, rate=rate)
        return group_id(size, threads, pattern=pattern, rate=rate)
    parts = [
        None if pattern == "stream" else pattern,
        mode,
        f"{size}B" if size else None,
        f"{threads}t" if threads else None,
        None if rate is None else f"{rate:g}tps",
    ]
    return "-".join(p for p in parts if p)


def _points(metafunc: pytest.Metafunc, threads: list[int]) -> list[tuple[str, list[int], Any]]:
    """(pattern, its thread counts, its rates) of the test: one stream point unless the test
    takes ``netcopy_pattern``; rr at ``rr_threads``, at each rate if it takes the rate too."""
    if "netcopy_pattern" not in metafunc.fixturenames:
        return [("stream", threads, [None])]
    settings = metafunc.config.stash[STATE_KEY].session.settings
    rates: list[float | None] = (
        list(settings.rr_rate) if "netcopy_rr_rate" in metafunc.fixturenames else []
    )
    rr = ("rr", list(settings.rr_threads), rates or [None])
    return [("stream", threads, [None]) if p == "stream" else rr for p in settings.patterns]


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Parametrize the grid fixtures a test takes (sizes, then threads, then modes)."""
    used = [name for name in GRID + PATTERN_GRID if name in metafunc.fixturenames]
    if not used:
        return
    settings = metafunc.config.stash[STATE_KEY].session.settings
    modes = _marker_list(metafunc, "modes", settings.modes)
    sizes = _marker_list(metafunc, "sizes", settings.sizes)
    threads = _marker_list(metafunc, "threads", settings.threads)
    values, ids = [], []
    for pattern, counts, rates in _points(metafunc, threads):
        for size in sizes if "netcopy_size" in used else [None]:
            for count in counts if "netcopy_threads" in used else [None]:
                for rate in rates:
                    for mode in modes if "netcopy_mode" in used else [None]:
                        row = {"netcopy_mode": mode, "netcopy_size": size,
                               "netcopy_threads": count, "netcopy_pattern": pattern,
                               "netcopy_rr_rate": rate}  # fmt: skip
                        values.append(tuple(row[name] for name in used))
                        ids.append(grid_id(mode, size, count, pattern, rate))
    metafunc.parametrize(
        used, values, ids=ids, indirect=["netcopy_mode"] if "netcopy_mode" in used else False
    )
