"""Groups of perf events on threads: open, switch, read, close; counts between two reads.

The machinery under :mod:`.counters` (which plans the groups: which events on which
threads). Per thread a group per planned set of events; leaders open disabled,
members enabled; only leaders are toggled, without PERF_IOC_FLAG_GROUP. Events that
fail to open are marked, the rest still count. A group refused kernel-side counting
(EACCES/EPERM) is reopened with exclude_kernel=1 when its plan allows: ``user-only``
(except task-clock: the kernel ignores exclude_kernel for it, its count stays whole).
Deltas of reads (RESET keeps times) are summed over threads and groups, then scaled
once (a hybrid PMU runs only while the thread is on its core type).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

from pytest_netcopy.instruments.perf_abi import (
    DENIED_ERRNOS,
    IOC_DISABLE,
    IOC_ENABLE,
    PERF_FLAG_FD_CLOEXEC,
    UNSUPPORTED_ERRNOS,
    EventDef,
    PerfSys,
    group_read_size,
    pack_attr,
    parse_group_read,
)
from pytest_netcopy.instruments.status import (
    NOT_COUNTED,
    NOT_PERMITTED,
    NOT_SUPPORTED,
    OK,
    SCALED,
    USER_ONLY,
    CounterValue,
)

#: software events the kernel raises in its own context: excluded entirely by
#: exclude_kernel=1 (measured: 29 and 50 switches read as 0)
KERNEL_ONLY_EVENTS = frozenset({"context-switches", "cpu-migrations"})
#: software clocks count the task's whole CPU time, user and kernel, whatever
#: exclude_kernel says (kernel/events/core.c: task_clock_event_update never looks
#: at exclude_*; measured as a non-root account: equal to the thread's CPU time)
FULL_COUNT_EVENTS = frozenset({"task-clock"})


@dataclass(frozen=True)
class OpenFailure:
    tid: int
    group: str
    event: str
    status: str


@dataclass(frozen=True)
class GroupReading:
    tid: int
    group: str  # "software", "tracepoint" or a core PMU name
    user_only: bool
    time_enabled: int
    time_running: int
    values: dict[str, int]


@dataclass(frozen=True)
class Snapshot:
    events: tuple[str, ...]
    tids: tuple[int, ...]
    groups: tuple[GroupReading, ...]
    failures: tuple[OpenFailure, ...]


@dataclass
class Group:
    tid: int
    label: str
    user_only: bool
    fds: list[int]  # leader first
    names_by_id: dict[int, str]


@dataclass(frozen=True)
class GroupPlan:
    tid: int
    label: str
    specs: tuple[EventDef, ...]
    fallback: bool  # may retry with exclude_kernel=1 on EACCES/EPERM


class PerfGroups:
    """Open/enable/disable/read/close over planned groups; subclasses plan them."""

    def __init__(
        self,
        tids: Sequence[int],
        events: Sequence[str],
        sys: PerfSys | None,
        default_sys: Callable[[], PerfSys],
    ) -> None:
        if not tids or len(set(tids)) != len(tids):
            raise ValueError(f"need distinct thread ids to count, got {list(tids)}")
        self.tids = tuple(tids)
        self.events = tuple(events)
        self._sys: PerfSys = default_sys() if sys is None else sys
        self._groups: list[Group] = []
        self._failures: list[OpenFailure] = []
        self._opened = self._closed = False
        self._fell_back = False  # kept after close(): the hint is printed at the end
        self._fell_back_events: dict[str, None] = {}  # opened with exclude_kernel=1, in order

    def _plan(self) -> list[GroupPlan]:
        raise NotImplementedError

    def open(self) -> None:
        if self._opened:
            raise RuntimeError("counters already opened")
        self._opened = True
        try:
            for plan in self._plan():
                self._open_group(plan)
        except BaseException:
            self.close()
            raise

    def _open_group(self, plan: GroupPlan) -> None:
        group, failed = self._try_group(plan, exclude_kernel=False)
        if plan.fallback and NOT_PERMITTED in failed.values():
            if group is not None:
                self._close_fds(group.fds)
            group, failed = self._try_group(plan, exclude_kernel=True)
        if group is not None:
            self._groups.append(group)
            self._fell_back |= group.user_only
            if group.user_only:
                self._fell_back_events.update(dict.fromkeys(group.names_by_id.values()))
        self._failures.extend(OpenFailure(plan.tid, plan.label, n, s) for n, s in failed.items())

    def _try_group(
        self, plan: GroupPlan, exclude_kernel: bool
    ) -> tuple[Group | None, dict[str, str]]:
        fds: list[int] = []
        names: list[str] = []
        failed: dict[str, str] = {}
        try:
            for spec in plan.specs:
                ek = exclude_kernel
                attr = pack_attr(
                    spec.type, spec.config, disabled=not fds, exclude_kernel=ek, exclude_hv=ek
                )
                leader = fds[0] if fds else -1
                try:
                    fd = self._sys.open(attr, plan.tid, -1, leader, PERF_FLAG_FD_CLOEXEC)
                except OSError as exc:  # other errnos (ESRCH, EMFILE, ...) are real errors
                    if exc.errno in UNSUPPORTED_ERRNOS:
                        failed[spec.name] = NOT_SUPPORTED
                    elif exc.errno in DENIED_ERRNOS:
                        failed[spec.name] = NOT_PERMITTED
                    else:
                        raise
                    continue
                fds.append(fd)
                names.append(spec.name)
            if not fds:
                return None, failed
            first = parse_group_read(self._sys.read(fds[0], group_read_size(len(fds))))
            if len(first.values) != len(fds):
                raise RuntimeError(f"perf group read {len(first.values)} events, opened {len(fds)}")
        except BaseException:
            self._close_fds(fds)
            raise
        ids = {event_id: name for (_, event_id), name in zip(first.values, names, strict=True)}
        return Group(plan.tid, plan.label, exclude_kernel, fds, ids), failed

    def enable(self) -> None:
        for g in self._live():
            self._sys.ioctl(g.fds[0], IOC_ENABLE, 0)

    def disable(self) -> None:
        for g in self._live():
            self._sys.ioctl(g.fds[0], IOC_DISABLE, 0)

    def read(self) -> Snapshot:
        readings = []
        for g in self._live():
            got = parse_group_read(self._sys.read(g.fds[0], group_read_size(len(g.fds))))
            values = {g.names_by_id[event_id]: value for value, event_id in got.values}
            times = (got.time_enabled, got.time_running)
            readings.append(GroupReading(g.tid, g.label, g.user_only, *times, values))
        return Snapshot(self.events, self.tids, tuple(readings), tuple(self._failures))

    def delta(self, before: Snapshot, after: Snapshot) -> dict[str, CounterValue]:
        return delta(before, after)

    @contextmanager
    def region(self) -> Iterator[dict[str, CounterValue]]:
        """``with c.region() as values: <round>``: read, enable; disable, read, delta."""
        values: dict[str, CounterValue] = {}
        before = self.read()
        self.enable()
        try:
            yield values
        finally:
            self.disable()
        values.update(delta(before, self.read()))

    @property
    def failures(self) -> tuple[OpenFailure, ...]:
        return tuple(self._failures)

    def close(self) -> None:
        """Close every fd (members before their leader); idempotent."""
        groups, self._groups = self._groups, []
        self._closed = True
        self._close_fds([fd for g in groups for fd in g.fds])

    def _close_fds(self, fds: list[int]) -> None:
        error: OSError | None = None
        for fd in reversed(fds):  # members first, the leader last
            try:
                self._sys.close(fd)
            except OSError as exc:
                error = error or exc
        fds.clear()
        if error is not None:
            raise error

    def _live(self) -> list[Group]:
        if not self._opened or self._closed:
            raise RuntimeError("counters not opened" if not self._opened else "counters closed")
        return self._groups

    def __enter__(self) -> Self:
        if not self._opened:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def delta(before: Snapshot, after: Snapshot) -> dict[str, CounterValue]:
    """Counts between two reads, summed over threads and PMUs, scaled once.

    An event is ``not supported``/``not permitted`` (value None) when some
    thread has no open counter for it: a partial sum would undercount.
    """
    if before.events != after.events or before.tids != after.tids:
        raise ValueError("snapshots of different counter sets")
    old = {(g.tid, g.group): g for g in before.groups}
    if old.keys() != {(g.tid, g.group) for g in after.groups}:
        raise ValueError("snapshots of different counter groups")
    return {event: _event_delta(event, before, after, old) for event in after.events}


def _event_delta(
    event: str, before: Snapshot, after: Snapshot, old: dict[tuple[int, str], GroupReading]
) -> CounterValue:
    raw = enabled = running = 0
    user_only = False
    for tid in after.tids:
        mine = [g for g in after.groups if g.tid == tid and event in g.values]
        if not mine:
            why = {f.status for f in after.failures if f.tid == tid and f.event == event}
            status = NOT_PERMITTED if NOT_PERMITTED in why else NOT_SUPPORTED
            return CounterValue(value=None, status=status, running_fraction=None)
        pairs = [(old[g.tid, g.group], g) for g in mine]
        raw += sum(a.values[event] - b.values[event] for b, a in pairs)
        enabled += max(a.time_enabled - b.time_enabled for b, a in pairs)
        running += sum(a.time_running - b.time_running for b, a in pairs)
        user_only = user_only or any(a.user_only for _, a in pairs)
    user_only = user_only and event not in FULL_COUNT_EVENTS  # counted whole all the same
    fraction = None if enabled <= 0 else min(running / enabled, 1.0)
    if user_only and event in KERNEL_ONLY_EVENTS:
        # with exclude_kernel=1 these read 0 however often they happen: not a count
        return CounterValue(value=None, status=NOT_PERMITTED, running_fraction=fraction)
    if running <= 0:
        return CounterValue(value=None, status=NOT_COUNTED, running_fraction=fraction)
    if running >= enabled:
        value, status = float(raw), OK
    else:
        value, status = raw * enabled / running, SCALED
    return CounterValue(
        value=value, status=USER_ONLY if user_only else status, running_fraction=fraction
    )
