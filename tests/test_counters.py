"""Counters on this machine, through the real perf_event_open (ctypes).

Timing tolerances are relative and generous where the scheduler is involved
(a loaded 2-CPU machine): CPU time is compared with CPU time, wall time only
after subtracting the time the thread waited on a run queue (schedstat).
The faked-boundary tests (PMUs, hybrid, refusals, multiplexing) are in
test_counters_fake.py, ABI bytes and arithmetic in test_counters_abi.py.
"""

from __future__ import annotations

import functools
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import perf_fds

from pytest_netcopy.instruments import perf_abi
from pytest_netcopy.instruments.counters import (
    DEFAULT_EVENTS,
    EVENTS,
    SyscallCounters,
    ThreadCounters,
    TracepointKeeper,
    delta,
    perf_machine_info,
)


def spin(seconds: float) -> float:
    """Burn ``seconds`` of this thread's CPU time; returns the CPU time used."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass
    return time.thread_time() - start


class Worker:
    """A thread that runs the functions given to ``call`` one at a time."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self._results: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._thread.native_id is not None
        self.tid = self._thread.native_id

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._results.put(job())

    def call(self, job: Callable[[], Any]) -> Any:
        self._jobs.put(job)
        return self._results.get(timeout=60)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=60)


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.stop()


def run_delay_ns(tid: int) -> int | None:
    """ns this thread has waited on a run queue (schedstat field 2), if the kernel says."""
    try:
        return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_busy_thread_task_clock_matches_thread_time_and_wall(worker: Worker) -> None:
    with ThreadCounters([worker.tid], ["task-clock", "context-switches"]) as c:
        before = c.read()
        waited0 = run_delay_ns(worker.tid)
        t0 = time.perf_counter()
        c.enable()
        cpu = worker.call(lambda: spin(0.2))
        c.disable()
        wall = time.perf_counter() - t0
        waited1 = run_delay_ns(worker.tid)
        got = delta(before, c.read())
    task_clock = got["task-clock"]["value"]
    assert got["task-clock"]["status"] == "ok" and task_clock is not None
    # same quantity (the thread's runtime), the region adds only a queue hand-off
    assert task_clock / 1e9 == pytest.approx(cpu, rel=0.10)
    assert task_clock / 1e9 <= wall
    if waited0 is not None and waited1 is not None:
        # wall = on CPU + waiting for a CPU (+ the tiny hand-offs): holds under load
        on_cpu_possible = wall - (waited1 - waited0) / 1e9
        assert task_clock / 1e9 == pytest.approx(on_cpu_possible, rel=0.10)


def test_sleeping_thread_barely_runs_and_switches(worker: Worker) -> None:
    with ThreadCounters([worker.tid], ["task-clock", "context-switches"]) as c:
        before = c.read()
        t0 = time.perf_counter()
        c.enable()
        worker.call(lambda: time.sleep(0.2))
        c.disable()
        wall = time.perf_counter() - t0
        got = delta(before, c.read())
    task_clock, switches = got["task-clock"]["value"], got["context-switches"]["value"]
    assert task_clock is not None and switches is not None
    # a sleep costs microseconds of CPU; 5% of 0.2 s leaves room for a slow wake-up path
    assert task_clock / 1e9 < 0.05 * wall
    assert switches >= 1


def test_counts_readable_after_thread_exit() -> None:
    w = Worker()
    with ThreadCounters([w.tid], ["task-clock", "page-faults"]) as c:
        before = c.read()
        c.enable()
        cpu = w.call(lambda: spin(0.05))
        w.stop()
        c.disable()
        got = delta(before, c.read())
    assert got["task-clock"]["status"] == "ok"
    assert got["task-clock"]["value"] == pytest.approx(cpu * 1e9, rel=0.10)


