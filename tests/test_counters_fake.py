"""Counters logic against a faked syscall boundary and fake sysfs/procfs trees.

``FakePerf`` stands in for the kernel at the PerfSys boundary only (open /
ioctl / read / close): it decodes the attr bytes at the documented offsets,
keeps groups, ids and times, and refuses events the way a kernel does. Every
path above that boundary (fallback, grouping, hybrid PMUs, scaling, statuses)
is the real code. Paths this machine cannot run (a PMU, hybrid CPUs,
perf_event_paranoid refusals, multiplexing) are covered here; ABI pieces and
pure arithmetic are in test_counters_abi.py.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_netcopy.instruments import perf_abi
from pytest_netcopy.instruments.counters import (
    DEFAULT_EVENTS,
    EVENTS,
    CounterValue,
    ThreadCounters,
    delta,
)

EXCLUDE_KERNEL, EXCLUDE_HV, DISABLED = 1 << 5, 1 << 6, 1 << 0


@dataclass
class FakeEvent:
    fd: int
    id: int
    tid: int
    type: int
    config: int
    read_format: int
    flags: int
    leader: int  # fd of the group leader (itself for a leader)
    value: int = 0

    @property
    def name(self) -> str:
        """The event's name, from its (type, config without the PMU type bits)."""
        if self.type == perf_abi.TYPE_TRACEPOINT:
            return f"tracepoint {self.config}"
        base = self.config & 0xFFFFFFFF
        return next(e.name for e in EVENTS.values() if (e.type, e.config) == (self.type, base))

    @property
    def pmu_type(self) -> int:
        return self.config >> 32


Refusal = Callable[[FakeEvent], int | None]


class FakePerf:
    """A tiny perf kernel: groups, ids, enabled state, times; refuses per ``refuse``."""

    def __init__(self, refuse: Refusal = lambda ev: None) -> None:
        self.refuse = refuse
        self.live: dict[int, FakeEvent] = {}
        self.opened: list[FakeEvent] = []
        self.attempts: list[FakeEvent] = []
        self.ioctls: list[tuple[int, int, int]] = []
        self.times: dict[int, list[int]] = {}  # leader fd -> [enabled, running]
        self.on: set[int] = set()
        self._next_fd, self._next_id = 100, 5000

    def open(self, attr: bytes, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        assert len(attr) == 136 and struct.unpack_from("=I", attr, 4)[0] == 136
        assert cpu == -1 and flags == perf_abi.PERF_FLAG_FD_CLOEXEC
        (type_,) = struct.unpack_from("=I", attr, 0)
        (config, read_format, bits) = (struct.unpack_from("=Q", attr, o)[0] for o in (8, 32, 40))
        assert attr[48:] == bytes(136 - 48), "nothing but type/size/config/read_format/flags"
        if group_fd != -1:
            assert self.live[group_fd].leader == group_fd, "members join a leader"
        ev = FakeEvent(self._next_fd, self._next_id, pid, type_, config, read_format, bits, -1)
        self.attempts.append(ev)
        err = self.refuse(ev)
        if err is not None:
            raise OSError(err, os.strerror(err))
        ev.leader = ev.fd if group_fd == -1 else group_fd
        self._next_fd += 1
        self._next_id += 3
        self.live[ev.fd] = ev
        self.opened.append(ev)
        if group_fd == -1:
            self.times[ev.fd] = [0, 0]
            if not bits & DISABLED:
                self.on.add(ev.fd)
        return ev.fd

    def ioctl(self, fd: int, request: int, arg: int) -> None:
        assert self.live[fd].leader == fd, "only leaders are toggled"
        self.ioctls.append((fd, request, arg))
        if request == perf_abi.IOC_ENABLE:
            self.on.add(fd)
        elif request == perf_abi.IOC_DISABLE:
            self.on.discard(fd)

    def read(self, fd: int, nbytes: int) -> bytes:
        leader = self.live[fd]
        assert leader.leader == fd and leader.read_format == perf_abi.GROUP_READ_FORMAT
        group = [e for e in self.live.values() if e.leader == fd]
        out = struct.pack("=3Q", len(group), *self.times[fd])
        out += b"".join(struct.pack("=QQ", e.value, e.id) for e in group)
        assert nbytes >= len(out)
        return out

    def close(self, fd: int) -> None:
        if self.live.pop(fd, None) is None:
            raise OSError(errno.EBADF, "bad fd")

    def advance(
        self,
        enabled: int,
        count: Callable[[FakeEvent], int],
        running: Callable[[FakeEvent], int] | None = None,
    ) -> None:
        """Time passes: enabled groups gain times, their events ``count(ev)``."""
        for fd in self.on:
            run = enabled if running is None else running(self.live[fd])
            self.times[fd][0] += enabled
            self.times[fd][1] += run
            for ev in self.live.values():
                if ev.leader == fd and run:
                    ev.value += count(ev)

    def leaders(self) -> list[FakeEvent]:
        return [e for e in self.live.values() if e.leader == e.fd]


def make_sysfs(root: Path, pmus: dict[str, tuple[int, str | None]]) -> Path:
    devices = root / "bus" / "event_source" / "devices"
    for name, (type_, cpus) in pmus.items():
        (devices / name).mkdir(parents=True)
        (devices / name / "type").write_text(f"{type_}\n")
        if cpus is not None:
            (devices / name / "cpus").write_text(f"{cpus}\n")
    (devices / "software").mkdir(exist_ok=True)
    (devices / "software" / "type").write_text("1\n")
    (devices / "uncore_imc_0").mkdir(exist_ok=True)
    (devices / "uncore_imc_0" / "type").write_text("23\n")
    (devices / "uncore_imc_0" / "cpumask").write_text("0\n")
    return root


@pytest.fixture
def plain_sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "sys", {"cpu": (4, None)})


