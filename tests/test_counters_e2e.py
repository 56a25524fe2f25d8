"""Counters on real rounds: a real sink process, real SenderPools, the real perf binding.

The per-round checks drive ``measure`` directly on ``transfer.SinkProcess`` +
``SenderPool`` (cheaper than pytester, same code as the plugin); the option
handling and the JSON are checked through pytester subprocess runs. No check
compares a time or a rate with a constant: CPU time is bounded by the wall
time of the same round, syscall counts by what the mode must call, and our
syscall counts are compared with strace's on the very same thread and work.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.bench.calibration import calibrate
from pytest_netcopy.bench.measure import RoundCounters, combine, derived, sink_counters
from pytest_netcopy.bench.passes import SENDER_SYSCALLS, syscall_pass
from pytest_netcopy.instruments import perf_abi
from pytest_netcopy.instruments.counters import (
    DEFAULT_EVENTS,
    EVENTS,
    NOT_COUNTED,
    NOT_PERMITTED,
    NOT_SUPPORTED,
    OK,
    SyscallCounters,
)
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pool import RoundResult, SenderPool

SIZE = 4096
MODES = ("two_copy", "one_copy", "zero_copy")
MISSING = (NOT_COUNTED, NOT_SUPPORTED, NOT_PERMITTED)
#: CPU a sender thread may use inside the counted window but after the round's end:
#: the hand-off through the done and start barriers (tens of microseconds of Python
#: measured here). 1 ms per thread is 10x that, and still well under the ~20 ms of a
#: round, so counting anything else (calibration, another round) would show.
HANDOFF_NS = 1_000_000


def tracefs_problem() -> str | None:
    """Why syscall tracepoints cannot be counted here, or None when they can."""
    found = perf_abi.tracepoint_id("syscalls/sys_enter_sendmsg")
    if isinstance(found, int):
        return None
    return (
        "syscall tracepoints are unavailable here: events/syscalls/sys_enter_sendmsg/id "
        f"under /sys/kernel/tracing or /sys/kernel/debug/tracing is {found}"
    )


needs_tracefs = pytest.mark.skipif(tracefs_problem() is not None, reason=str(tracefs_problem()))


@pytest.fixture(scope="module")
def sink() -> Iterator[SinkProcess]:
    s = SinkProcess(timeout=30.0)
    s.ensure_running()
    yield s
    s.close()


def open_pool(sink: SinkProcess, mode: str, threads: int) -> SenderPool:
    return SenderPool(sink, builtin_registry().get(mode), SIZE, threads, timeout=30.0)


# ------------------------------------------------------------- task-clock on real work


@dataclass
class StubPool:
    """All RoundCounters needs of a pool: the thread ids to count."""

    tids: list[int]


def spin(seconds: float) -> float:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass
    return time.thread_time() - start


def run_queue_wait_ns(tid: int) -> int | None:
    try:
        return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_busy_thread_round_task_clock_is_its_wall_time() -> None:
    jobs: queue.Queue[Callable[[], Any] | None] = queue.Queue()
    done: queue.Queue[Any] = queue.Queue()

    def serve() -> None:
        while (job := jobs.get()) is not None:
            done.put(job())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert thread.native_id is not None
    tid = thread.native_id
    cpu: list[float] = []

    def a_round() -> RoundResult:  # the thread spins 0.1 s of CPU, then blocks again
        jobs.put(lambda: spin(0.1))
        cpu.append(done.get(timeout=60))
        return RoundResult(seconds=0.0, messages=1, bytes=1, acks=[])

    try:
        with RoundCounters(StubPool([tid]), ["task-clock"]) as rc:  # type: ignore[arg-type]
            jobs.put(lambda: spin(0.05))  # opened, before the round: not counted
            done.get(timeout=60)
            waited0 = run_queue_wait_ns(tid)
            t0 = time.perf_counter()
            rc.run(a_round)
            wall = time.perf_counter() - t0
            waited1 = run_queue_wait_ns(tid)
    finally:
        jobs.put(None)
        thread.join(timeout=60)
    (counted,) = rc.per_round
    task_clock = counted["task-clock"]["value"]
    assert counted["task-clock"]["status"] == OK and task_clock is not None
    assert task_clock / 1e9 == pytest.approx(cpu[0], rel=0.10)  # the thread's own CPU clock
    assert task_clock / 1e9 <= wall
    if waited0 is not None and waited1 is not None:
        # wall = on a CPU + waiting for one: true on a loaded 2-CPU machine too
        assert task_clock / 1e9 == pytest.approx(wall - (waited1 - waited0) / 1e9, rel=0.10)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_round_task_clock_is_within_threads_times_round_time(
    sink: SinkProcess, mode: str, threads: int
) -> None:
    with open_pool(sink, mode, threads) as pool, RoundCounters(pool, DEFAULT_EVENTS) as rc:
        count = calibrate(pool, 0.02, SIZE)  # counters open but disabled: not counted
        rounds = [rc.run(lambda: pool.run_round(count)) for _ in range(3)]
    assert len(rc.per_round) == 3
    for result, counted in zip(rounds, rc.per_round, strict=True):
        task_clock = counted["task-clock"]
        assert task_clock["status"] == OK and task_clock["running_fraction"] == 1.0
        assert task_clock["value"] is not None
        assert 0 < task_clock["value"] <= threads * (result.seconds * 1e9 + HANDOFF_NS)
        for name, entry in counted.items():  # no PMU here: null, never 0
            assert (entry["value"] is None) == (entry["status"] in MISSING), name
        assert len(result.acks) == threads
        for a in result.acks:  # each sink thread timed itself within the round
            assert 0 < a.cpu_ns <= result.seconds * 1e9
    sink_side = sink_counters(rounds)
    sink_ns = sink_side["task-clock"]["value"]
    assert sink_ns == sum(a.cpu_ns for r in rounds for a in r.acks) > 0
    total_bytes = 3 * count * threads * SIZE
    figures = derived(combine(rc.per_round), sink_side, total_bytes).to_extra_info()
    sender_ns = sum(c["task-clock"]["value"] or 0.0 for c in rc.per_round)
    assert figures["cpu_ns_per_byte"] == pytest.approx(sender_ns / total_bytes)
    assert figures["sink_cpu_ns_per_byte"] == pytest.approx(sink_ns / total_bytes)
    for key, event in (("cycles_per_byte", "cycles"), ("ipc", "instructions")):
        if rc.per_round[0][event]["value"] is None:
            assert figures[key] is None


# ------------------------------------------------------------- syscalls per message

PASS_COUNT = 1000  # messages per connection in the syscall pass


@needs_tracefs
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_syscalls_per_message_match_the_mode(sink: SinkProcess, mode: str, threads: int) -> None:
    with open_pool(sink, mode, threads) as pool:
        pool.run_round(PASS_COUNT)  # warm: connections past slow start
        before = [s.stats() for s in pool.senders]
        senders, sinks = syscall_pass(pool, PASS_COUNT)
        after = [s.stats() for s in pool.senders]
    messages = PASS_COUNT * threads

    def calls(name: str) -> int:
        per_message = senders[name]
        assert per_message is not None, name
        n = round(per_message * messages)
        assert per_message * messages == pytest.approx(n), name  # whole calls
        return n

    assert "not_counted" not in senders and "not_counted" not in sinks
    assert senders["total"] == pytest.approx(sum(senders[n] for n in SENDER_SYSCALLS))
    # per round and connection: one 16-byte ROUND header (sendall: sendto), and two
    # setsockopt(TCP_NODELAY) to push Nagle's tail out
    header, nagle = threads, 2 * threads
    assert calls("setsockopt") == nagle
    if mode == "two_copy":  # sendall(buf): sendto, more only after a short write
        assert messages + header <= calls("sendto") <= 1.05 * messages + header
        assert calls("sendmsg") == calls("recvmsg") == calls("poll") == 0
    elif mode == "one_copy":  # sendmsg(fields), send_rest only after a short write
        assert calls("sendto") == header
        assert messages <= calls("sendmsg") <= 1.05 * messages
        assert calls("recvmsg") == calls("poll") == 0
    else:
        assert calls("sendto") == header

        def grew(key: str) -> int:
            return sum(a[key] - b[key] for b, a in zip(before, after, strict=True) if a and b)

        sends, enobufs, notes = grew("sends"), grew("enobufs"), grew("notifications")
        # every sendmsg(MSG_ZEROCOPY) either got an id or failed with ENOBUFS
        assert calls("sendmsg") == sends + enobufs and sends >= messages
        assert notes > 0 and calls("recvmsg") >= notes  # error-queue reads (+ EAGAINs)
    assert sinks["recvfrom"] is not None and sinks["recvfrom"] > 0


CHILD = r"""
import json, socket, sys, threading
from pytest_netcopy.send.builtin import builtin_registry

