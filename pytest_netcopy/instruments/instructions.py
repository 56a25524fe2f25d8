"""User-mode instructions on the sender threads from the PMU (``exclude_kernel``).

:class:`~pytest_netcopy.instruments.counters.ThreadCounters` counts
``instructions`` with the kernel's included, and falls back to user mode only when
the kernel refuses; this counts user mode only, on purpose: the sender's own code,
which no speed of the network path moves. Without a PMU the event is ``not
supported`` and the bench counts under valgrind instead
(:mod:`pytest_netcopy.instruments.cachegrind`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_netcopy.instruments.counters import EVENTS, _default_sys
from pytest_netcopy.instruments.perf_abi import PerfSys, discover_core_pmus
from pytest_netcopy.instruments.perf_groups import GroupPlan, OpenFailure, PerfGroups

__all__ = ["EVENT", "UserInstructions"]

#: the one event counted
EVENT = "instructions"


class UserInstructions(PerfGroups):
    """``instructions`` with exclude_kernel=1 (and exclude_hv) on each thread: read,
    enable, a round, disable, read, as the other counters (``region()``)."""

    def __init__(
        self, tids: Sequence[int], sys: PerfSys | None = None, sysfs_root: str | Path = "/sys"
    ) -> None:
        super().__init__(tids, [EVENT], sys, _default_sys)
        self.pmus = discover_core_pmus(sysfs_root)

    def _plan(self) -> list[GroupPlan]:
        event = EVENTS[EVENT]
        if len(self.pmus) > 1:  # hybrid: one group per core PMU, type in config bits 32+
            groups = [(p.name, (event.on_pmu(p.type),)) for p in self.pmus]
        else:
            groups = [(self.pmus[0].name if self.pmus else "cpu", (event,))]
        return [
            GroupPlan(tid, label, specs, fallback=False)
            for tid in self.tids
            for label, specs in groups
        ]

    def _open_group(self, plan: GroupPlan) -> None:
        group, failed = self._try_group(plan, exclude_kernel=True)
        if group is not None:
            self._groups.append(group)
        self._failures.extend(OpenFailure(plan.tid, plan.label, n, s) for n, s in failed.items())