def test_region_scopes_the_count(worker: Worker) -> None:
    with ThreadCounters([worker.tid], ["task-clock"]) as c:
        outside = worker.call(lambda: spin(0.15))  # after open, before enable
        before = c.read()
        assert before.groups[0].values == {"task-clock": 0}, "leader opened disabled"
        c.enable()
        inside = worker.call(lambda: spin(0.05))
        c.disable()
        outside += worker.call(lambda: spin(0.15))
        got = delta(before, c.read())
    value = got["task-clock"]["value"]
    assert value is not None
    assert value / 1e9 == pytest.approx(inside, rel=0.10)
    assert value / 1e9 < 0.5 * outside


def sleep_three_times() -> None:
    for _ in range(3):
        time.sleep(0.01)


def test_every_round_counts_members(worker: Worker) -> None:
    """Members keep counting from the second round on (no PERF_IOC_FLAG_GROUP)."""
    events = ["task-clock", "context-switches", "cpu-migrations", "page-faults"]
    with ThreadCounters([worker.tid], events) as c:
        for _ in range(3):
            before = c.read()
            c.enable()
            worker.call(sleep_three_times)
            c.disable()
            got = delta(before, c.read())
            assert got["task-clock"]["value"] is not None and got["task-clock"]["value"] > 0
            assert got["context-switches"]["value"] is not None
            assert got["context-switches"]["value"] >= 3


def machine_has_cycles() -> bool:
    sys_ = perf_abi.CtypesPerfSys()
    attr = perf_abi.pack_attr(perf_abi.TYPE_HARDWARE, 0, disabled=True)
    try:
        fd = sys_.open(attr, 0, -1, -1, perf_abi.PERF_FLAG_FD_CLOEXEC)
    except OSError as exc:
        if exc.errno in perf_abi.UNSUPPORTED_ERRNOS:
            return False
        raise
    sys_.close(fd)
    return True


def test_hardware_events_not_supported_without_pmu(worker: Worker) -> None:
    if machine_has_cycles():
        pytest.skip("this machine has a hardware PMU: `cycles` opens")
    with ThreadCounters([worker.tid], DEFAULT_EVENTS) as c:
        before = c.read()
        c.enable()
        worker.call(lambda: spin(0.01))
        c.disable()
        got = delta(before, c.read())
    for name, event in EVENTS.items():
        if event.hardware:
            assert got[name] == {"value": None, "status": "not supported", "running_fraction": None}
        else:
            assert got[name]["status"] == "ok"


def test_machine_info_here() -> None:
    info = perf_machine_info()
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    assert info["kernel.perf_event_paranoid"] == paranoid
    assert isinstance(info["pmus"], list)
    assert info["nmi_watchdog"] in (True, False, None)


