"""The plugin's state of one pytest session, kept in ``config.stash``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_netcopy.bench.runner import NetcopySession


@dataclass(frozen=True)
class Recorded:
    """One benchmark's result (its ``extra_info``) and the test that produced it."""

    nodeid: str
    #: the test's name (``test_send_path[two_copy-4096B-2t]``), as pytest-benchmark names it
    name: str
    info: dict[str, Any]


@dataclass
class PluginState:
    """The bench session plus what only the plugin knows: sources and which test ran what."""

    session: NetcopySession
    #: option (Settings field) name -> the phrase naming where its value came from
    sources: Mapping[str, str]
    #: the results of the ``netcopy`` fixture, in the order the tests ran
    recorded: list[Recorded] = field(default_factory=list)
    #: the benchmarks (mode, size, threads) that were tried and failed
    failed: set[tuple[str, int, int]] = field(default_factory=set)

    def describe(self, name: str) -> str:
        return self.sources.get(name, name)

    def record(self, nodeid: str, name: str, info: dict[str, Any]) -> None:
        self.recorded.append(Recorded(nodeid, name, info))


STATE_KEY = pytest.StashKey[PluginState]()
