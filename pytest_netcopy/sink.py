"""The receiver: ``python -m pytest_netcopy.sink``.

Standard library only, and it imports nothing from the rest of the package, so
it can be shipped to another host as one file. The package imports the wire
format from here (one definition of the protocol), never the other way round.

Per connection: HELLO (magic, session token, connection id, size), then per
round ROUND (number, count) and count x size bytes, each byte checked; the
sink reports ACCEPT, ACK (verdict, CPU, switches, recv calls) and END records
to its parent over stdout and never writes to a data connection. It exits when
stdin reaches EOF. The whole protocol: docs/wire-protocol.md.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

FIELDS = 8
MIN_SIZE = 64
STAMP_LEN = 4
TOKEN_LEN = 16
DEFAULT_RECV_BUFFER = 1024 * 1024

HELLO = struct.Struct("<4s16sII")  # magic, token, conn_id, size
HELLO_MAGIC = b"NCH1"
ROUND = struct.Struct("<4sIQ")  # magic, round number, messages
ROUND_MAGIC = b"NCR1"
# Records to the parent, all RECORD_SIZE bytes (zero padded).
# ACK: magic, conn id, round, verified bytes, ok, expected byte, got byte, bad seq,
# bad offset, recv calls, thread cpu ns, voluntary and involuntary context switches
ACK = struct.Struct("<4sIIQBBBxQIQQQQ")
ACK_MAGIC = b"NCK1"
ACCEPT = struct.Struct("<4sIII")  # magic, conn id, receiver thread id, recv buffer size
ACCEPT_MAGIC = b"NCA1"
END = struct.Struct("<4sIIQ")  # magic, conn id, status, bytes received after the last round
END_MAGIC = b"NCE1"
END_CLEAN, END_SURPLUS, END_TORN_HEADER, END_MID_ROUND = 0, 1, 2, 3
END_TEXT = {
    END_CLEAN: "the stream ended cleanly after the last round",
    END_SURPLUS: "bytes arrived after the last message of a round (more than was sent as rounds)",
    END_TORN_HEADER: "the stream ended inside a round header",
    END_MID_ROUND: "the stream ended in the middle of a round's messages",
}
RECORD_SIZE = ACK.size
ACK_NO_BAD = 0xFFFFFFFFFFFFFFFF

#: a message's stamp is its sequence number on the connection, mod 2**32
STAMP_MASK = 0xFFFFFFFF


def check_size(size: int) -> None:
    """Raise ValueError unless ``size`` splits into 8 fields of at least 8 bytes."""
    if size < MIN_SIZE or size % FIELDS:
        raise ValueError(
            f"message size {size} B: expected a multiple of {FIELDS} (8 fields of size/8 bytes) "
            f"and at least {MIN_SIZE} B"
        )


def message_template(conn_id: int, size: int) -> bytes:
    """The content of every message on a connection, stamps zeroed."""
    check_size(size)
    field = size // FIELDS
    parts = []
    for i in range(FIELDS):
        header = bytes(STAMP_LEN) + struct.pack("<HBB", conn_id & 0xFFFF, i, 0xA5)
        body_len = field - len(header)
        key = struct.pack("<III", conn_id, size, i)
        body = bytearray()
        counter = 0
        while len(body) < body_len:
            body += hashlib.blake2b(struct.pack("<Q", counter), key=key, digest_size=64).digest()
            counter += 1
        parts.append(header + bytes(body[:body_len]))
    return b"".join(parts)


def set_socket_timeouts(sock: socket.socket, seconds: float) -> None:
    """Kernel-side send/receive timeouts on a blocking socket.

    Python's own socket timeouts put the socket in non-blocking mode and add a
    poll() before every call, which would change what is measured; SO_SNDTIMEO
    and SO_RCVTIMEO bound every blocking call without an extra syscall.
    A call that times out raises BlockingIOError (EAGAIN).
    """
    sec = int(seconds)
    usec = int((seconds - sec) * 1_000_000)
    tv = struct.pack("@ll", sec, usec)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Receive exactly n bytes or raise ConnectionError (EOF) / BlockingIOError (timeout)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError(f"connection closed after {got} of {n} bytes")
        got += r
    return bytes(buf)


class Verifier:
    """Checks whole messages in a receive buffer against the expected content.

    The expected bytes for a chunk of k messages are the template repeated k
    times (built once) with the 4 stamp bytes of each message written as 4
    strided slice assignments; the comparison is one memcmp.
    """

    def __init__(self, conn_id: int, size: int, capacity: int) -> None:
        self.size = size
        self.kmax = capacity // size
        template = message_template(conn_id, size)
        self.expected = bytearray(template * self.kmax)
        self.view = memoryview(self.expected)
        n = self.kmax + 256
        self._cyc0 = bytes(range(256)) * (n // 256 + 1)
        cyc1 = b"".join(bytes([v]) * 256 for v in range(256))
        self._cyc1 = cyc1 * (self.kmax // 65536 + 2)  # any start, any k <= kmax

    def _column(self, byte: int, seq: int, k: int) -> bytes:
        if byte == 0:
            start = seq & 0xFF
            return self._cyc0[start : start + k]
        if byte == 1:
            start = seq & 0xFFFF
            return self._cyc1[start : start + k]
        shift = 8 * byte
        out = bytearray()
        i = 0
        while i < k:
            value = (seq + i) & STAMP_MASK
            run = min(k - i, (1 << shift) - (value & ((1 << shift) - 1)))
            out += bytes([(value >> shift) & 0xFF]) * run
            i += run
        return bytes(out)

    def check(self, buf: bytearray, k: int, seq: int) -> tuple[int, int, int] | None:
        """Verify messages seq..seq+k-1 at the start of ``buf``.

        Returns None when intact, else (index of the first bad byte in buf,
        expected value, received value).
        """
        end = k * self.size
        exp = self.expected
        for b in range(STAMP_LEN):
            exp[b : end : self.size] = self._column(b, seq, k)
        if buf.startswith(self.view[:end]):
            return None
        step = 4096
        pos = 0
        while pos < end:
            stop = min(pos + step, end)
            if buf[pos:stop] != exp[pos:stop]:
                for j in range(pos, stop):
                    if buf[j] != exp[j]:
                        return j, exp[j], buf[j]
            pos = stop
        return None  # pragma: no cover - startswith and the scan disagree


class Connection(threading.Thread):
    def __init__(
        self,
        sock: socket.socket,
        peer: object,
        token: bytes,
        capacity: int,
        timeout: float,
        report: Callable[[bytes], None],
    ) -> None:
        super().__init__(daemon=True, name=f"netcopy-sink-{peer}")
        self.report = report
        self.sock = sock
        self.peer = peer
        self.token = token
        self.capacity = capacity
        self.timeout = timeout

    def log(self, text: str) -> None:
        print(f"netcopy-sink: {self.peer}: {text}", file=sys.stderr, flush=True)

    def run(self) -> None:
        try:
            self.serve()
        except Exception as exc:  # one connection's failure never stops the sink
            self.log(f"closed: {type(exc).__name__}: {exc}")
        finally:
            self.sock.close()

    def serve(self) -> None:
        hello = self.handshake()
        if hello is None:
            return
        conn_id, size = hello
        capacity = max(self.capacity, size)
        set_socket_timeouts(self.sock, self.timeout)
        self.report(ACCEPT.pack(ACCEPT_MAGIC, conn_id, threading.get_native_id(), capacity))
        stream = _Stream(conn_id, size, capacity)
        while True:
            header = self.round_header(conn_id)
            if header is None:
                return
            round_no, count = header
            self.receive_round(stream, round_no, count)

    def handshake(self) -> tuple[int, int] | None:
        """The HELLO's (conn id, message size); None (logged) when it is refused."""
        sock = self.sock
        set_socket_timeouts(sock, min(self.timeout, 10.0))
        try:
            hello = recv_exact(sock, HELLO.size)
        except (OSError, ConnectionError) as exc:
            self.log(f"refused: no hello ({exc})")
            return None
        magic, token, conn_id, size = HELLO.unpack(hello)
        if magic != HELLO_MAGIC or not hmac.compare_digest(token, self.token):
            self.log("refused: wrong magic or token")
            return None
        try:
            check_size(size)
        except ValueError as exc:
            self.log(f"refused: {exc}")
            return None
        return conn_id, size

    def round_header(self, conn_id: int) -> tuple[int, int] | None:
        """The next ROUND's (round number, messages); None (END reported) when the stream ends."""
        sock = self.sock
        header = bytearray()
        while len(header) < ROUND.size:
            chunk = sock.recv(ROUND.size - len(header))
            if not chunk:
                break
            header += chunk
        if not header:
            self.report(END.pack(END_MAGIC, conn_id, END_CLEAN, 0))
            return None  # the sender is done with this connection
        if len(header) < ROUND.size:
            self.report(END.pack(END_MAGIC, conn_id, END_TORN_HEADER, len(header)))
            return None
        magic, round_no, count = ROUND.unpack(header)
        if magic != ROUND_MAGIC:
            self.log(f"protocol error: {bytes(header)!r} where a round header belongs")
            self.report(END.pack(END_MAGIC, conn_id, END_SURPLUS, len(header)))
            return None
        return round_no, count

    def receive_round(self, stream: _Stream, round_no: int, count: int) -> None:
        """Receive and check one round's messages, then report its ACK."""
        sock, size, capacity, conn_id = self.sock, stream.size, stream.capacity, stream.conn_id
        buf, view, verifier, seq = stream.buf, stream.view, stream.verifier, stream.seq
        cpu0 = time.thread_time_ns()
        ru0 = resource.getrusage(resource.RUSAGE_THREAD)
        need = count * size
        got = filled = calls = 0
        bad: tuple[int, int, int, int] | None = None  # seq, offset, expected, got
        while got < need:
            want = min(capacity - filled, need - got)
            r = sock.recv_into(view[filled : filled + want], want)
            if r == 0:
                self.report(END.pack(END_MAGIC, conn_id, END_MID_ROUND, got))
                raise ConnectionError(f"EOF in round {round_no} after {got} of {need} bytes")
            calls += 1
            got += r
            filled += r
            k = filled // size
            if k:
                if bad is None:
                    found = verifier.check(buf, k, seq)
                    if found is not None:
                        index, expected, received = found
                        bad = (seq + index // size, index % size, expected, received)
                seq += k
                used = k * size
                rest = filled - used
                if rest:
                    buf[:rest] = view[used:filled]
                filled = rest
        stream.seq = seq
        # every byte is in: ACK it now, not after a delayed-ACK timeout, so
        # the sender's last zero-copy completions (posted when the data is
        # ACKed) do not wait ~40 ms at the end of the round
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        ru1 = resource.getrusage(resource.RUSAGE_THREAD)
        cpu = time.thread_time_ns() - cpu0
        if bad is None:
            verdict = (1, 0, 0, ACK_NO_BAD, 0)
        else:
            bad_seq, offset, expected, received = bad
            verdict = (0, expected, received, bad_seq, offset)
        switches = (ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw)
        ack = ACK.pack(ACK_MAGIC, conn_id, round_no, need, *verdict, calls, cpu, *switches)
        self.report(ack)


class _Stream:
    """One connection's receive state across its rounds."""

    def __init__(self, conn_id: int, size: int, capacity: int) -> None:
        self.conn_id = conn_id
        self.size = size
        self.capacity = capacity
        self.verifier = Verifier(conn_id, size, capacity)
        self.buf = bytearray(capacity)
        self.view = memoryview(self.buf)
        #: the next message's sequence number
        self.seq = 0


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # stdin EOF below still ends the sink


def _watch_stdin() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_netcopy.sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0 picks an ephemeral port")
    parser.add_argument("--recv-buffer", type=int, default=DEFAULT_RECV_BUFFER, metavar="BYTES")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--cpus", default="", help="comma list of CPUs to pin to")
    args = parser.parse_args(argv)
    _die_with_parent()
    line = sys.stdin.buffer.readline().strip()
    try:
        token = bytes.fromhex(line.decode("ascii"))
    except ValueError:
        token = b""
    if len(token) != TOKEN_LEN:
        print("netcopy-sink: expected a 32-hex-digit token on stdin", file=sys.stderr)
        return 2
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(64)
    threading.Thread(target=_watch_stdin, daemon=True, name="netcopy-sink-stdin").start()
    ready = {
        "port": listener.getsockname()[1],
        "pid": os.getpid(),
        "recv_buffer": args.recv_buffer,
        "cpus": sorted(os.sched_getaffinity(0)),
    }
    print(json.dumps(ready), flush=True)
    lock = threading.Lock()

    def report(record: bytes) -> None:
        record = record.ljust(RECORD_SIZE, b"\0")
        with lock:
            os.write(sys.stdout.fileno(), record)

    while True:
        sock, peer = listener.accept()
        Connection(sock, peer, token, args.recv_buffer, args.timeout, report).start()


if __name__ == "__main__":
    sys.exit(main())