@pytest.fixture
def hybrid_sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "sys", {"cpu_core": (8, "0-7"), "cpu_atom": (10, "8-15")})


def by_name(ev: FakeEvent) -> int:
    """Distinct per-event counts, so a mix-up of ids shows."""
    return 10 * (list(EVENTS).index(ev.name) + 1)


def measure(
    c: ThreadCounters,
    fake: FakePerf,
    enabled: int,
    count: Callable[[FakeEvent], int],
    running: Callable[[FakeEvent], int] | None = None,
) -> dict[str, CounterValue]:
    """One round as the plugin does it; work before/after the region is not counted."""
    fake.advance(1000, count=lambda ev: 7)  # leaders are disabled: no effect
    before = c.read()
    c.enable()
    fake.advance(enabled, count, running)
    c.disable()
    fake.advance(1000, count=lambda ev: 7)
    return delta(before, c.read())


def test_hardware_events_flow_through(plain_sysfs: Path) -> None:
    fake = FakePerf()
    c = ThreadCounters([101, 102], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs)
    c.open()
    assert len(fake.opened) == 2 * 9 and len(fake.leaders()) == 4
    for ev in fake.opened:
        assert ev.tid in (101, 102) and ev.pmu_type == 0  # plain config on a one-PMU machine
        is_leader = ev.leader == ev.fd
        assert bool(ev.flags & DISABLED) == is_leader, "leader disabled, members enabled"
        assert not ev.flags & (EXCLUDE_KERNEL | EXCLUDE_HV)
        kinds = {fake.live[e.leader].type in (0, 3) for e in fake.opened if e.leader == ev.leader}
        assert len(kinds) == 1, "software and hardware events are in separate groups"
    got = measure(c, fake, enabled=1000, count=by_name)
    for name in DEFAULT_EVENTS:
        assert got[name] == {
            "value": 2.0 * by_name_of(name),
            "status": "ok",
            "running_fraction": 1.0,
        }
    leader_fds = {e.fd for e in fake.leaders()}
    assert {fd for fd, _, _ in fake.ioctls} == leader_fds
    assert {(req, arg) for _, req, arg in fake.ioctls} == {(0x2400, 0), (0x2401, 0)}
    assert not c.user_only_fallback and c.fallback_hint() is None
    c.close()
    c.close()
    assert fake.live == {}


def by_name_of(name: str) -> int:
    return 10 * (list(EVENTS).index(name) + 1)


