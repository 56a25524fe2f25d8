"""What happens when things go wrong: corrupted payloads, a killed sink, strangers."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support import FAST, SWEEP

CORRUPTING_CONFTEST = """
import struct
from pytest_netcopy import FunctionMode

def corrupting_send(sock, fields):
    seq = struct.unpack_from("<I", fields[0])[0]
    data = bytearray(b"".join(fields))
    if seq == 5:
        data[2 * len(fields[0]) + 20] ^= 0xFF   # message 5, field 2, byte 20
    sock.sendall(data)

def pytest_netcopy_add_modes(registry):
    registry.add(FunctionMode("corrupting", corrupting_send))
"""


def test_a_corrupted_byte_is_caught_with_connection_sequence_and_offset(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CORRUPTING_CONFTEST)
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-modes=corrupting,two_copy", "--netcopy-sizes=256", "--netcopy-threads=1"
    )
    result.assert_outcomes(failed=1, passed=1)
    text = result.stdout.str()
    m = re.search(
        r"payload corrupted \(corrupting, 256 B, 1 threads\): connection 0, message sequence "
        r"number 5, offset 84 \(field 2, byte 20\): expected 0x([0-9a-f]{2}), received "
        r"0x([0-9a-f]{2})",
        text,
    )
    assert m, text
    assert int(m.group(1), 16) ^ int(m.group(2), 16) == 0xFF
    assert "Traceback" not in text


RECKLESS_CONFTEST = """
import select
import socket
from pytest_netcopy import Mode, Sender
from pytest_netcopy.send.message import Message

class RecklessSender(Sender):
    '''MSG_ZEROCOPY from ONE buffer, restamped before the kernel is done with it.'''
    def __init__(self, sock, conn_id, size):
        self.sock, self.message = sock, Message(conn_id, size)
        self.sends = self.done = 0

    def send(self, first, count):
        for seq in range(first, first + count):
            self.message.stamp(seq)
            n = self.sock.sendmsg(self.message.views, (), 0x4000000)
            self.sends += 1
            assert n == self.message.size

    def finish(self, timeout):
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        while self.done < self.sends:   # drain completions so the socket closes cleanly
            try:
                _, anc, _, _ = self.sock.recvmsg(0, 256, socket.MSG_ERRQUEUE)
            except BlockingIOError:
                select.select([], [], [], 0.001)
                continue
            for _, _, data in anc:
                lo, hi = int.from_bytes(data[8:12], "little"), int.from_bytes(data[12:16], "little")
                self.done += hi - lo + 1

    def close(self):
        self.message.release()

class Reckless(Mode):
    name = "reckless_zero_copy"
    def prepare(self, sock):
        sock.setsockopt(socket.SOL_SOCKET, 60, 1)
        # corked, the kernel keeps the pinned pages queued for a while: exactly
        # the window in which a correct sender must not touch them
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    def sender(self, sock, conn_id, size):
        return RecklessSender(sock, conn_id, size)

def pytest_netcopy_add_modes(registry):
    registry.add(Reckless())
"""


def test_a_zero_copy_buffer_rewritten_before_completion_is_caught(
    pytester: pytest.Pytester,
) -> None:
    """While the kernel still holds the pages, restamping them changes the wire bytes."""
    pytester.makeconftest(RECKLESS_CONFTEST)
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-modes=reckless_zero_copy,zero_copy", "--netcopy-sizes=1024",
        "--netcopy-threads=1",
    )  # fmt: skip
    # the correct zero_copy passes; the one that restamps its only buffer is caught
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*payload corrupted (reckless_zero_copy, 1024 B, 1 threads): connection 0, message "
         "sequence number *, offset * (field 0, byte *)*"]
    )  # fmt: skip


def test_a_killed_sink_fails_the_test_quickly_and_is_restarted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_kill="""
        import os, signal, struct
        from pathlib import Path
        from pytest_netcopy import FunctionMode

        def test_killed(netcopy, netcopy_sink):
            pid = netcopy_sink.pid
            Path("first.pid").write_text(str(pid))

            def send(sock, fields):
                if struct.unpack_from("<I", fields[0])[0] == 50:
                    os.kill(pid, signal.SIGKILL)
                sock.sendall(b"".join(fields))

            netcopy.run(FunctionMode("killer", send), size=1024, threads=2)

        def test_next_benchmark_gets_a_new_sink(netcopy, netcopy_sink):
            assert netcopy.run("two_copy", size=1024, threads=1).intact
            assert netcopy_sink.pid != int(Path("first.pid").read_text())
        """
    )
    started = time.monotonic()
    result = pytester.runpytest_subprocess(*FAST[:-1], "--netcopy-timeout=60")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*the netcopy sink (pid *) killed by SIGKILL*"])
    assert "Traceback" not in result.stdout.str()
    assert elapsed < 40, f"a dead sink took {elapsed:.1f} s to notice (timeout is 60 s)"


def test_a_stranger_is_refused_and_the_round_is_unaffected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stranger="""
        import socket, struct
        import pytest
        from pytest_netcopy.sink import wire as sink

        def knock(port, payload):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(5)
                s.sendall(payload)
                try:
                    return s.recv(100)
                except ConnectionResetError:
                    return b""

        def test_stranger(netcopy, netcopy_sink):
            port = netcopy_sink.port
            assert knock(port, b"GET / HTTP/1.0\\r\\n\\r\\n" + b"x" * 64) == b""
            wrong = sink.HELLO.pack(sink.HELLO_MAGIC, b"\\0" * 16, 99, 4096) + b"y" * 4096
            assert knock(port, wrong) == b""
            result = netcopy.run("one_copy", size=4096, threads=2)
            assert result.intact
            assert netcopy_sink.alive()
            assert netcopy_sink.log_tail().count("refused: wrong magic or token") == 2
        """
    )
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1)


def test_the_sink_dies_with_its_parent(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from pytest_netcopy.transport.local import SinkProcess\n"
        "s = SinkProcess(timeout=5)\n"
        "s.ensure_running()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        sink_pid = int(parent.stdout.readline())
        assert Path(f"/proc/{sink_pid}").exists()
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{sink_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not Path(f"/proc/{sink_pid}").exists(), "the sink outlived its parent"
    finally:
        parent.kill()
        parent.wait(timeout=5)
        assert parent.stdout is not None
        parent.stdout.close()
