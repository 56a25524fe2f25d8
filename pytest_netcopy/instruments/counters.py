"""Per-thread counters and syscall counts through perf_event_open (ctypes, no perf binary).

Per round: ``before = c.read(); c.enable(); <round>; c.disable(); delta(before,
c.read())`` (or ``with c.region() as values``). Per thread a software group and a
hardware group per core PMU (hybrid: PMU type in config bits 32+); the groups are
opened, switched and read by :mod:`.perf_groups`, which also says how a count
became what it is (:mod:`.status`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_netcopy.instruments.perf_abi import (
    TYPE_HARDWARE,
    TYPE_HW_CACHE,
    TYPE_SOFTWARE,
    TYPE_TRACEPOINT,
    CorePmu,
    discover_core_pmus,
    read_procfs_int,
    syscall_tracepoint_ids,
)
from pytest_netcopy.instruments.perf_abi import CtypesPerfSys as CtypesPerfSys  # re-exported
from pytest_netcopy.instruments.perf_abi import EventDef as EventDef
from pytest_netcopy.instruments.perf_abi import PerfSys as PerfSys
from pytest_netcopy.instruments.perf_abi import TracepointKeeper as TracepointKeeper
from pytest_netcopy.instruments.perf_abi import perf_machine_info as perf_machine_info
from pytest_netcopy.instruments.perf_groups import FULL_COUNT_EVENTS as FULL_COUNT_EVENTS
from pytest_netcopy.instruments.perf_groups import KERNEL_ONLY_EVENTS as KERNEL_ONLY_EVENTS
from pytest_netcopy.instruments.perf_groups import GroupPlan, OpenFailure, PerfGroups
from pytest_netcopy.instruments.perf_groups import GroupReading as GroupReading
from pytest_netcopy.instruments.perf_groups import Snapshot as Snapshot
from pytest_netcopy.instruments.perf_groups import delta as delta
from pytest_netcopy.instruments.status import NOT_COUNTED as NOT_COUNTED
from pytest_netcopy.instruments.status import NOT_PERMITTED as NOT_PERMITTED
from pytest_netcopy.instruments.status import NOT_SUPPORTED as NOT_SUPPORTED
from pytest_netcopy.instruments.status import OK as OK
from pytest_netcopy.instruments.status import SCALED as SCALED
from pytest_netcopy.instruments.status import STATUSES as STATUSES
from pytest_netcopy.instruments.status import USER_ONLY as USER_ONLY
from pytest_netcopy.instruments.status import CounterValue as CounterValue

#: how the hint starts when some events really count user mode only
PARANOID_HINT = "perf counters fell back to user-only counting"
PARANOID_FIX = "Run `sysctl kernel.perf_event_paranoid=1` or grant CAP_PERFMON to count kernel work"


EVENTS: dict[str, EventDef] = {
    e.name: e
    for e in (
        EventDef("task-clock", TYPE_SOFTWARE, 1),
        EventDef("context-switches", TYPE_SOFTWARE, 3),
        EventDef("cpu-migrations", TYPE_SOFTWARE, 4),
        EventDef("page-faults", TYPE_SOFTWARE, 2),
        EventDef("cycles", TYPE_HARDWARE, 0),
        EventDef("instructions", TYPE_HARDWARE, 1),
        EventDef("cache-misses", TYPE_HARDWARE, 3),
        EventDef("L1-dcache-load-misses", TYPE_HW_CACHE, 0x10000),  # L1D | READ | MISS
        EventDef("LLC-load-misses", TYPE_HW_CACHE, 0x10002),  # LL | READ | MISS
    )
}
DEFAULT_EVENTS: tuple[str, ...] = tuple(EVENTS)


def parse_counter_selection(text: str) -> list[str]:
    """``default`` -> all events, ``none`` -> [], else a comma list of event names."""
    word = text.strip()
    if word == "default":
        return list(DEFAULT_EVENTS)
    if word == "none":
        return []
    names = [n.strip() for n in word.split(",") if n.strip()]
    bad = [n for n in names if n not in EVENTS]
    if bad or not names:
        what = ", ".join(repr(n) for n in bad) if bad else repr(text)
        raise ValueError(
            f"unknown counter selection {what}: use 'default', 'none' or a comma-separated "
            f"list of {', '.join(EVENTS)}"
        )
    return list(dict.fromkeys(names))


def _default_sys() -> PerfSys:
    return CtypesPerfSys()  # looked up here when called: tests put a fake in its place


class ThreadCounters(PerfGroups):
    """Software and hardware counters for existing threads, attached by thread id."""

    def __init__(
        self,
        tids: Sequence[int],
        events: Sequence[str],
        sys: PerfSys | None = None,
        sysfs_root: str | Path = "/sys",
        procfs_root: str | Path = "/proc",
    ) -> None:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValueError(f"unknown counter events {unknown}: valid are {', '.join(EVENTS)}")
        super().__init__(tids, list(dict.fromkeys(events)), sys, _default_sys)
        self.procfs_root = procfs_root
        self.pmus: list[CorePmu] = discover_core_pmus(sysfs_root)

    def _plan(self) -> list[GroupPlan]:
        chosen = [EVENTS[e] for e in self.events]
        software = tuple(e for e in chosen if not e.hardware)
        hardware = tuple(e for e in chosen if e.hardware)
        if len(self.pmus) > 1:  # hybrid: one group per core PMU, type in config bits 32+
            hw_groups = [(p.name, tuple(e.on_pmu(p.type) for e in hardware)) for p in self.pmus]
        else:
            hw_groups = [(self.pmus[0].name if self.pmus else "cpu", hardware)]
        plans = []
        for tid in self.tids:
            if software:
                plans.append(GroupPlan(tid, "software", software, fallback=True))
            if hardware:
                plans.extend(
                    GroupPlan(tid, label, specs, fallback=True) for label, specs in hw_groups
                )
        return plans

    @property
    def user_only_fallback(self) -> bool:
        """Whether any group had to fall back to exclude_kernel=1 (also after close)."""
        return self._fell_back

    def fallback_hint(self) -> str | None:
        """The one-time hint for the user when a fallback happened, else None.

        It says what was really counted: which events count user mode only, which
        could not be counted at all, and that task-clock still counts all CPU time.
        """
        if not self.user_only_fallback:
            return None
        paranoid = read_procfs_int(self.procfs_root, "sys/kernel/perf_event_paranoid")
        fell = [e for e in self.events if e in self._fell_back_events]
        user = [e for e in fell if e not in KERNEL_ONLY_EVENTS | FULL_COUNT_EVENTS]
        lost = [e for e in fell if e in KERNEL_ONLY_EVENTS]
        whole = [e for e in fell if e in FULL_COUNT_EVENTS]
        head = PARANOID_HINT if user else "perf counters were refused kernel-side counting"
        parts = []
        if user:
            parts.append(
                f"{', '.join(user)} count user mode only (kernel work such as the kernel "
                "side of send() is not counted)"
            )
        if lost:
            parts.append(f"{', '.join(lost)} are not counted")
        if whole:
            parts.append(f"{', '.join(whole)} still counts all CPU time, user and kernel")
        return (
            f"{head} (kernel.perf_event_paranoid = {paranoid}): {'; '.join(parts)}. {PARANOID_FIX}"
        )


class SyscallCounters(PerfGroups):
    """Per-thread counts of ``syscalls/sys_enter_<name>`` tracepoints (an untimed pass).

    ``delta`` gives ``{name: {"value": count or None, "status", "running_fraction"}}``;
    a name without tracepoint is ``not supported``, unreadable tracefs ``not permitted``.
    """

    def __init__(
        self,
        tids: Sequence[int],
        names: Sequence[str],
        sys: PerfSys | None = None,
        sysfs_root: str | Path = "/sys",
        keeper: TracepointKeeper | None = None,
    ) -> None:
        super().__init__(tids, list(dict.fromkeys(names)), sys, _default_sys)
        self._ids = syscall_tracepoint_ids(self.events, sysfs_root)
        self._keeper = keeper

    def _plan(self) -> list[GroupPlan]:
        specs = tuple(
            EventDef(n, TYPE_TRACEPOINT, i) for n, i in self._ids.items() if isinstance(i, int)
        )
        for tid in self.tids:
            self._failures.extend(
                OpenFailure(tid, "tracepoint", n, s)
                for n, s in self._ids.items()
                if isinstance(s, str)
            )
        if self._keeper is not None:
            self._keeper.hold(n for n, i in self._ids.items() if isinstance(i, int))
        return [GroupPlan(tid, "tracepoint", specs, fallback=False) for tid in self.tids if specs]