def test_hybrid_groups_per_core_pmu_summed_raw(hybrid_sysfs: Path) -> None:
    fake = FakePerf()
    events = ["task-clock", "cycles", "L1-dcache-load-misses"]
    with ThreadCounters([7], events, sys=fake, sysfs_root=hybrid_sysfs) as c:
        assert [p.name for p in c.pmus] == ["cpu_atom", "cpu_core"]
        hw = [e for e in fake.opened if e.type in (0, 3)]
        assert sorted((e.type, e.config) for e in hw) == [
            (0, 8 << 32),
            (0, 10 << 32),
            (3, (8 << 32) | 0x10000),
            (3, (10 << 32) | 0x10000),
        ]
        assert len(fake.leaders()) == 3  # software + one per core PMU
        # the thread spent 60% of the time on a P-core and 40% on an E-core
        share = {8: 600, 10: 400, 0: 1000}
        got = measure(
            c,
            fake,
            enabled=1000,
            running=lambda lead: share[lead.pmu_type],
            count=lambda ev: 5 * share[ev.pmu_type],
        )
    # raw counts summed (3000 + 2000); scaling each PMU alone would give 2 x 5000
    assert got["cycles"] == {"value": 5000.0, "status": "ok", "running_fraction": 1.0}
    assert got["L1-dcache-load-misses"]["value"] == 5000.0
    assert got["task-clock"] == {"value": 5000.0, "status": "ok", "running_fraction": 1.0}
    assert fake.live == {}


def test_hybrid_multiplexed_is_scaled_once(hybrid_sysfs: Path) -> None:
    fake = FakePerf()
    with ThreadCounters([7], ["cycles"], sys=fake, sysfs_root=hybrid_sysfs) as c:
        share = {8: 300, 10: 200}  # half of the time the counters were multiplexed out
        got = measure(
            c,
            fake,
            enabled=1000,
            running=lambda lead: share[lead.pmu_type],
            count=lambda ev: share[ev.pmu_type],
        )
    assert got["cycles"] == {"value": 1000.0, "status": "scaled", "running_fraction": 0.5}


def test_eacces_falls_back_to_user_only_per_group(plain_sysfs: Path) -> None:
    def kernel_refuses_hw(ev: FakeEvent) -> int | None:
        return errno.EACCES if ev.type in (0, 3) and not ev.flags & EXCLUDE_KERNEL else None

    fake = FakePerf(kernel_refuses_hw)
    procfs = plain_sysfs.parent / "proc"
    (procfs / "sys" / "kernel").mkdir(parents=True)
    (procfs / "sys" / "kernel" / "perf_event_paranoid").write_text("2\n")
    c = ThreadCounters([5], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs, procfs_root=procfs)
    with c:
        hw = [e for e in fake.opened if e.type in (0, 3)]
        assert len(hw) == 5 and all(e.flags & EXCLUDE_KERNEL and e.flags & EXCLUDE_HV for e in hw)
        sw = [e for e in fake.opened if e.type == 1]
        assert len(sw) == 4 and not any(e.flags & EXCLUDE_KERNEL for e in sw)
        got = measure(c, fake, enabled=1000, count=by_name)
        assert c.user_only_fallback
        hint = c.fallback_hint()
        assert hint is not None and "perf_event_paranoid=1" in hint and "CAP_PERFMON" in hint
        assert "perf_event_paranoid = 2" in hint
    for name in DEFAULT_EVENTS:
        want = "user-only" if EVENTS[name].hardware else "ok"
        assert got[name] == {
            "value": float(by_name_of(name)),
            "status": want,
            "running_fraction": 1.0,
        }
    assert fake.live == {}


def test_eacces_twice_is_not_permitted(plain_sysfs: Path) -> None:
    fake = FakePerf(lambda ev: errno.EACCES if ev.type in (0, 3) else None)
    with ThreadCounters([5], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs) as c:
        got = measure(c, fake, enabled=1000, count=by_name)
        assert not c.user_only_fallback
    hw_attempts = [e for e in fake.attempts if e.type in (0, 3)]
    assert len(hw_attempts) == 10  # each hardware event: with kernel, then user-only
    for name in DEFAULT_EVENTS:
        if EVENTS[name].hardware:
            assert got[name] == {"value": None, "status": "not permitted", "running_fraction": None}
        else:
            assert got[name]["status"] == "ok"
    assert fake.live == {}


