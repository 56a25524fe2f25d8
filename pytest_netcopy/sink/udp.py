"""The UDP side of the sink: one datagram socket per UDP flow, every datagram verified.

A UDP flow starts as a TCP connection whose HELLO carries ``UDP_MAGIC`` (same token check
as a stream). The sink binds a datagram socket on the address it listens on, reports
ACCEPT to its parent and tells the sender the socket's port (``UDP_PORT``) on the control
connection. Per round the sender announces ``ROUND`` (round, count) on the control, sends
the datagrams, then ``UDP_MARK``; the sink drains the datagram socket until it has been
quiet for ``UDP_QUIET`` seconds after the marker (bounded by its timeout), and reports a
``UDP_ACK``: datagrams received, reordered, duplicated (lost = count - received) and the
first bad byte of a corrupted datagram. Loss is a result; a corrupted datagram is an
integrity failure. Standard library only (shipped to a peer as part of the sink).
docs/udp.md has the details.
"""

from __future__ import annotations

import resource
import select
import socket
import struct
import threading
import time

from pytest_netcopy.sink.tcp import FLOWS, Connection  # not shipped: one namespace there
from pytest_netcopy.sink.wire import (  # not shipped: one namespace there
    ACCEPT,
    ACCEPT_MAGIC,
    END,
    END_MAGIC,
    END_SURPLUS,
    STAMP_LEN,
    STAMP_MASK,
    UDP_ACK,
    UDP_ACK_MAGIC,
    UDP_FROM,
    UDP_FROM_MAGIC,
    UDP_MAGIC,
    UDP_MARK,
    UDP_MARK_MAGIC,
    UDP_PORT,
    UDP_PORT_MAGIC,
    UDP_RCVBUF,
    Verifier,
    check_datagram_size,
    message_template,
    recv_before,
    set_socket_timeouts,
)

#: seconds without a datagram, after the round's marker, that end a round
UDP_QUIET = 0.005
SO_RCVBUFFORCE = 33  # root may go past net.core.rmem_max
_STAMP = struct.Struct("<I")
#: a stamp up to this far behind the round's first is a late datagram of an earlier round
LATE_WINDOW = 1 << 31


