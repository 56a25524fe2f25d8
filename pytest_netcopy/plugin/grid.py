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


def grid_id(mode: str | None, size: int | None, threads: int | None) -> str:
    """The test id of one point: ``two_copy-4096B-2t``, or the parts the test takes."""
    if size and threads:
        return benchmark_id(mode, size, threads) if mode else group_id(size, threads)
    parts = [mode, f"{size}B" if size else None, f"{threads}t" if threads else None]
    return "-".join(p for p in parts if p)


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Parametrize the grid fixtures a test takes (sizes, then threads, then modes)."""
    used = [name for name in GRID if name in metafunc.fixturenames]
    if not used:
        return
    settings = metafunc.config.stash[STATE_KEY].session.settings
    modes = _marker_list(metafunc, "modes", settings.modes)
    sizes = _marker_list(metafunc, "sizes", settings.sizes)
    threads = _marker_list(metafunc, "threads", settings.threads)
    values, ids = [], []
    for size in sizes if "netcopy_size" in used else [None]:
        for count in threads if "netcopy_threads" in used else [None]:
            for mode in modes if "netcopy_mode" in used else [None]:
                row = {"netcopy_mode": mode, "netcopy_size": size, "netcopy_threads": count}
                values.append(tuple(row[name] for name in used))
                ids.append(grid_id(mode, size, count))
    metafunc.parametrize(
        used, values, ids=ids, indirect=["netcopy_mode"] if "netcopy_mode" in used else False
    )
