"""Request/response (HELLO magic ``NCQ1``): verify each request, answer it at once.

Standard library only (a part of the sink's source, sink.PARTS). After the HELLO the sender
sends RR_SETUP (the response size and flags); then per round a ROUND header, as a stream,
and for each of its messages the sink receives the whole request, sends a response of the
response size (the :func:`response_template` of the connection with the request's 4-byte
stamp at its start) and then checks the request against the stream's content and stamp:
the check is off the round trip.
The round ends with an ACK, as a stream's (docs/wire-protocol.md).
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import threading
import time

from pytest_netcopy.sink.tcp import FLOWS, Connection
from pytest_netcopy.sink.wire import (
    ACCEPT,
    ACCEPT_MAGIC,
    ACK,
    ACK_MAGIC,
    ACK_NO_BAD,
    END,
    END_MAGIC,
    END_MID_ROUND,
    FIELDS,
    STAMP_MASK,
    check_size,
    message_template,
    recv_before,
    set_socket_timeouts,
)

RR_MAGIC = b"NCQ1"
RR_SETUP = struct.Struct("<II")  # response size, flags
#: flag: leave Nagle on at the sink too (the sender turned TCP_NODELAY off)
RR_NAGLE = 1
#: the largest response the sink sends
MAX_RESPONSE = 64 * 1024 * 1024
#: a response field's marker byte (a request's is 0xA5): an echoed request is never a response
RESPONSE_MARK = 0x5A
#: test only: "SEQ:OFFSET" corrupts that byte of the response to request SEQ on every connection
CORRUPT_ENV = "NETCOPY_SINK_TEST_CORRUPT_RESPONSE"
_stamp_into = struct.Struct("<I").pack_into


def check_response_size(size: int) -> None:
    """Raise ValueError unless ``size`` is a valid response size (a message size, <= 64 MiB)."""
    check_size(size)
    if size > MAX_RESPONSE:
        raise ValueError(f"response size {size} B: expected at most {MAX_RESPONSE} B")


def response_template(conn_id: int, size: int) -> bytes:
    """A connection's response, stamp zeroed: its message content, each field marked 0x5A."""
    out = bytearray(message_template(conn_id, size))
    field = size // FIELDS
    for i in range(FIELDS):
        out[i * field + 7] = RESPONSE_MARK
    return bytes(out)


class _Exchange:
    """One connection's request/response state across its rounds (seq: the next request)."""

    def __init__(self, conn_id: int, size: int, response_size: int) -> None:
        self.conn_id, self.size, self.seq = conn_id, size, 0
        self.expected = bytearray(message_template(conn_id, size))
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.response = bytearray(response_template(conn_id, response_size))
        corrupt = os.environ.get(CORRUPT_ENV, "")
        self.corrupt = tuple(int(x) for x in corrupt.split(":")) if corrupt else None


def serve_rr(conn: Connection, conn_id: int, size: int) -> None:
    """A request/response connection: its setup, then rounds of verified requests, answered."""
    sock = conn.sock
    try:
        setup = recv_before(sock, RR_SETUP.size, time.monotonic() + conn.hello_timeout)
    except (OSError, ConnectionError) as exc:
        conn.log(f"refused: no request/response setup ({exc})")
        return
    response_size, flags = RR_SETUP.unpack(setup)
    try:
        check_response_size(response_size)
    except ValueError as exc:
        conn.log(f"refused: {exc}")
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0 if flags & RR_NAGLE else 1)
    set_socket_timeouts(sock, conn.timeout)
    conn.report(ACCEPT.pack(ACCEPT_MAGIC, conn_id, threading.get_native_id(), size))
    exchange = _Exchange(conn_id, size, response_size)
    while True:
        header = conn.round_header(conn_id)
        if header is None:
            return
        _serve_round(conn, exchange, header[0], header[1])


def _serve_round(conn: Connection, ex: _Exchange, round_no: int, count: int) -> None:
    """``count`` requests, each verified and answered; then the round's ACK."""
    sock, size, buf, view, expected = conn.sock, ex.size, ex.buf, ex.view, ex.expected
    response, recv_into, sendall, corrupt = ex.response, sock.recv_into, sock.sendall, ex.corrupt
    cpu0 = time.thread_time_ns()
    ru0 = resource.getrusage(resource.RUSAGE_THREAD)
    seq, calls = ex.seq, 0
    bad: tuple[int, int, int, int, int] | None = None  # the ACK's verdict fields
    for k in range(count):
        got = recv_into(view, size)
        calls += 1
        while 0 < got < size:
            r = recv_into(view[got:], size - got)
            calls += 1
            got = got + r if r else 0
        if got == 0:
            conn.report(END.pack(END_MAGIC, ex.conn_id, END_MID_ROUND, k * size))
            raise ConnectionError(f"EOF in round {round_no} after {k} of {count} requests")
        response[0:4] = view[0:4]  # the request's stamp, as it came
        if corrupt is not None and corrupt[0] == seq:
            response[corrupt[1]] ^= 0xFF
            sendall(response)
            response[corrupt[1]] ^= 0xFF
        else:
            sendall(response)
        # The check after the answer: the request stays in buf until the next recv (the
        # sender waits for this response first), and the sink's work is off the round trip
        # it measures (a 64 KiB comparison is microseconds).
        _stamp_into(expected, 0, seq & STAMP_MASK)
        if buf != expected and bad is None:
            j = next(j for j in range(size) if buf[j] != expected[j])
            bad = (0, expected[j], buf[j], seq, j)
        seq += 1
    ex.seq = seq
    ru1 = resource.getrusage(resource.RUSAGE_THREAD)
    cpu = time.thread_time_ns() - cpu0
    verdict = bad or (1, 0, 0, ACK_NO_BAD, 0)
    switches = (ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw)
    need = count * size
    conn.report(ACK.pack(ACK_MAGIC, ex.conn_id, round_no, need, *verdict, calls, cpu, *switches))


FLOWS[RR_MAGIC] = serve_rr
