"""The receiver: ``python -m pytest_netcopy.sink``. Standard library only, importing nothing
from the package (one file to ship; Python 3.8+); the package imports the wire format from
here. The protocol, the records, the defences against strangers: docs/wire-protocol.md."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
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

FIELDS = 8
MIN_SIZE = 64
STAMP_LEN = 4
TOKEN_LEN = 16
DEFAULT_RECV_BUFFER = 1024 * 1024

HELLO = struct.Struct("<4s16sII")  # magic, token, conn_id, size
HELLO_MAGIC = b"NCH1"
ROUND = struct.Struct("<4sIQ")  # magic, round number, messages
ROUND_MAGIC = b"NCR1"
# Records to the parent, RECORD_SIZE bytes each (zero padded); fields: docs/wire-protocol.md
ACK = struct.Struct("<4sIIQBBBxQIQQQQ")
ACK_MAGIC = b"NCK1"
ACCEPT = struct.Struct("<4sIII")  # magic, conn id, receiver thread id, recv buffer size
ACCEPT_MAGIC = b"NCA1"
END = struct.Struct("<4sIIQ")  # magic, conn id, status, bytes received after the last round
END_MAGIC = b"NCE1"
STATUS = struct.Struct("<4sIQ")  # magic, ping number N (stdin "ping N"), strangers refused
STATUS_MAGIC = b"NCS1"
END_CLEAN, END_SURPLUS, END_TORN_HEADER, END_MID_ROUND = 0, 1, 2, 3  # texts: records.py
RECORD_SIZE = ACK.size
ACK_NO_BAD = 0xFFFFFFFFFFFFFFFF
STAMP_MASK = 0xFFFFFFFF  # a message's stamp: its sequence number on the connection, mod 2**32


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
    """SO_SNDTIMEO/SO_RCVTIMEO, no poll() per call as Python's add; a timeout: BlockingIOError."""
    tv = struct.pack("@ll", int(seconds), int(seconds % 1 * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)


def recv_before(sock: socket.socket, n: int, deadline: float) -> bytes:
    """Exactly n bytes by ``deadline`` (time.monotonic); EOF: ConnectionError."""
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(buf)} of {n} bytes by the deadline")
        set_socket_timeouts(sock, max(left, 0.001))  # 0 would mean no timeout
        chunk = sock.recv(n - len(buf))  # BlockingIOError: the deadline passed
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