@pytest.mark.parametrize("err", [errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL])
def test_unsupported_hardware(plain_sysfs: Path, err: int) -> None:
    fake = FakePerf(lambda ev: err if ev.type in (0, 3) else None)
    with ThreadCounters([5], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs) as c:
        got = measure(c, fake, enabled=1000, count=by_name)
    assert len([e for e in fake.attempts if e.type in (0, 3)]) == 5  # no user-only retry
    for name in DEFAULT_EVENTS:
        if EVENTS[name].hardware:
            assert got[name] == {"value": None, "status": "not supported", "running_fraction": None}
        else:
            assert got[name]["status"] == "ok"


def test_multiplexed_is_scaled(plain_sysfs: Path) -> None:
    fake = FakePerf()
    with ThreadCounters([5, 6], ["cycles", "instructions"], sys=fake, sysfs_root=plain_sysfs) as c:
        got = measure(c, fake, enabled=1000, running=lambda lead: 250, count=lambda ev: 30)
    # per thread 30 counted in 250 of 1000 ns: 120 each, 240 for both
    assert got["cycles"] == {"value": 240.0, "status": "scaled", "running_fraction": 0.25}


def test_never_running_is_not_counted_not_zero(plain_sysfs: Path) -> None:
    fake = FakePerf()
    with ThreadCounters([5], ["cycles", "task-clock"], sys=fake, sysfs_root=plain_sysfs) as c:
        got = measure(
            c, fake, enabled=1000, running=lambda lead: 0 if lead.type == 0 else 1000, count=by_name
        )
    assert got["cycles"] == {"value": None, "status": "not counted", "running_fraction": 0.0}
    assert got["task-clock"]["status"] == "ok"


def test_member_fails_while_leader_succeeds(plain_sysfs: Path) -> None:
    fake = FakePerf(lambda ev: errno.ENOENT if ev.type == 0 and ev.config == 3 else None)
    events = ["cycles", "cache-misses", "instructions", "LLC-load-misses"]
    with ThreadCounters([5], events, sys=fake, sysfs_root=plain_sysfs) as c:
        (leader,) = fake.leaders()
        assert leader.name == "cycles"
        assert [e.name for e in fake.opened] == ["cycles", "instructions", "LLC-load-misses"]
        assert all(e.leader == leader.fd for e in fake.opened)
        got = measure(c, fake, enabled=1000, count=by_name)
    assert got["cache-misses"] == {
        "value": None,
        "status": "not supported",
        "running_fraction": None,
    }
    for name in ("cycles", "instructions", "LLC-load-misses"):
        assert got[name] == {
            "value": float(by_name_of(name)),
            "status": "ok",
            "running_fraction": 1.0,
        }


def test_failed_leader_passes_the_lead_on(plain_sysfs: Path) -> None:
    fake = FakePerf(lambda ev: errno.ENOENT if ev.name == "cycles" else None)
    with ThreadCounters([5], ["cycles", "instructions"], sys=fake, sysfs_root=plain_sysfs) as c:
        (leader,) = fake.leaders()
        assert leader.name == "instructions" and leader.flags & DISABLED
        got = measure(c, fake, enabled=1000, count=by_name)
    assert got["instructions"]["status"] == "ok" and got["cycles"]["status"] == "not supported"


def test_event_missing_on_one_thread_is_not_a_partial_sum(plain_sysfs: Path) -> None:
    fake = FakePerf(lambda ev: errno.EPERM if ev.tid == 6 and ev.name == "cycles" else None)
    with ThreadCounters([5, 6], ["cycles", "instructions"], sys=fake, sysfs_root=plain_sysfs) as c:
        got = measure(c, fake, enabled=1000, count=by_name)
    assert got["cycles"] == {"value": None, "status": "not permitted", "running_fraction": None}
    # thread 6's group fell back to user-only (cycles refused even then): said so
    assert got["instructions"] == {
        "value": 2.0 * by_name_of("instructions"),
        "status": "user-only",
        "running_fraction": 1.0,
    }