def set_rcvbuf(sock: socket.socket, size: int) -> int:
    """SO_RCVBUFFORCE (root), else SO_RCVBUF; the size the kernel then reports."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def serve_udp(conn: Connection, conn_id: int, size: int) -> None:
    """A UDP flow (UDP_MAGIC): a datagram socket, rounds announced on the control connection."""
    try:
        check_datagram_size(size)
    except ValueError as exc:
        conn.log(f"refused: {exc}")
        return
    host = conn.sock.getsockname()[0]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as dgram:
        rcvbuf = set_rcvbuf(dgram, getattr(conn.door.args, "udp_rcvbuf", UDP_RCVBUF))
        dgram.bind((host, 0))
        dgram.setblocking(False)
        set_socket_timeouts(conn.sock, conn.timeout)
        conn.report(ACCEPT.pack(ACCEPT_MAGIC, conn_id, threading.get_native_id(), rcvbuf))
        conn.sock.sendall(UDP_PORT.pack(UDP_PORT_MAGIC, dgram.getsockname()[1], rcvbuf))
        if not _lock_source(conn, dgram):
            return
        flow = UdpFlow(conn, dgram, conn_id, size)
        while (header := conn.round_header(conn_id)) is not None:
            if not flow.receive_round(*header):
                return


FLOWS[UDP_MAGIC] = serve_udp


def _lock_source(conn: Connection, dgram: socket.socket) -> bool:
    """Connect the datagram socket to the sender's (UDP_FROM): the kernel drops strangers'
    from then on; drop those already queued; confirm with UDP_FROM echoed."""
    try:
        magic, port = UDP_FROM.unpack(
            recv_before(conn.sock, UDP_FROM.size, time.monotonic() + conn.hello_timeout)
        )
    except (OSError, ConnectionError) as exc:
        conn.log(f"refused: no datagram source ({exc})")
        return False
    if magic != UDP_FROM_MAGIC:
        conn.log("refused: wrong magic where the datagram source belongs")
        return False
    dgram.connect((conn.sock.getpeername()[0], port))
    while True:  # what came before the connect is a stranger's (no round has begun)
        try:
            dgram.recv(1)
        except BlockingIOError:
            break
    conn.sock.sendall(UDP_FROM.pack(UDP_FROM_MAGIC, port))  # locked: the sender may begin
    return True


class UdpFlow:
    """One UDP flow's receive state across its rounds (``base``: the next round's first seq)."""

    def __init__(self, conn: Connection, dgram: socket.socket, conn_id: int, size: int) -> None:
        self.conn, self.dgram, self.conn_id, self.size = conn, dgram, conn_id, size
        self.base = 0
        self.buf = bytearray(size + 1)  # one more: a longer datagram shows as longer
        self.tail = message_template(conn_id, size)[STAMP_LEN:]
        self.verifier = Verifier(conn_id, size, size)
        self.poller = select.poll()
        self.poller.register(dgram.fileno(), select.POLLIN)
        self.poller.register(conn.sock.fileno(), select.POLLIN)
        self.quiet = select.poll()
        self.quiet.register(dgram.fileno(), select.POLLIN)

    def receive_round(self, round_no: int, count: int) -> bool:
        """Receive one round's datagrams and report its UDP_ACK; False: the flow is broken."""
        cpu0, ru0 = time.thread_time_ns(), resource.getrusage(resource.RUSAGE_THREAD)
        tally = _Tally(self.base, count)
        self.base = (self.base + count) & STAMP_MASK
        deadline = time.monotonic() + self.conn.timeout
        mark_at = 0.0
        while True:
            self._drain(tally)
            if mark_at:
                if not self.quiet.poll(UDP_QUIET * 1000):
                    break
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"round {round_no}: no marker within {self.conn.timeout:g} s")
            for fd, _ in self.poller.poll(min(left, 1.0) * 1000):
                if fd == self.conn.sock.fileno():
                    mark = recv_before(self.conn.sock, UDP_MARK.size, deadline)
                    magic, mark_round, _sent = UDP_MARK.unpack(mark)
                    if magic != UDP_MARK_MAGIC or mark_round != round_no:
                        self.conn.log(f"protocol error: {mark!r} where round {round_no} ends")
                        self.conn.report(END.pack(END_MAGIC, self.conn_id, END_SURPLUS, 0))
                        return False
                    mark_at = time.monotonic()
        ru1 = resource.getrusage(resource.RUSAGE_THREAD)
        tail_us = max(0.0, tally.last - mark_at) * 1e6 if tally.last else 0.0
        verdict = tally.bad or (1, 0, 0, 0, 0)
        self.conn.report(
            UDP_ACK.pack(
                UDP_ACK_MAGIC, self.conn_id, round_no, count, tally.received, tally.reordered,
                tally.duplicated, *verdict, tally.calls, time.thread_time_ns() - cpu0,
                min(int(tail_us), 0xFFFFFFFF), ru1.ru_nvcsw - ru0.ru_nvcsw,
                ru1.ru_nivcsw - ru0.ru_nivcsw,
            )
        )  # fmt: skip
        return True

    def _drain(self, tally: _Tally) -> None:
        """Receive every queued datagram and judge it."""
        recv_into, buf, size, tail = self.dgram.recv_into, self.buf, self.size, self.tail
        while True:
            try:
                n = recv_into(buf, size + 1)
            except BlockingIOError:
                return
            tally.calls += 1
            tally.last = time.monotonic()
            stamp = _STAMP.unpack_from(buf)[0]
            if n == size and buf.startswith(tail, STAMP_LEN):
                tally.count_in(stamp)
            elif tally.bad is None:
                tally.bad = self._where(stamp, n)

    def _where(self, stamp: int, n: int) -> tuple[int, int, int, int, int]:
        """The verdict fields (ok=0, expected, received, offset, sequence) of a bad datagram."""
        if n != self.size:  # too short or too long: the first byte past the shorter end
            offset = min(n, self.size)
            got = self.buf[offset] if offset < n else 0
            expected = self.verifier.expected[offset] if offset < self.size else 0
            return 0, expected, got, offset, stamp
        found = self.verifier.check(self.buf, 1, stamp)
        index, expected, got = found if found is not None else (0, 0, 0)
        return 0, expected, got, index, stamp


class _Tally:
    """One round's counts: each in-round sequence seen once, the highest so far."""

    def __init__(self, base: int, count: int) -> None:
        self.base, self.count = base, count
        self.seen = bytearray(count)
        self.received = self.reordered = self.duplicated = self.calls = 0
        self.highest = -1
        self.last = 0.0
        self.bad: tuple[int, int, int, int, int] | None = None

    def count_in(self, stamp: int) -> None:
        rel = (stamp - self.base) & STAMP_MASK
        if rel >= self.count:
            if (self.base - stamp) & STAMP_MASK > LATE_WINDOW and self.bad is None:
                # ahead of the round (its next round has not started): a corrupted stamp
                self.bad = (0, 0, stamp & 0xFF, 0, stamp)
            return  # else late, from an earlier round: counted lost there already
        if self.seen[rel]:
            self.duplicated += 1
            return
        self.seen[rel] = 1
        self.received += 1
        if rel < self.highest:
            self.reordered += 1
        else:
            self.highest = rel