class Verifier:
    """Checks whole messages: the template repeated, stamps as 4 strided slices, one memcmp."""

    def __init__(self, conn_id: int, size: int, capacity: int) -> None:
        self.size = size
        self.kmax = capacity // size
        self.expected = bytearray(message_template(conn_id, size) * self.kmax)
        self.view = memoryview(self.expected)
        self._cyc0 = bytes(range(256)) * (self.kmax // 256 + 2)
        cyc1 = b"".join(bytes([v]) * 256 for v in range(256))
        self._cyc1 = cyc1 * (self.kmax // 65536 + 2)  # any start, any k <= kmax

    def _column(self, byte: int, seq: int, k: int) -> bytes:
        if byte < 2:
            start = seq & (0xFF if byte == 0 else 0xFFFF)
            return (self._cyc1 if byte else self._cyc0)[start : start + k]
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
        """Messages seq..seq+k-1 at the start of ``buf``: None, or (index, expected, got)."""
        end = k * self.size
        exp = self.expected
        for b in range(STAMP_LEN):
            exp[b : end : self.size] = self._column(b, seq, k)
        if buf.startswith(self.view[:end]):
            return None
        for pos in range(0, end, 4096):
            stop = min(pos + 4096, end)
            if buf[pos:stop] != exp[pos:stop]:
                j = next(j for j in range(pos, stop) if buf[j] != exp[j])
                return j, exp[j], buf[j]
        return None  # pragma: no cover - startswith and the scan disagree


class Door:
    """The listener; the connections before their HELLO capped (oldest cut), strangers counted."""

    def __init__(self, listener: socket.socket, args: argparse.Namespace, token: bytes) -> None:
        self.listener, self.args, self.token = listener, args, token
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.cap = args.max_pending or (min(64, max(1, files // 4)) if files > 0 else 64)
        self.lock, self._out = threading.Lock(), threading.Lock()
        self.pending: dict[int, socket.socket] = {}  # in arrival order
        self.refused = 0  # strangers: refused or cut before a HELLO with the session token
        self.reserve = os.open(os.devnull, os.O_RDONLY)  # for one accept-and-close

    def report(self, record: bytes) -> None:
        with self._out:
            os.write(sys.stdout.fileno(), record.ljust(RECORD_SIZE, b"\0"))

    def admit(self, key: int, sock: socket.socket) -> None:
        with self.lock:
            self.pending[key] = sock
            while len(self.pending) > self.cap:
                self._cut_oldest()

    def _cut_oldest(self) -> None:  # with the lock held
        sock = self.pending.pop(next(iter(self.pending)))
        self.refused += 1
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # its thread's recv returns and closes it

    def settle(self, key: int, *, stranger: bool) -> None:
        """Past its HELLO (or gone); a stranger still waiting is counted."""
        with self.lock:
            if self.pending.pop(key, None) is not None and stranger:
                self.refused += 1

    def accept_forever(self) -> None:
        while True:
            try:
                sock, peer = self.listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._out_of_files()
                elif exc.errno not in (errno.ECONNABORTED, errno.EINTR, errno.ENOBUFS):
                    raise
                continue
            Connection(sock, peer, self).start()

    def _out_of_files(self) -> None:
        """Cut the oldest stranger, or else refuse the next caller (accepted on the reserve fd)."""
        print("netcopy-sink: out of file descriptors", file=sys.stderr, flush=True)
        with self.lock:
            cut = bool(self.pending)
            if cut:
                self._cut_oldest()
        if not cut and self.reserve >= 0:
            os.close(self.reserve)
            self.reserve = -1
            with contextlib.suppress(OSError):
                self.listener.accept()[0].close()
                with self.lock:
                    self.refused += 1
            with contextlib.suppress(OSError):
                self.reserve = os.open(os.devnull, os.O_RDONLY)
        time.sleep(0.005)  # a cut connection's thread closes it; else a brief back-off


class Connection(threading.Thread):
    def __init__(self, sock: socket.socket, peer: object, door: Door) -> None:
        super().__init__(daemon=True, name=f"netcopy-sink-{peer}")
        self.sock, self.peer, self.door, self.report = sock, peer, door, door.report
        self.token, self.capacity = door.token, door.args.recv_buffer
        self.timeout, self.hello_timeout = door.args.timeout, door.args.hello_timeout
        door.admit(id(self), sock)

    def log(self, text: str) -> None:
        print(f"netcopy-sink: {self.peer}: {text}", file=sys.stderr, flush=True)

    def run(self) -> None:
        try:
            self.serve()
        except Exception as exc:  # one connection's failure never stops the sink
            self.log(f"closed: {type(exc).__name__}: {exc}")
        finally:
            self.door.settle(id(self), stranger=True)  # no-op once past the HELLO
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
        while (header := self.round_header(conn_id)) is not None:
            self.receive_round(stream, *header)

    def handshake(self) -> tuple[int, int] | None:
        """The HELLO's (conn id, size), by one deadline; None (logged) when refused."""
        deadline = time.monotonic() + self.hello_timeout
        try:
            hello = recv_before(self.sock, HELLO.size, deadline)
        except (OSError, ConnectionError) as exc:
            self.log(f"refused: no hello ({exc})")
            return None
        magic, token, conn_id, size = HELLO.unpack(hello)
        if magic != HELLO_MAGIC or not hmac.compare_digest(token, self.token):
            self.log("refused: wrong magic or token")
            return None
        self.door.settle(id(self), stranger=False)
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
        while len(header) < ROUND.size and (chunk := sock.recv(ROUND.size - len(header))):
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
        bad: tuple[int, int, int, int, int] | None = None  # the ACK's verdict fields
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
                        bad = (0, expected, received, seq + index // size, index % size)
                seq += k
                used = k * size
                rest = filled - used
                if rest:
                    buf[:rest] = view[used:filled]
                filled = rest
        stream.seq = seq
        # all in: ACK now, or the last zero-copy completions wait a delayed ACK (~40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        ru1 = resource.getrusage(resource.RUSAGE_THREAD)
        cpu = time.thread_time_ns() - cpu0
        verdict = bad or (1, 0, 0, ACK_NO_BAD, 0)
        switches = (ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw)
        ack = ACK.pack(ACK_MAGIC, conn_id, round_no, need, *verdict, calls, cpu, *switches)
        self.report(ack)


class _Stream:
    """One connection's receive state across its rounds (seq: the next message's number)."""

    def __init__(self, conn_id: int, size: int, capacity: int) -> None:
        self.conn_id, self.size, self.capacity, self.seq = conn_id, size, capacity, 0
        self.verifier = Verifier(conn_id, size, capacity)
        self.buf = bytearray(capacity)
        self.view = memoryview(self.buf)


def machine_facts() -> dict[str, object]:
    """This host: kernel, CPU model and count, Python."""
    model = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    return {"kernel_release": os.uname().release, "cpu_model": model,
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}  # fmt: skip


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # else stdin EOF still ends the sink
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _watch_stdin(door: Door) -> None:
    """Answer each "ping N" line with a STATUS record; exit at EOF (the parent is done)."""
    for line in sys.stdin.buffer:
        words = line.split()
        if len(words) == 2 and words[0] == b"ping" and words[1].isdigit():
            door.report(STATUS.pack(STATUS_MAGIC, int(words[1]) & 0xFFFFFFFF, door.refused))
    os._exit(0)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The options; --hello-timeout, --max-pending and --host ssh: docs/wire-protocol.md."""
    parser = argparse.ArgumentParser(prog="python -m pytest_netcopy.sink", description=__doc__)
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on; ssh: SSH_CONNECTION's server")
    add("--port", type=int, default=0, help="0 picks an ephemeral port")
    add("--recv-buffer", type=int, default=DEFAULT_RECV_BUFFER, metavar="BYTES")
    add("--timeout", type=float, default=60.0, metavar="SECONDS")
    add("--cpus", default="", help="comma list of CPUs to pin to (last: the last CPU)")
    add("--hello-timeout", type=float, default=None, metavar="SECONDS")
    add("--max-pending", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    if args.hello_timeout is None:
        args.hello_timeout = min(args.timeout, 10.0)
    if args.host == "ssh":
        args.host = [*os.environ.get("SSH_CONNECTION", "").split(), "", "", ""][2]
        if not args.host:
            parser.error("--host ssh: no SSH_CONNECTION here (not started by sshd)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it closes stdin
    line = sys.stdin.buffer.readline().strip()
    try:
        token = bytes.fromhex(line.decode("ascii"))
    except ValueError:
        token = b""
    if len(token) != TOKEN_LEN:
        print("netcopy-sink: expected a 32-hex-digit token on stdin", file=sys.stderr)
        return 2
    if args.cpus:
        last = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {last if c == "last" else int(c) for c in args.cpus.split(",")})
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.create_server((args.host, args.port), family=family, backlog=128)
    door = Door(listener, args, token)
    threading.Thread(target=_watch_stdin, args=(door,), daemon=True).start()
    ready = {"port": listener.getsockname()[1], "pid": os.getpid(), "recv_buffer": args.recv_buffer}
    probe = globals().get("link_facts")  # shipped to a peer with instruments/link.py
    facts = {"machine": machine_facts(), "link": probe(args.host) if probe else None}
    ready.update(host=args.host, cpus=sorted(os.sched_getaffinity(0)), **facts)
    print(json.dumps(ready), flush=True)
    door.accept_forever()
    return 0  # pragma: no cover - the loop ends only with the process


if __name__ == "__main__":
    sys.exit(main())
