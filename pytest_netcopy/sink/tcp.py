"""The TCP side of the sink: the door (listener and stranger defences) and one thread per
connection that receives and verifies its rounds. Standard library only."""

from __future__ import annotations

import argparse
import contextlib
import errno
import hmac
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable

from pytest_netcopy.sink.wire import (  # not shipped: one namespace there
    ACCEPT,
    ACCEPT_MAGIC,
    ACK,
    ACK_MAGIC,
    ACK_NO_BAD,
    END,
    END_CLEAN,
    END_MAGIC,
    END_MID_ROUND,
    END_SURPLUS,
    END_TORN_HEADER,
    HELLO,
    HELLO_MAGIC,
    RECORD_SIZE,
    ROUND,
    ROUND_MAGIC,
    Verifier,
    check_size,
    recv_before,
    set_socket_timeouts,
)


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
        magic, conn_id, size = hello
        FLOWS[magic](self, conn_id, size)

    def serve_stream(self, conn_id: int, size: int) -> None:
        """A stream (HELLO_MAGIC): rounds of messages, each verified and ACKed."""
        capacity = max(self.capacity, size)
        set_socket_timeouts(self.sock, self.timeout)
        self.report(ACCEPT.pack(ACCEPT_MAGIC, conn_id, threading.get_native_id(), capacity))
        stream = _Stream(conn_id, size, capacity)
        while (header := self.round_header(conn_id)) is not None:
            self.receive_round(stream, *header)

    def handshake(self) -> tuple[bytes, int, int] | None:
        """The HELLO's (magic, conn id, size), by one deadline; None (logged) when refused."""
        deadline = time.monotonic() + self.hello_timeout
        try:
            hello = recv_before(self.sock, HELLO.size, deadline)
        except (OSError, ConnectionError) as exc:
            self.log(f"refused: no hello ({exc})")
            return None
        magic, token, conn_id, size = HELLO.unpack(hello)
        if magic not in FLOWS or not hmac.compare_digest(token, self.token):
            self.log("refused: wrong magic or token")
            return None
        self.door.settle(id(self), stranger=False)
        try:
            check_size(size)
        except ValueError as exc:
            self.log(f"refused: {exc}")
            return None
        return magic, conn_id, size

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


#: what a connection carries, by its HELLO's magic; later parts add theirs (sink.PARTS)
FLOWS: dict[bytes, Callable[[Connection, int, int], None]] = {HELLO_MAGIC: Connection.serve_stream}


class _Stream:
    """One connection's receive state across its rounds (seq: the next message's number)."""

    def __init__(self, conn_id: int, size: int, capacity: int) -> None:
        self.conn_id, self.size, self.capacity, self.seq = conn_id, size, capacity, 0
        self.verifier = Verifier(conn_id, size, capacity)
        self.buf = bytearray(capacity)
        self.view = memoryview(self.buf)
