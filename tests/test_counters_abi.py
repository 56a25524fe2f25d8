"""perf ABI pieces and pure counter arithmetic: attr bytes, syscall numbers, sysfs,
procfs and tracefs readers (fake trees), syscall counters on the faked boundary,
and the delta/scaling arithmetic (Hypothesis)."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_counters_fake import DISABLED, FakePerf, make_sysfs

from pytest_netcopy.instruments import perf_abi
from pytest_netcopy.instruments.counters import (
    DEFAULT_EVENTS,
    EVENTS,
    EventDef,
    GroupReading,
    Snapshot,
    SyscallCounters,
    TracepointKeeper,
    delta,
    parse_counter_selection,
    perf_machine_info,
)


def test_packed_attr_offsets() -> None:
    attr = perf_abi.pack_attr(
        3, (10 << 32) | 0x10002, disabled=True, inherit=True, exclude_kernel=True, exclude_hv=True
    )
    assert len(attr) == 136
    assert struct.unpack_from("=I", attr, 0) == (3,)
    assert struct.unpack_from("=I", attr, 4) == (136,)
    assert struct.unpack_from("=Q", attr, 8) == ((10 << 32) | 0x10002,)
    assert struct.unpack_from("=Q", attr, 32) == (1 | 2 | 4 | 8,)
    assert struct.unpack_from("=Q", attr, 40) == (1 | 2 | 32 | 64,)
    assert attr[16:32] == bytes(16) and attr[48:] == bytes(88)
    plain = perf_abi.pack_attr(1, 1)
    assert struct.unpack_from("=Q", plain, 40) == (0,)


def test_syscall_numbers_by_arch() -> None:
    assert perf_abi.syscall_number("x86_64") == 298
    assert perf_abi.syscall_number("aarch64") == 241
    with pytest.raises(RuntimeError, match="riscv64"):
        perf_abi.syscall_number("riscv64")
    with pytest.raises(RuntimeError, match="riscv64"):
        perf_abi.CtypesPerfSys(machine="riscv64")


def test_core_pmu_discovery(tmp_path: Path) -> None:
    hybrid = make_sysfs(tmp_path / "a", {"cpu_core": (8, "0-7"), "cpu_atom": (10, "8-15")})
    assert perf_abi.discover_core_pmus(hybrid) == [
        perf_abi.CorePmu("cpu_atom", 10, "8-15"),
        perf_abi.CorePmu("cpu_core", 8, "0-7"),
    ]
    plain = make_sysfs(tmp_path / "b", {"cpu": (4, None)})
    assert perf_abi.discover_core_pmus(plain) == [perf_abi.CorePmu("cpu", 4, "")]
    arm = make_sysfs(tmp_path / "c", {"armv8_pmuv3_0": (9, "0-3")})
    assert [p.name for p in perf_abi.discover_core_pmus(arm)] == ["armv8_pmuv3_0"]
    assert perf_abi.discover_core_pmus(tmp_path / "missing") == []


def test_perf_machine_info(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path / "sys", {"cpu_core": (8, "0-7"), "cpu_atom": (10, "8-15")})
    kernel = tmp_path / "proc" / "sys" / "kernel"
    kernel.mkdir(parents=True)
    (kernel / "perf_event_paranoid").write_text("-1\n")
    (kernel / "nmi_watchdog").write_text("1\n")
    assert perf_machine_info(sysfs, tmp_path / "proc") == {
        "kernel.perf_event_paranoid": -1,
        "pmus": ["cpu_atom", "cpu_core"],
        "nmi_watchdog": True,
    }
    (kernel / "nmi_watchdog").write_text("0\n")
    assert perf_machine_info(sysfs, tmp_path / "proc")["nmi_watchdog"] is False
    assert perf_machine_info(tmp_path / "none", tmp_path / "none") == {
        "kernel.perf_event_paranoid": None,
        "pmus": [],
        "nmi_watchdog": None,
    }


def make_tracefs(sysfs: Path, ids: dict[str, int], rel: str = "kernel/tracing") -> None:
    for name, tp in ids.items():
        d = sysfs / rel / "events" / "syscalls" / f"sys_enter_{name}"
        d.mkdir(parents=True)
        (d / "id").write_text(f"{tp}\n")


def test_syscall_counters_faked(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    make_tracefs(sysfs, {"write": 840, "sendto": 2224})
    fake = FakePerf()
    with TracepointKeeper(sys=fake, sysfs_root=sysfs) as keeper:
        s = SyscallCounters([5, 6], ["write", "sendto", "frobnicate"], fake, sysfs, keeper)
        with s:
            assert sorted(keeper.held) == ["sendto", "write"]
            kept = [e for e in fake.opened if e.tid == 0]
            assert len(kept) == 2 and all(e.flags & DISABLED for e in kept)
            before = s.read()
            s.enable()
            fake.advance(1000, count=lambda ev: {840: 3, 2224: 4}[ev.config])
            s.disable()
            got = s.delta(before, s.read())
        assert all(e.type == perf_abi.TYPE_TRACEPOINT for e in fake.opened)
        assert len(fake.live) == 2  # the keeper's fds outlive the counters
        with SyscallCounters([5], ["write"], fake, sysfs, keeper):
            pass
            assert len([e for e in fake.opened if e.tid == 0]) == 2, "no second keeper fd"
    assert fake.live == {}
    assert got["write"]["value"] == 6.0 and got["sendto"]["value"] == 8.0
    assert got["frobnicate"] == {"value": None, "status": "not supported", "running_fraction": None}
    with pytest.raises(ValueError, match="not a syscall name"):
        SyscallCounters([5], ["../../x"], fake, sysfs)


def test_tracepoint_ids_debugfs_fallback_and_permission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sysfs = tmp_path / "sys"
    make_tracefs(sysfs, {"write": 7}, rel="kernel/debug/tracing")
    assert perf_abi.tracepoint_id("syscalls/sys_enter_write", sysfs) == 7
    assert perf_abi.tracepoint_id("syscalls/sys_enter_nope", sysfs) == "not supported"
    real_read_text = Path.read_text

    def unreadable(self: Path, encoding: str | None = None, errors: str | None = None) -> str:
        if "tracing" in self.parts:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read_text(self, encoding, errors)

    monkeypatch.setattr(Path, "read_text", unreadable)  # root can read anything: fake EACCES
    got = SyscallCounters([5], ["write"], FakePerf(), sysfs)
    with got:
        before = got.read()
        result = delta(before, got.read())
    assert result["write"] == {"value": None, "status": "not permitted", "running_fraction": None}


def reading(
    tid: int, group: str, te: int, tr: int, value: int, user_only: bool = False
) -> GroupReading:
    return GroupReading(tid, group, user_only, te, tr, {"cycles": value})


@st.composite
def thread_rounds(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """Per thread: (offset, raw delta, enabled delta, running delta <= enabled)."""
    n = draw(st.integers(1, 4))
    out = []
    for _ in range(n):
        enabled = draw(st.integers(0, 10**12))
        running = draw(st.integers(0, enabled))
        out.append((draw(st.integers(0, 2**40)), draw(st.integers(0, 2**40)), enabled, running))
    return out


@given(thread_rounds())
def test_delta_scaling_arithmetic(rounds: list[tuple[int, int, int, int]]) -> None:
    tids = tuple(range(1, len(rounds) + 1))
    before = Snapshot(
        ("cycles",),
        tids,
        tuple(
            reading(t, "cpu", off, off // 2, off)
            for t, (off, _, _, _) in zip(tids, rounds, strict=True)
        ),
        (),
    )
    after = Snapshot(
        ("cycles",),
        tids,
        tuple(
            reading(t, "cpu", off + en, off // 2 + run, off + raw)
            for t, (off, raw, en, run) in zip(tids, rounds, strict=True)
        ),
        (),
    )
    got = delta(before, after)["cycles"]
    raw = sum(r[1] for r in rounds)
    enabled = sum(r[2] for r in rounds)
    running = sum(r[3] for r in rounds)
    if running == 0:
        assert got["value"] is None and got["status"] == "not counted"
    elif running == enabled:
        assert got == {"value": float(raw), "status": "ok", "running_fraction": 1.0}
    else:
        assert got["status"] == "scaled"
        assert got["value"] == pytest.approx(raw * enabled / running, rel=1e-9)
        assert got["running_fraction"] == pytest.approx(running / enabled, rel=1e-9)
        assert got["value"] is not None and got["value"] >= raw


def test_delta_rejects_mismatched_snapshots() -> None:
    a = Snapshot(("cycles",), (1,), (reading(1, "cpu", 0, 0, 0),), ())
    b = Snapshot(("cycles",), (1,), (reading(1, "cpu_core", 0, 0, 0),), ())
    with pytest.raises(ValueError, match="groups"):
        delta(a, b)
    with pytest.raises(ValueError, match="sets"):
        delta(a, Snapshot(("instructions",), (1,), (), ()))


def test_counter_selection() -> None:
    assert parse_counter_selection("default") == list(DEFAULT_EVENTS)
    assert len(DEFAULT_EVENTS) == 9 and set(DEFAULT_EVENTS) == set(EVENTS)
    assert parse_counter_selection(" none ") == []
    assert parse_counter_selection("cycles, task-clock,cycles") == ["cycles", "task-clock"]
    with pytest.raises(ValueError) as info:
        parse_counter_selection("task-clock,cyclez")
    message = str(info.value)
    assert "'cyclez'" in message and "'task-clock'" not in message
    assert all(name in message for name in DEFAULT_EVENTS)
    for empty in ("", " , "):
        with pytest.raises(ValueError, match="default"):
            parse_counter_selection(empty)


def test_event_table() -> None:
    assert EVENTS["L1-dcache-load-misses"] == EventDef("L1-dcache-load-misses", 3, 0x10000)
    assert EVENTS["LLC-load-misses"].on_pmu(8) == EventDef(
        "LLC-load-misses", 3, (8 << 32) | 2 | 1 << 16
    )
    hardware = {n for n, e in EVENTS.items() if e.hardware}
    assert hardware == {
        "cycles",
        "instructions",
        "cache-misses",
        "L1-dcache-load-misses",
        "LLC-load-misses",
    }