mode = builtin_registry().get(sys.argv[1])
size, count = int(sys.argv[2]), int(sys.argv[3])
with socket.create_server(("127.0.0.1", 0)) as server:
    tx = socket.create_connection(server.getsockname())
    rx, _ = server.accept()
mode.prepare(tx)
sender = mode.sender(tx, 1, size)


def drain():
    buf = bytearray(1 << 16)
    while rx.recv_into(buf):
        pass


go, done, leave = threading.Event(), threading.Event(), threading.Event()


def work():  # the counted thread: blocked in a futex at both edges of the window
    go.wait()
    sender.send(0, count)
    sender.finish(30.0)
    done.set()
    leave.wait()


drainer = threading.Thread(target=drain)
worker = threading.Thread(target=work)
drainer.start()
worker.start()
print(worker.native_id, flush=True)
assert sys.stdin.readline() == "go\n"
go.set()
done.wait()
print("done", flush=True)
assert sys.stdin.readline() == "exit\n"
leave.set()
worker.join()
sender.close()
tx.close()
drainer.join()
rx.close()
print(json.dumps(sender.stats()), flush=True)
"""


def parse_strace_summary(text: str) -> dict[str, int]:
    """``strace -c`` table: {syscall: calls} (calls include the ones that failed)."""
    calls = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[-1] != "total":
            calls[fields[-1]] = int(fields[3])
    return calls


@needs_tracefs
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("mode", MODES)
def test_syscall_counts_agree_with_strace(tmp_path: Path, mode: str) -> None:
    """Our tracepoint counts and strace's ptrace counts, on one thread, in one run.

    A child sends ``count`` messages through the real mode sender on a loopback
    connection from a dedicated thread. strace attaches to that thread alone
    (-p TID, no -f) before the work and detaches after it; our SyscallCounters
    count the same thread over a window nested inside strace's. The thread is
    blocked in a futex at both edges, and the names compared (the sender's
    syscalls) never occur in that hand-off, so both must see exactly the same
    calls: tolerance 0. Timing-dependent counts (zero_copy's error-queue reads,
    EAGAINs, ENOBUFS retries) are compared too, as both count the same run.
    """
    count = 3000
    out = tmp_path / "strace.txt"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(SIZE), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    tracer: subprocess.Popen[str] | None = None
    assert child.stdin is not None and child.stdout is not None
    try:
        tid = int(child.stdout.readline())
        tracer = subprocess.Popen(
            ["strace", "-c", "-o", str(out), "-e", "trace=" + ",".join(SENDER_SYSCALLS),
             "-p", str(tid)],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert tracer.stderr is not None
        attached = tracer.stderr.readline()
        if "attached" not in attached:
            pytest.skip(f"strace cannot attach here: {attached.strip()}")
        with SyscallCounters([tid], SENDER_SYSCALLS) as ours:
            before = ours.read()
            ours.enable()
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"
            ours.disable()
            got = ours.delta(before, ours.read())
        tracer.send_signal(signal.SIGINT)  # detach and write the summary
        assert tracer.wait(timeout=30) in (0, -signal.SIGINT)
        child.stdin.write("exit\n")
        child.stdin.flush()
        stats = child.stdout.readline()
        assert child.wait(timeout=30) == 0
    finally:
        for proc in (tracer, child):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()
        if tracer is not None and tracer.stderr is not None:
            tracer.stderr.close()
    theirs = parse_strace_summary(out.read_text())
    mine = {}
    for name, entry in got.items():
        assert entry["status"] == OK and entry["value"] is not None, name
        mine[name] = int(entry["value"])
    print(f"{mode}: ours {mine}, strace {theirs}")
    assert mine == {name: theirs.get(name, 0) for name in SENDER_SYSCALLS}
    # and the work was the mode's: one send call per message (no short writes at 4 KiB)
    send = "sendto" if mode == "two_copy" else "sendmsg"
    assert mine[send] >= count
    if mode == "zero_copy":
        notes = json.loads(stats)["notifications"]
        assert notes > 0 and mine["recvmsg"] >= notes


# ------------------------------------------------------------- the plugin end to end


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=4K", "--netcopy-threads=2", "--benchmark-json=out.json", *args
    )
    data = json.loads((pytester.path / "out.json").read_text())
    return result, data


def test_default_counters_in_the_json(pytester: pytest.Pytester) -> None:
    result, data = run_json(pytester, "--netcopy-modes=two_copy,zero_copy")
    result.assert_outcomes(passed=2)
    tracefs = tracefs_problem() is None
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        mode, threads, per_round = extra["mode"], extra["threads"], extra["bytes_per_round"]
        counted = extra["counters"]
        assert list(counted) == list(DEFAULT_EVENTS)
        for where in ("counters", "sink_counters"):
            for name, entry in extra[where].items():
                assert (entry["value"] is None) == (entry["status"] in MISSING), (where, name)
        assert counted["task-clock"]["status"] == OK and counted["task-clock"]["value"] > 0
        assert extra["cpu_ns_per_byte"] > 0 and extra["sink_cpu_ns_per_byte"] > 0
        assert extra["sink_counters"]["task-clock"]["value"] > 0
        for key, event in (
            ("cycles_per_byte", "cycles"),
            ("instructions_per_byte", "instructions"),
            ("ipc", "instructions"),
            ("ipc", "cycles"),
        ):
            if counted[event]["value"] is None:
                assert extra[key] is None, key  # this machine has no PMU: null, never 0
        rounds = extra["rounds"]
        assert len(rounds["cpu_ns_per_byte"]) == len(rounds["seconds"]) == 2
        for ns_per_byte, seconds in zip(rounds["cpu_ns_per_byte"], rounds["seconds"], strict=True):
            assert 0 < ns_per_byte * per_round <= threads * (seconds * 1e9 + HANDOFF_NS)
        calls = extra["syscalls_per_message"]
        if not tracefs:
            assert calls["total"] is None and set(calls["not_counted"]) == set(SENDER_SYSCALLS)
            continue
        # tiny rounds here (--netcopy-round-time=0.002): the per-round header and
        # Nagle push are a few percent of the calls
        send = "sendto" if mode == "two_copy" else "sendmsg"
        assert 1.0 <= calls[send] <= 1.15, calls
        assert calls["total"] == pytest.approx(sum(calls[n] for n in SENDER_SYSCALLS))
        if mode == "zero_copy":
            assert calls["recvmsg"] > 0
        assert extra["sink_syscalls_per_message"]["recvfrom"] > 0
    assert isinstance(data["machine_info"]["netcopy"]["pmus"], list)


@pytest.mark.parametrize("selection", ["none", "task-clock"])
def test_counter_selection_in_the_json(pytester: pytest.Pytester, selection: str) -> None:
    result, data = run_json(pytester, "--netcopy-modes=one_copy", f"--netcopy-counters={selection}")
    result.assert_outcomes(passed=1)
    (bench,) = data["benchmarks"]
    extra = bench["extra_info"]
    for key in ("cycles_per_byte", "instructions_per_byte", "ipc", "context_switches_per_mb"):
        assert extra[key] is None, key  # not selected: null, not 0
    # the sink's own CPU clock is not a perf counter on the senders: always there
    assert extra["sink_cpu_ns_per_byte"] > 0
    if selection == "none":
        assert extra["counters"] == {}
        assert extra["cpu_ns_per_byte"] is None
        assert "cpu_ns_per_byte" not in extra["rounds"]
        assert extra["syscalls_per_message"] is None
        assert extra["sink_syscalls_per_message"] is None
    else:
        assert list(extra["counters"]) == ["task-clock"]
        assert extra["cpu_ns_per_byte"] > 0
        assert all(v > 0 for v in extra["rounds"]["cpu_ns_per_byte"])
        assert extra["syscalls_per_message"] is not None  # the pass runs with any counter


def test_unknown_counter_is_a_usage_error_listing_the_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("--collect-only", "--netcopy-counters=task-clock,bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR == 4
    err = result.stderr.str()
    assert "Traceback" not in err
    result.stderr.fnmatch_lines(["*--netcopy-counters='task-clock,bogus'*'bogus'*"])
    text = " ".join(err.split())
    for name in EVENTS:
        assert name in text, name
    assert "'default'" in text and "'none'" in text


PARANOID_CONFTEST = """
import errno
import struct