CHILD = r"""
import sys, time
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
t = time.thread_time()
while time.thread_time() - t < 0.3:
    pass
for _ in range(20):
    time.sleep(0.005)
sys.stdout.write("done\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def perf_ctl(ctl: int, ack: int, command: str) -> None:
    os.write(ctl, command.encode() + b"\n")
    ready, _, _ = select.select([ack], [], [], 20)
    assert ready, f"perf stat did not ack {command!r}"
    assert os.read(ack, 16) == b"ack\n\0"


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf is not installed")
def test_agrees_with_perf_stat(tmp_path: Path) -> None:
    """Both count the same task at once; our window is nested inside perf's.

    perf stat (started disabled, -D -1) is enabled through its control fifo
    before ours and disabled after ours, and the child is blocked in a read at
    both edges, so the two see the same kernel events except what the child
    does between printing "done" and blocking again: at most ~1 ms of CPU and
    the context switch(es) of that block (and a preemption there). Hence
    0 <= perf - ours <= 2 ms task-clock and 0 <= perf - ours <= 2 switches,
    independent of machine load.
    """
    ctl_path, ack_path, out = tmp_path / "ctl", tmp_path / "ack", tmp_path / "perf.csv"
    os.mkfifo(ctl_path)
    os.mkfifo(ack_path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    ctl = os.open(ctl_path, os.O_RDWR)  # O_RDWR: never blocks on a fifo (Linux)
    ack = os.open(ack_path, os.O_RDWR)
    perf = None
    try:
        assert child.stdout.readline() == "ready\n"
        perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-o", str(out), "-e", "task-clock,context-switches",
             "--control", f"fifo:{ctl_path},{ack_path}", "-D", "-1", "-p", str(child.pid)],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        perf_ctl(ctl, ack, "enable")
        with ThreadCounters([child.pid], ["task-clock", "context-switches"]) as c:
            before = c.read()
            c.enable()
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"
            c.disable()
            ours = delta(before, c.read())
        perf_ctl(ctl, ack, "disable")
        child.stdin.close()
        assert child.wait(timeout=20) == 0
        assert perf.wait(timeout=20) == 0  # perf stat -p exits with its target
    finally:
        os.close(ctl)
        os.close(ack)
        for proc in (child, perf):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is perf else signal.SIGKILL)
                proc.wait(timeout=20)
        if child.stdout is not None:
            child.stdout.close()
    theirs = {}
    for line in out.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in ("task-clock", "context-switches"):
            theirs[fields[2]] = float(fields[0])
    ours_ms = ours["task-clock"]["value"]
    ours_cs = ours["context-switches"]["value"]
    assert ours_ms is not None and ours_cs is not None
    ours_ms /= 1e6
    print(f"task-clock ms: ours {ours_ms:.3f} perf {theirs['task-clock']:.3f}; ", end="")
    print(f"context-switches: ours {ours_cs:.0f} perf {theirs['context-switches']:.0f}")
    assert ours_ms >= 300 * 0.95  # the child really spun 0.3 s of CPU inside the window
    assert -0.01 <= theirs["task-clock"] - ours_ms <= 2.0  # perf prints 2 decimals
    assert 0 <= theirs["context-switches"] - ours_cs <= 2
    assert ours_cs >= 20  # 20 sleeps


def tracefs_ok() -> str | None:
    tp = perf_abi.tracepoint_id("syscalls/sys_enter_write")
    return None if isinstance(tp, int) else f"syscall tracepoints unavailable here: {tp}"


needs_tracefs = pytest.mark.skipif(tracefs_ok() is not None, reason=str(tracefs_ok()))


@needs_tracefs
def test_syscalls_counted_exactly(worker: Worker) -> None:
    k = 1000
    devnull = os.open(os.devnull, os.O_WRONLY)
    a, b = socket.socketpair()

    def job() -> None:
        for _ in range(k):
            os.write(devnull, b"x")
        for _ in range(k):  # drained as we go: never blocks on a full socket buffer
            a.send(b"y")
            b.recv(1)

    try:
        with SyscallCounters([worker.tid], ["write", "sendto", "recvfrom", "nosuchcall"]) as s:
            before = s.read()
            s.enable()
            worker.call(job)  # the hand-off is futex work, no write/sendto/recvfrom
            s.disable()
            got = s.delta(before, s.read())
    finally:
        os.close(devnull)
        a.close()
        b.close()
    assert got["write"] == {"value": float(k), "status": "ok", "running_fraction": 1.0}
    assert got["sendto"]["value"] == k and got["recvfrom"]["value"] == k
    assert got["nosuchcall"] == {"value": None, "status": "not supported", "running_fraction": None}


def write_n(fd: int, n: int) -> None:
    for _ in range(n):
        os.write(fd, b"x")


@needs_tracefs
def test_keeper_holds_tracepoints_across_passes(worker: Worker) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with TracepointKeeper() as keeper:
            keeper.hold(["write"])
            assert keeper.held == ("write",)
            for k in (10, 20):
                with SyscallCounters([worker.tid], ["write"], keeper=keeper) as s:
                    before = s.read()
                    s.enable()
                    worker.call(functools.partial(write_n, devnull, k))
                    s.disable()
                    assert s.delta(before, s.read())["write"]["value"] == k
                assert len(perf_fds()) >= 1, "the keeper's fd stays open between passes"
    finally:
        os.close(devnull)