def test_real_error_at_open_raises_and_closes_everything(plain_sysfs: Path) -> None:
    fake = FakePerf(lambda ev: errno.ESRCH if ev.tid == 6 else None)
    c = ThreadCounters([5, 6], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs)
    with pytest.raises(OSError) as info:
        c.open()
    assert info.value.errno == errno.ESRCH
    assert len(fake.opened) == 9 and fake.live == {}


def test_lifecycle_errors(plain_sysfs: Path) -> None:
    fake = FakePerf()
    c = ThreadCounters([5], ["task-clock"], sys=fake, sysfs_root=plain_sysfs)
    with pytest.raises(RuntimeError, match="not opened"):
        c.read()
    c.open()
    with pytest.raises(RuntimeError, match="already"):
        c.open()
    c.close()
    assert fake.live == {}
    with pytest.raises(RuntimeError, match="closed"):
        c.read()
    with ThreadCounters([5], [], sys=fake, sysfs_root=plain_sysfs) as nothing:  # "none"
        assert delta(nothing.read(), nothing.read()) == {}
    with pytest.raises(ValueError, match="distinct thread ids"):
        ThreadCounters([], ["task-clock"], sys=fake)
    with pytest.raises(ValueError, match="distinct thread ids"):
        ThreadCounters([3, 3], ["task-clock"], sys=fake)
    with pytest.raises(ValueError, match="bogus"):
        ThreadCounters([1], ["bogus"], sys=fake)


def test_region_context_manager(plain_sysfs: Path) -> None:
    fake = FakePerf()
    with ThreadCounters([5], ["cycles", "task-clock"], sys=fake, sysfs_root=plain_sysfs) as c:
        fake.advance(1000, count=lambda ev: 7)
        with c.region() as values:
            assert values == {} and len(fake.on) == 2
            fake.advance(1000, count=by_name)
        assert not fake.on
        fake.advance(1000, count=lambda ev: 7)
    assert values["cycles"] == {
        "value": float(by_name_of("cycles")),
        "status": "ok",
        "running_fraction": 1.0,
    }


def test_close_goes_on_after_a_failing_close(plain_sysfs: Path) -> None:
    fake = FakePerf()
    c = ThreadCounters([5, 6], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs)
    c.open()
    victim = fake.opened[3].fd
    del fake.live[victim]  # that fd is already gone: its close fails with EBADF
    with pytest.raises(OSError) as info:
        c.close()
    assert info.value.errno == errno.EBADF and fake.live == {}
    c.close()  # nothing left to close, no error


# issue 13: why syscalls were not counted, and the fix


def _events_tree(root: Path, rel: str) -> None:
    event = root / rel / "events" / "syscalls" / "sys_enter_sendto"
    event.mkdir(parents=True)
    (event / "id").write_text("42\n")


