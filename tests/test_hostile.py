"""A sink under attack or stuck, and a session interrupted: nothing hangs, nothing is left."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from _support import FAST

from pytest_netcopy.send.builtin import TwoCopy
from pytest_netcopy.sink import wire
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pool import SenderPool


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer exists (a zombie counts as left running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "X"


def test_a_stopped_sink_is_killed_and_replaced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stop="""
        import os, signal
        from pathlib import Path

        def test_stopped(netcopy, netcopy_sink):
            Path("first.pid").write_text(str(netcopy_sink.pid))
            os.kill(netcopy_sink.pid, signal.SIGSTOP)
            netcopy.run("two_copy", size=1024, threads=1)

        def test_next_benchmark_gets_a_new_sink(netcopy, netcopy_sink):
            assert netcopy.run("two_copy", size=1024, threads=1).intact
            assert netcopy_sink.pid != int(Path("first.pid").read_text())
        """
    )
    started = time.monotonic()
    result = pytester.runpytest_subprocess(*FAST[:-1], "--netcopy-timeout=5")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*the sink stopped responding*"])
    assert "Traceback" not in result.stdout.str()
    first = int((pytester.path / "first.pid").read_text())
    assert _gone(first), "the stopped sink was left behind"
    assert elapsed < 30, f"took {elapsed:.1f} s"


class TunedSink(SinkProcess):
    """The sink with extra options and, with ``nofile``, a low RLIMIT_NOFILE."""

    def __init__(self, *extra: str, nofile: int | None = None, timeout: float = 10) -> None:
        super().__init__(timeout=timeout)
        self.extra, self.nofile = list(extra), nofile

    def command(self) -> list[str]:
        cmd = [*super().command(), *self.extra]
        if self.nofile is None:
            return cmd
        n = self.nofile
        boot = (
            f"import resource, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, ({n}, {n})); "
            "runpy.run_module('pytest_netcopy.sink', run_name='__main__', alter_sys=True)"
        )
        return [sys.executable, "-c", boot, *cmd[3:]]


@contextmanager
def running(sink: SinkProcess) -> Iterator[SinkProcess]:
    sink.ensure_running()
    try:
        yield sink
    finally:
        sink.close()


def cut_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the sink closes ``sock`` within ``seconds``."""
    ready, _, _ = select.select([sock], [], [], seconds)
    if not ready:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def round_is_intact(sink: SinkProcess) -> None:
    with SenderPool(sink, TwoCopy(), 4096, 2, timeout=10) as pool:
        result = pool.run_round(200)
        assert [a.ok for a in result.acks] == [True, True]
        assert result.verified_bytes == 2 * 200 * 4096
        pool.finish_stream()


def test_a_slow_drip_hello_is_cut_at_one_deadline() -> None:
    # hello deadline: the timeout (1 s); the old per-recv timeout never fired at one byte / 0.2 s
    with running(TunedSink(timeout=1)) as sink, socket.create_connection(sink.address) as s:
        started = time.monotonic()
        for _ in range(wire.HELLO.size - 1):  # never a whole HELLO
            s.sendall(b"N")
            if cut_within(s, 0.2):
                break
        else:
            pytest.fail("a HELLO one byte every 0.2 s held the connection for 5 s")
        assert 0.5 < time.monotonic() - started < 4.0  # one 1 s deadline, not 5 s of drip
        assert sink.ping(5) and sink.refused == 1


def test_unauthenticated_connections_past_the_cap_drop_the_oldest() -> None:
    with running(TunedSink("--max-pending=4")) as sink, ExitStack() as stack:
        silent = [stack.enter_context(socket.create_connection(sink.address)) for _ in range(10)]
        assert all(cut_within(s, 5) for s in silent[:6])
        assert not any(cut_within(s, 0.2) for s in silent[6:])
        round_is_intact(sink)
        assert sink.alive()
        assert sink.ping(5) and sink.refused >= 6


@pytest.mark.parametrize("options", [(), ("--max-pending=1000",)], ids=["capped", "uncapped"])
def test_out_of_file_descriptors_the_sink_lives_and_a_round_gets_through(
    options: tuple[str, ...],
) -> None:
    # uncapped: only the sink's EMFILE handling (cut the oldest stranger) keeps it alive
    with running(TunedSink(*options, nofile=32)) as sink, ExitStack() as stack:
        for _ in range(60):
            stack.enter_context(socket.create_connection(sink.address))
        round_is_intact(sink)
        assert sink.alive()
        assert sink.ping(5) and sink.refused >= 60 - 32
        log = sink.log_tail(100_000)
    if options:
        assert "out of file descriptors" in log


INTERRUPTED = """
import os
from pathlib import Path
from pytest_netcopy import FunctionMode

def test_long(netcopy, netcopy_sink):
    Path("sink.pid").write_text(str(netcopy_sink.pid))

    def send(sock, fields):
        Path("running").touch()
        sock.sendall(b"".join(fields))

    netcopy.run(FunctionMode("marked", send), size=4096, threads=4)
"""


def test_ctrl_c_mid_round_ends_the_session_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_long=INTERRUPTED)
    args = ("-p", "no:cacheprovider", "--netcopy-round-time=0.5", "--netcopy-rounds=40")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        deadline = time.monotonic() + 30
        while not (pytester.path / "running").exists():
            assert time.monotonic() < deadline, "the rounds never started"
            assert proc.poll() is None, "pytest ended before its rounds"
            time.sleep(0.01)
        time.sleep(0.3)  # well inside the rounds: calibrated to 0.5 s each
        sink_pid = int((pytester.path / "sink.pid").read_text())
        interrupted = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        proc.wait(timeout=30)
        elapsed = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert elapsed < 10.0, f"Ctrl-C took {elapsed:.1f} s"  # the rounds left: about 20 s
    deadline = time.monotonic() + 5
    while not _gone(sink_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(sink_pid), "the sink outlived the interrupted session"


def test_the_summary_counts_the_strangers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_strangers="""
        import socket
        from pytest_netcopy.sink import wire as sink

        def test_knocks(netcopy, netcopy_sink):
            wrong = sink.HELLO.pack(sink.HELLO_MAGIC, bytes(16), 1, 4096)
            for payload in (b"GET / HTTP/1.0\\r\\n\\r\\n" + bytes(64), wrong, wrong):
                with socket.create_connection(netcopy_sink.address, timeout=5) as s:
                    s.sendall(payload)
                    s.settimeout(5)
                    try:
                        assert s.recv(1) == b""
                    except ConnectionResetError:
                        pass
            assert netcopy.run("two_copy", size=4096, threads=1).intact
        """
    )
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["netcopy: refused 3 connections without the session token"])
