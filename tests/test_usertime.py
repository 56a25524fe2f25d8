"""usertime.py and the user-time pass (bench/passes.py): user-mode samples of the sender
threads, through a fake perf boundary (ring buffers included) and once for real on this
machine."""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from _support import perf_fds
from hypothesis import given
from hypothesis import strategies as st

from pytest_netcopy.bench.passes import user_pass
from pytest_netcopy.gate.compare import compare_runs
from pytest_netcopy.gate.row import REGRESSION
from pytest_netcopy.gate.rules import parse_rules
from pytest_netcopy.instruments import perf_abi, usertime
from pytest_netcopy.results.runs import Result, Run
from pytest_netcopy.transport.pool import RoundResult

PAGE = 4096
SAMPLE = struct.pack("=IHH", usertime.RECORD_SAMPLE, 0, 8)


def lost(n: int) -> bytes:
    return struct.pack("=IHHQQ", usertime.RECORD_LOST, 0, 24, 7, n)


THROTTLE = struct.pack("=IHHQQQ", usertime.RECORD_THROTTLE, 0, 32, 1, 2, 3)
COMM = struct.pack("=IHH", 3, 0, 24) + b"x" * 16  # a record type drain() does not count


class Ring(bytearray):
    """A mapped ring: the meta page, then ``data_size`` bytes of data."""

    def __init__(self, page: int, data: int, *, old_kernel: bool = False) -> None:
        super().__init__(page + data)
        if not old_kernel:  # 4.1+: the kernel says where the data is
            struct.pack_into("=QQ", self, usertime.META_HEAD + 16, page, data)
        self.page, self.data = page, data
        self.closed = False

    def write(self, *records: bytes) -> None:
        """What the kernel does: append records at head (wrapping), then move head."""
        head, tail = struct.unpack_from("=QQ", self, usertime.META_HEAD)
        blob = b"".join(records)
        assert head + len(blob) - tail <= self.data, "the fake never overfills"
        for i, byte in enumerate(blob):
            self[self.page + (head + i) % self.data] = byte
        struct.pack_into("=Q", self, usertime.META_HEAD, head + len(blob))

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeSampling:
    """The perf boundary for samplers: opens, maps, toggles; ``kernel`` writes on disable."""

    refuse_open: Callable[[int], int | None] = lambda tid: None
    refuse_mmap: int | None = None
    kernel: Callable[[int, Ring], None] = lambda tid, ring: None
    attrs: list[bytes] = field(default_factory=list)
    live: dict[int, int] = field(default_factory=dict)  # fd -> tid
    rings: dict[int, Ring] = field(default_factory=dict)
    on: set[int] = field(default_factory=set)
    next_fd: int = 300

    def open(self, attr: bytes, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        assert (cpu, group_fd, flags) == (-1, -1, perf_abi.PERF_FLAG_FD_CLOEXEC)
        self.attrs.append(attr)
        err = self.refuse_open(pid)
        if err is not None:
            raise OSError(err, os.strerror(err))
        self.next_fd += 1
        self.live[self.next_fd] = pid
        return self.next_fd

    def mmap(self, fd: int, length: int) -> Ring:
        assert fd in self.live and length == (1 + usertime.RING_PAGES) * PAGE
        if self.refuse_mmap is not None and self.live[fd] == 2:  # the second thread's
            raise OSError(self.refuse_mmap, os.strerror(self.refuse_mmap))
        self.rings[fd] = Ring(PAGE, length - PAGE)
        return self.rings[fd]

    def ioctl(self, fd: int, request: int, arg: int) -> None:
        assert fd in self.live
        if request == perf_abi.IOC_ENABLE:
            self.on.add(fd)
        elif request == perf_abi.IOC_DISABLE and fd in self.on:  # else a no-op, as in Linux
            self.on.discard(fd)
            self.kernel(self.live[fd], self.rings[fd])

    def read(self, fd: int, nbytes: int) -> bytes:  # pragma: no cover - samplers never read
        raise AssertionError("a sampler is drained, not read")

    def close(self, fd: int) -> None:
        if self.live.pop(fd, None) is None:
            raise OSError(errno.EBADF, "bad fd")


class FakePool:
    """What user_pass needs of a SenderPool: thread ids and rounds of known bytes."""

    def __init__(self, tids: list[int], size: int = 4096) -> None:
        self.tids = tids
        self.size = size
        self.rounds: list[int] = []

    def run_round(self, count: int) -> RoundResult:
        self.rounds.append(count)
        n = count * len(self.tids)
        return RoundResult(seconds=0.05, messages=n, bytes=n * self.size, acks=[])


# ---------------------------------------------------------------------------
# the ring buffer


def test_drain_counts_samples_and_lost_and_frees_the_ring() -> None:
    ring = Ring(PAGE, 2 * PAGE)
    ring.write(SAMPLE, SAMPLE, COMM, lost(5), SAMPLE, THROTTLE)
    got = usertime.drain(ring, PAGE)
    assert (got.samples, got.lost, got.throttled, got.taken) == (3, 5, 1, 8)
    head, tail = struct.unpack_from("=QQ", ring, usertime.META_HEAD)
    assert tail == head  # freed for the kernel
    assert usertime.drain(ring, PAGE) == usertime.Drained()


records = st.lists(
    st.sampled_from(["sample", "lost", "throttle", "comm"]).flatmap(
        lambda kind: st.tuples(st.just(kind), st.integers(0, 1000))
    ),
    max_size=8,  # 8 x 32 bytes at most: fits the 256-byte ring below
)


@given(st.lists(records, min_size=1, max_size=6), st.booleans())
def test_drain_across_wraps(batches: list[list[tuple[str, int]]], old_kernel: bool) -> None:
    """A small ring wraps within records (a LOST record split at the end) and between."""
    ring = Ring(PAGE, 256, old_kernel=old_kernel)
    for batch in batches:
        blobs, want = [], usertime.Drained()
        for kind, n in batch:
            if kind == "sample":
                blobs.append(SAMPLE)
                want.samples += 1
            elif kind == "lost":
                blobs.append(lost(n))
                want.lost += n
            elif kind == "throttle":
                blobs.append(THROTTLE)
                want.throttled += 1
            else:
                blobs.append(COMM)
        ring.write(*blobs)
        want.full = int(len(b"".join(blobs)) > 256 - 64)  # no room for what comes next
        assert usertime.drain(ring, PAGE) == want


def test_a_torn_record_is_an_error_not_a_loop() -> None:
    ring = Ring(PAGE, PAGE)
    ring.write(struct.pack("=IHH", usertime.RECORD_SAMPLE, 0, 0))
    with pytest.raises(ValueError, match="a record of 0 bytes at 0"):
        usertime.drain(ring, PAGE)


# ---------------------------------------------------------------------------
# the samplers and the pass


def test_the_attr_samples_user_mode_task_clock_every_period() -> None:
    fake = FakeSampling()
    with usertime.UserTime([11, 12], sys=fake, period_ns=250_000) as sampler:
        assert sampler.status == usertime.OK and len(fake.live) == 2
    attr = fake.attrs[0]
    type_, size = struct.unpack_from("=II", attr, 0)
    config, period, sample_type, read_format, flags = struct.unpack_from("=5Q", attr, 8)
    assert (type_, size, config) == (perf_abi.TYPE_SOFTWARE, 136, usertime.TASK_CLOCK)
    assert (period, sample_type, read_format) == (250_000, 0, 0)
    assert flags == perf_abi.FLAG_DISABLED | perf_abi.FLAG_EXCLUDE_KERNEL | perf_abi.FLAG_EXCLUDE_HV
    assert not fake.live and all(r.closed for r in fake.rings.values())


def samples_per_tid(per_round: dict[int, list[int]]) -> Callable[[int, Ring], None]:
    """A kernel that writes per_round[tid][k] samples in the k-th round of each thread."""
    seen: dict[int, int] = {}

    def kernel(tid: int, ring: Ring) -> None:
        k = seen.get(tid, 0)
        seen[tid] = k + 1
        ring.write(*[SAMPLE] * per_round[tid][k])

    return kernel


def test_the_pass_turns_samples_into_ns_per_byte_per_round() -> None:
    fake = FakeSampling(kernel=samples_per_tid({1: [10, 20, 30], 2: [5, 5, 5]}))
    pool = FakePool([1, 2], size=4096)
    out = user_pass(pool, 50, 3, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert pool.rounds == [50, 50, 50]
    nbytes = 50 * 2 * 4096
    per_round = [15 * 1e5 / nbytes, 25 * 1e5 / nbytes, 35 * 1e5 / nbytes]
    assert out["pass_rounds"]["user_cpu_ns_per_byte"] == pytest.approx(per_round)
    assert out["user_cpu_ns_per_byte"] == pytest.approx(per_round[1])
    assert out["user_time"] == {
        "status": "ok", "reason": None, "rounds": 3, "sample_period_ns": 100_000,
        "samples": 75, "lost": 0, "throttled": 0,
    }  # fmt: skip
    assert not fake.live


def test_lost_samples_withhold_the_figure() -> None:
    """The kernel reports dropped samples late (when it can store again), maybe in a
    later round or never: any loss means the rounds' counts cannot be trusted."""
    fake = FakeSampling(kernel=lambda tid, ring: ring.write(SAMPLE, lost(9)))
    out = user_pass(FakePool([1]), 10, 2, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert out["user_time"]["samples"] == 2 and out["user_time"]["lost"] == 18
    assert out["user_time"]["status"] == "lost" and out["user_cpu_ns_per_byte"] is None
    assert "18 samples reported lost" in out["user_time"]["reason"]


def test_a_ring_full_at_the_end_of_a_round_withholds_the_figure() -> None:
    # no LOST record yet: the kernel writes it only once there is room again
    data = usertime.RING_PAGES * PAGE
    fake = FakeSampling(kernel=lambda tid, ring: ring.write(*[SAMPLE] * (data // 8 - 4)))
    out = user_pass(FakePool([1]), 10, 1, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert out["user_time"]["status"] == "lost" and out["user_cpu_ns_per_byte"] is None
    assert "1 ring(s) full" in out["user_time"]["reason"]


def test_a_sampler_that_fails_mid_pass_costs_the_figure_not_the_benchmark() -> None:
    fake = FakeSampling(kernel=lambda tid, ring: ring.write(struct.pack("=IHH", 9, 0, 4)))
    out = user_pass(FakePool([1, 2]), 10, 3, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert out["user_time"]["status"] == "not counted" and out["user_cpu_ns_per_byte"] is None
    assert (
        "the user-mode samplers failed: perf ring buffer: a record of 4 bytes"
        in (out["user_time"]["reason"])
    )
    assert not fake.live and not fake.on

    class NoSwitch(FakeSampling):
        def ioctl(self, fd: int, request: int, arg: int) -> None:
            if request == perf_abi.IOC_ENABLE and fd == max(self.live):
                raise OSError(errno.ENODEV, "gone")
            super().ioctl(fd, request, arg)

    pool = FakePool([1, 2])
    out = user_pass(pool, 10, 3, sys=NoSwitch()).to_extra_info()  # type: ignore[arg-type]
    assert pool.rounds == [] and out["user_time"]["status"] == "not counted"
    assert "switching the samplers on: [Errno 19] gone" in out["user_time"]["reason"]


def test_a_throttled_sampler_gives_no_figure() -> None:
    fake = FakeSampling(kernel=lambda tid, ring: ring.write(SAMPLE, THROTTLE))
    out = user_pass(FakePool([1]), 10, 2, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert out["user_cpu_ns_per_byte"] is None
    assert out["pass_rounds"]["user_cpu_ns_per_byte"] == []
    assert out["user_time"]["status"] == "throttled"
    assert "throttled the samplers 2 time(s)" in out["user_time"]["reason"]


@pytest.mark.parametrize(
    ("open_err", "mmap_err", "status", "words"),
    [
        (errno.EACCES, None, "not permitted", ["perf_event_open", "EACCES", "paranoid"]),
        (None, errno.EPERM, "not permitted", ["mmap of its ring buffer", "perf_event_mlock_kb"]),
        (errno.ENOENT, None, "not supported", ["perf_event_open", "ENOENT"]),
        (errno.EMFILE, None, "not counted", ["EMFILE"]),
    ],
)
def test_refusals_run_no_round_and_leave_nothing_open(
    open_err: int | None, mmap_err: int | None, status: str, words: list[str]
) -> None:
    # the second thread's open (or mmap) fails: the first one's fd and ring are closed
    fake = FakeSampling(
        refuse_open=lambda tid: open_err if tid == 2 else None, refuse_mmap=mmap_err
    )
    pool = FakePool([1, 2])
    out = user_pass(pool, 10, 6, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert pool.rounds == []  # no rounds spent on a pass that cannot count
    assert out["user_cpu_ns_per_byte"] is None
    assert out["user_time"]["status"] == status and out["user_time"]["rounds"] == 0
    assert out["user_time"]["samples"] is None  # nothing sampled: unknown, not 0
    for word in words:
        assert word in out["user_time"]["reason"]
    assert not fake.live and all(r.closed for r in fake.rings.values())
    assert len(fake.rings) == 1  # the first thread's ring existed, and was closed


def test_a_failing_round_still_disables_and_closes() -> None:
    fake = FakeSampling()

    class Broken(FakePool):
        def run_round(self, count: int) -> RoundResult:
            raise ConnectionError("sink gone")

    with pytest.raises(ConnectionError):
        user_pass(Broken([1, 2]), 10, 3, sys=fake).to_extra_info()  # type: ignore[arg-type]
    assert not fake.on and not fake.live


def test_zero_rounds_is_not_counted() -> None:
    out = user_pass(FakePool([1]), 10, 0, sys=FakeSampling()).to_extra_info()  # type: ignore[arg-type]
    assert out["user_time"]["status"] == "not counted"
    assert out["user_time"]["reason"] == "no rounds (--netcopy-user-rounds=0)"
    assert out["user_cpu_ns_per_byte"] is None


# ---------------------------------------------------------------------------
# for real, and in the gate


def test_this_machine_samples_a_busy_python_thread_in_user_mode() -> None:
    """A thread that spins in Python for 30 ms of its own CPU time has ~300 user-mode
    samples (the kernel's timer work is excluded), through the real perf_event_open."""
    go, done = threading.Event(), threading.Event()
    tid: list[int] = []

    def spin() -> None:
        tid.append(threading.get_native_id())
        go.wait(10)
        end = time.thread_time() + 0.03
        while time.thread_time() < end:  # a syscall: rarely, so user mode dominates
            for _ in range(20_000):
                pass
        done.set()

    worker = threading.Thread(target=spin)
    worker.start()
    while not tid:
        pass
    before = perf_fds()
    try:
        with usertime.UserTime(tid) as sampler:
            if sampler.status == usertime.NOT_PERMITTED:  # pragma: no cover - root here
                pytest.skip(f"this account may not sample: {sampler.reason}")
            assert sampler.status == usertime.OK, sampler.reason

            def busy() -> RoundResult:
                go.set()
                assert done.wait(10)
                return RoundResult(seconds=0.03, messages=1, bytes=1, acks=[])

            with sampler.region() as got:
                busy()
    finally:
        go.set()
        worker.join(10)
    assert perf_fds() == before
    # 30 ms at one sample per 100 us is ~300, a little of it in the kernel (not sampled)
    assert 150 <= got.taken <= 450, got


def result(user: list[float]) -> Result:
    extra: dict[str, Any] = {
        "mode": "two_copy", "size": 65536, "threads": 1,
        "user_cpu_ns_per_byte": sorted(user)[len(user) // 2],
        "pass_rounds": {"user_cpu_ns_per_byte": user}, "rounds": {"seconds": [0.05] * 10},
    }  # fmt: skip
    return Result(name="test[two_copy-65536B-1t]", group="65536B-1t", extra=extra, stats={})


def run(user: list[float]) -> Run:
    return Run(path=None, machine_info={}, commit_info={}, datetime=None, results=[result(user)])  # type: ignore[arg-type]


def test_the_gate_judges_the_pass_rounds() -> None:
    base = [0.0234, 0.0251, 0.0242, 0.0229, 0.0247, 0.0238]
    rules = parse_rules("user_cpu_ns_per_byte:+20%")
    slower = compare_runs(run(base), run([v * 1.6 for v in base]), rules)
    (row,) = slower.rows
    assert row.verdict == REGRESSION
    assert row.test == "exact, 6+6 rounds" and row.p_value is not None and row.p_value < 0.01
    same = compare_runs(run(base), run(list(reversed(base))), rules)
    assert same.rows[0].verdict == "no regression"  # issue 12: the verdict was "ok"
