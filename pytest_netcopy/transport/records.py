"""What the sink tells its parent over its stdout pipe, decoded.

First one JSON line, the start-up report (:class:`SinkReport`); then
fixed-size binary records (:mod:`pytest_netcopy.sink` defines them): ACCEPT
when a connection is taken, ACK per round and connection, END when a
connection's stream ends, STATUS in answer to a ping (with the count of
strangers refused). Nothing here depends on how the pipe was made, so
any peer whose sink talks over a pipe (a local child, or one started through
a command such as ``ssh -T host``) reads it the same way.
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass
from typing import Any

from pytest_netcopy.sink import wire

END_TEXT = {
    wire.END_CLEAN: "the stream ended cleanly after the last round",
    wire.END_SURPLUS: (
        "bytes arrived after the last message of a round (more than was sent as rounds)"
    ),
    wire.END_TORN_HEADER: "the stream ended inside a round header",
    wire.END_MID_ROUND: "the stream ended in the middle of a round's messages",
}


@dataclass(frozen=True)
class SinkReport:
    """The sink's start-up report: where it listens and how it was set up."""

    port: int
    pid: int
    recv_buffer: int
    cpus: list[int]


def parse_report(info: dict[str, Any]) -> SinkReport:
    """The start-up report's figures (ValueError naming a missing one)."""
    try:
        return SinkReport(
            port=int(info["port"]),
            pid=int(info["pid"]),
            recv_buffer=int(info["recv_buffer"]),
            cpus=[int(c) for c in info["cpus"]],
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a start-up report without {exc}") from None


class RecordReader:
    """Whole fixed-size records from a pipe's file descriptor, with a timeout."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pending = bytearray()

    def read(self, timeout: float) -> bytes | None:
        """The next record, or None if none came within ``timeout`` seconds.

        Raises EOFError when the writer has gone.
        """
        deadline = time.monotonic() + timeout
        while len(self._pending) < wire.RECORD_SIZE:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the sink's pipe is closed")
            self._pending += chunk
        record = bytes(self._pending[: wire.RECORD_SIZE])
        del self._pending[: wire.RECORD_SIZE]
        return record


@dataclass(frozen=True)
class Accept:
    """The sink took connection ``conn_id``; ``thread_id`` receives on it."""

    conn_id: int
    thread_id: int
    capacity: int


@dataclass(frozen=True)
class End:
    """Connection ``conn_id``'s stream ended; ``status`` says how (``wire.END_*``)."""

    conn_id: int
    status: int
    #: bytes received after the last round (or of the torn round)
    extra: int

    @property
    def clean(self) -> bool:
        return self.status == wire.END_CLEAN

    @property
    def text(self) -> str:
        return END_TEXT.get(self.status, f"status {self.status}")


@dataclass
class Ack:
    """One connection's round, received and checked by the sink."""

    conn_id: int
    round_no: int
    verified_bytes: int
    ok: bool
    expected: int
    received: int
    bad_seq: int
    bad_offset: int
    recv_calls: int
    cpu_ns: int
    voluntary_switches: int
    involuntary_switches: int


@dataclass(frozen=True)
class Status:
    """The sink's answer to ping ``ping``: it is alive, and has refused ``refused`` strangers."""

    ping: int
    refused: int


@dataclass(frozen=True)
class UdpAck:
    """One UDP flow's round as the sink received it (docs/udp.md); lost = count - received."""

    conn_id: int
    round_no: int
    count: int
    received: int
    reordered: int
    duplicated: int
    ok: bool
    expected: int
    got: int
    bad_offset: int
    bad_seq: int
    recv_calls: int
    cpu_ns: int
    #: how long after the round's marker the last datagram came (microseconds)
    tail_us: int
    voluntary_switches: int
    involuntary_switches: int

    @property
    def lost(self) -> int:
        return max(0, self.count - self.received)


@dataclass(frozen=True)
class UdpRound:
    """A UDP round as the sink counted it, over a pool's flows (transport/udp.py, docs/udp.md)."""

    sent: int
    received: int
    lost: int
    reordered: int
    duplicated: int
    verified_bytes: int


Record = Ack | Accept | End | Status | UdpAck


def decode(record: bytes) -> Record | None:
    """A record from the sink, decoded; None for a kind this side does not know."""
    magic = record[:4]
    if magic == wire.ACK_MAGIC:
        _, conn, rnd, verified, ok, exp, got, bad_seq, bad_off, calls, cpu, vcs, ics = (
            wire.ACK.unpack_from(record)
        )
        return Ack(conn, rnd, verified, bool(ok), exp, got, bad_seq, bad_off, calls, cpu, vcs, ics)
    if magic == wire.END_MAGIC:
        _, conn, status, extra = wire.END.unpack_from(record)
        return End(conn, status, extra)
    if magic == wire.STATUS_MAGIC:
        _, ping, refused = wire.STATUS.unpack_from(record)
        return Status(ping, refused)
    if magic == wire.UDP_ACK_MAGIC:
        _, conn, rnd, count, got, reord, dup, ok, exp, byte, off, seq, *rest = (
            wire.UDP_ACK.unpack_from(record)
        )
        return UdpAck(conn, rnd, count, got, reord, dup, bool(ok), exp, byte, off, seq, *rest)
    if magic == wire.ACCEPT_MAGIC:
        _, conn, tid, capacity = wire.ACCEPT.unpack_from(record)
        return Accept(conn, tid, capacity)
    return None