from pytest_netcopy.instruments import counters, perf_abi


class KernelRefused(perf_abi.CtypesPerfSys):
    \"\"\"The real kernel, but kernel-side counting refused (perf_event_paranoid=2).\"\"\"

    def open(self, attr, pid, cpu, group_fd, flags):
        (type_,) = struct.unpack_from("=I", attr, perf_abi.OFF_TYPE)
        (bits,) = struct.unpack_from("=Q", attr, perf_abi.OFF_FLAGS)
        if type_ != perf_abi.TYPE_TRACEPOINT and not bits & perf_abi.FLAG_EXCLUDE_KERNEL:
            raise OSError(errno.EACCES, "perf_event_open: Permission denied")
        return super().open(attr, pid, cpu, group_fd, flags)


counters.CtypesPerfSys = KernelRefused
"""


def run_kernel_refused(pytester: pytest.Pytester) -> tuple[pytest.RunResult, dict[str, Any]]:
    """A real run where the boundary refuses kernel-side counting with EACCES."""
    pytester.makeconftest(PARANOID_CONFTEST)
    result, data = run_json(pytester, "--netcopy-modes=two_copy")
    result.assert_outcomes(passed=1)
    return result, data["benchmarks"][0]["extra_info"]


def test_kernel_refused_falls_back_to_user_only(pytester: pytest.Pytester) -> None:
    _, extra = run_kernel_refused(pytester)
    for name, entry in extra["counters"].items():
        if EVENTS[name].hardware:  # then refused by the real kernel: no PMU here
            assert entry["value"] is None and entry["status"] in MISSING, name
        elif name == "task-clock":  # a software clock ignores exclude_kernel: counted whole
            assert entry["status"] == "ok", name
        elif name not in ("context-switches", "cpu-migrations"):  # not permitted: see below
            assert entry["status"] == "user-only", name
    assert extra["counters"]["task-clock"]["value"] > 0
    assert extra["cpu_ns_per_byte"] > 0


def test_kernel_refused_prints_the_paranoid_hint(pytester: pytest.Pytester) -> None:
    result, _ = run_kernel_refused(pytester)
    result.stdout.fnmatch_lines(["*netcopy: perf counters fell back to user-only*CAP_PERFMON*"])


def test_kernel_refused_reports_no_zero_context_switches(pytester: pytest.Pytester) -> None:
    _, extra = run_kernel_refused(pytester)
    assert extra["counters"]["context-switches"]["value"] is None
    assert extra["context_switches_per_mb"] is None
