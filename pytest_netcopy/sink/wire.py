"""The wire format: message content, records, socket helpers and the message verifier.

Standard library only (Python 3.8+): this file is shipped to a peer as part of the sink's
source (docs/wire-protocol.md); it imports nothing from the package."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import sys
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
# UDP flows (sink/udp.py, docs/udp.md): a TCP control connection per flow, HELLO with UDP_MAGIC
UDP_MAGIC = b"NCU1"
UDP_PORT = struct.Struct("<4sII")  # sink -> sender on the control: magic, datagram port, rcvbuf
UDP_PORT_MAGIC = b"NCP1"
UDP_FROM = struct.Struct("<4sI")  # sender -> sink on the control: magic, its datagram port
UDP_FROM_MAGIC = b"NCF1"
UDP_MARK = struct.Struct("<4sIQ")  # sender -> sink after a round's datagrams: round, sent
UDP_MARK_MAGIC = b"NCZ1"
# a UDP round's record: conn, round, announced, received (unique), reordered, duplicated, ok,
# expected, received byte, offset and sequence of the first bad byte, recv calls, CPU ns,
# microseconds the last datagram came after the marker, voluntary/involuntary switches
UDP_ACK = struct.Struct("<4sIIIIIIBBBxIQIQIII")
UDP_ACK_MAGIC = b"NCD1"
#: the sink's datagram socket SO_RCVBUF by default (the kernel caps it at net.core.rmem_max
#: unless the sink may force it)
UDP_RCVBUF = 4 * 1024 * 1024
#: the largest UDP payload over IPv4 (65535 - 20 - 8 = 65507), down to a multiple of 8
MAX_DATAGRAM = 65504
ACK_NO_BAD = 0xFFFFFFFFFFFFFFFF
STAMP_MASK = 0xFFFFFFFF  # a message's stamp: its sequence number on the connection, mod 2**32


def check_size(size: int) -> None:
    """Raise ValueError unless ``size`` splits into 8 fields of at least 8 bytes."""
    if size < MIN_SIZE or size % FIELDS:
        raise ValueError(
            f"message size {size} B: expected a multiple of {FIELDS} (8 fields of size/8 bytes) "
            f"and at least {MIN_SIZE} B"
        )


def check_datagram_size(size: int) -> None:
    """Raise ValueError unless ``size`` is a message size that fits in one UDP datagram."""
    check_size(size)
    if size > MAX_DATAGRAM:
        raise ValueError(
            f"message size {size} B: a UDP datagram carries at most {MAX_DATAGRAM} B "
            "(65507, the IPv4 limit, down to a multiple of 8)"
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


def machine_facts() -> dict[str, object]:
    """This host: kernel, CPU model and count, Python."""
    model = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    return {"kernel_release": os.uname().release, "cpu_model": model,
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}  # fmt: skip