def test_tracefs_not_mounted_says_so_and_how_to_mount(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    (sysfs / "kernel" / "tracing").mkdir(parents=True)  # the empty mount point
    (sysfs / "kernel" / "debug").mkdir()
    assert perf_abi.tracepoint_id("syscalls/sys_enter_sendto", sysfs) == "not supported"
    assert perf_abi.tracefs_problem(sysfs) == "tracefs not mounted"
    hint = perf_abi.tracefs_hint(sysfs)
    assert hint is not None
    assert "tracefs not mounted" in hint
    assert "mount -t tracefs nodev /sys/kernel/tracing (as root)" in hint


def test_tracefs_root_only_says_not_permitted_and_run_as_root(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    _events_tree(sysfs, "kernel/tracing")
    denied = sysfs / "kernel" / "tracing" / "events"

    def listdir(path: Path) -> object:
        if Path(path) == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return os.listdir(path)

    assert perf_abi.tracefs_problem(sysfs, listdir=listdir) == "not permitted"
    hint = perf_abi.tracefs_hint(sysfs, listdir=listdir)
    assert hint is not None
    assert "tracefs is root-only here: run as root or make /sys/kernel/tracing readable" in hint


@pytest.mark.parametrize("rel", ["kernel/tracing", "kernel/debug/tracing"])
def test_readable_tracefs_has_no_hint(tmp_path: Path, rel: str) -> None:
    sysfs = tmp_path / "sys"
    _events_tree(sysfs, rel)
    assert perf_abi.tracepoint_id("syscalls/sys_enter_sendto", sysfs) == 42
    assert perf_abi.tracefs_problem(sysfs) is None
    assert perf_abi.tracefs_hint(sysfs) is None


def paranoid_procfs(root: Path, level: int) -> Path:
    procfs = root / "proc"
    (procfs / "sys" / "kernel").mkdir(parents=True)
    (procfs / "sys" / "kernel" / "perf_event_paranoid").write_text(f"{level}\n")
    return procfs


def refused_unless_user_only(ev: FakeEvent) -> int | None:
    """perf_event_paranoid=2 without CAP_PERFMON: any kernel-side count is refused."""
    return None if ev.flags & EXCLUDE_KERNEL else errno.EACCES


def user_part(ev: FakeEvent) -> int:
    """What the kernel counts: exclude_kernel halves an event's count (its kernel half is
    left out), except task-clock, which counts the task's whole CPU time regardless
    (kernel/events/core.c: task_clock_event_update never looks at exclude_*)."""
    full = by_name(ev)
    if ev.flags & EXCLUDE_KERNEL and ev.name != "task-clock":
        return full // 2
    return full


def test_paranoid_two_task_clock_is_the_full_count_not_user_only(plain_sysfs: Path) -> None:
    fake = FakePerf(refused_unless_user_only)
    procfs = paranoid_procfs(plain_sysfs.parent, 2)
    c = ThreadCounters([5], DEFAULT_EVENTS, sys=fake, sysfs_root=plain_sysfs, procfs_root=procfs)
    with c:
        assert all(e.flags & EXCLUDE_KERNEL for e in fake.opened)  # every group fell back
        got = measure(c, fake, enabled=1000, count=user_part)
    full = float(by_name_of("task-clock"))
    # a software clock ignores exclude_kernel: all of the CPU time, labelled as such
    assert got["task-clock"] == {"value": full, "status": "ok", "running_fraction": 1.0}
    for name in ("cycles", "instructions", "page-faults", "LLC-load-misses"):
        assert got[name] == {
            "value": float(by_name_of(name) // 2),
            "status": "user-only",
            "running_fraction": 1.0,
        }, name
    for name in ("context-switches", "cpu-migrations"):
        assert got[name] == {"value": None, "status": "not permitted", "running_fraction": 1.0}
    hint = c.fallback_hint()
    assert hint is not None
    assert hint.startswith("perf counters fell back to user-only counting")
    assert "(kernel.perf_event_paranoid = 2)" in hint
    assert (
        "page-faults, cycles, instructions, cache-misses, L1-dcache-load-misses, "
        "LLC-load-misses count user mode only" in hint
    )
    assert "context-switches, cpu-migrations are not counted" in hint
    assert "task-clock still counts all CPU time, user and kernel" in hint
    assert "perf_event_paranoid=1" in hint and "CAP_PERFMON" in hint


def test_paranoid_two_with_task_clock_alone_says_nothing_is_user_only(
    plain_sysfs: Path,
) -> None:
    fake = FakePerf(refused_unless_user_only)
    procfs = paranoid_procfs(plain_sysfs.parent, 2)
    c = ThreadCounters([5, 6], ["task-clock"], sys=fake, sysfs_root=plain_sysfs, procfs_root=procfs)
    with c:
        got = measure(c, fake, enabled=1000, count=user_part)
    assert got["task-clock"] == {
        "value": 2.0 * by_name_of("task-clock"),
        "status": "ok",
        "running_fraction": 1.0,
    }
    hint = c.fallback_hint()  # asked after close, as the runner does
    assert hint is not None
    assert "user-only" not in hint and "user mode only" not in hint
    assert "task-clock still counts all CPU time, user and kernel" in hint
    assert "(kernel.perf_event_paranoid = 2)" in hint
