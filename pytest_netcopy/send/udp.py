"""The UDP send paths: udp_two_copy, udp_one_copy, udp_zero_copy, udp_gso, and the UDP control.

Each sender gets a connected SOCK_DGRAM socket; message k goes out as one datagram carrying
the same 8-field content as on TCP (stamp k mod 2**32). The sizes a datagram can carry:
``sink.wire.check_datagram_size``. docs/udp.md.
"""

from __future__ import annotations

import errno
import mmap
import socket
import struct
from collections.abc import Callable
from typing import ClassVar

from pytest_netcopy.send.builtin import (
    MessageMode,
    TwoCopySender,
    ZeroCopy,
    _BareSender,
    _OneCopySender,
    _ZeroCopySender,
)
from pytest_netcopy.send.message import Message, stamp_into
from pytest_netcopy.send.modes import Mode, ModeUnsupported, Sender
from pytest_netcopy.send.zerocopy import (
    IP_RECVERR,
    IPV6_RECVERR,
    MSG_ZEROCOPY,
    SOL_IP,
    SOL_IPV6,
)
from pytest_netcopy.sink.wire import FIELDS, STAMP_MASK

SOL_UDP = 17
UDP_SEGMENT = 103
#: segments one UDP_SEGMENT send may carry (UDP_MAX_SEGMENTS: 64 before Linux 6.10, then 128)
UDP_MAX_SEGMENTS = 64
#: payload bytes one UDP send may carry over IPv4 (65535 - 20 - 8)
GSO_LIMIT = 65507
#: where udp_gso's probe sends its two datagrams: the discard port of the destination host
PROBE_PORT = 9


class _UdpTwoCopySender(TwoCopySender):
    def transmitter(self) -> Callable[[bytearray], object]:
        return self.sock.send  # one datagram: never a short send


class UdpTwoCopy(MessageMode):
    name = "udp_two_copy"
    description = "copy the 8 fields into one buffer, then send() it as one datagram (2 copies)"
    transport: ClassVar[str] = "udp"
    sender_class = _UdpTwoCopySender


class _UdpOneCopySender(_OneCopySender):
    def send(self, first: int, count: int) -> None:
        f0 = self.message.fields[0]
        views = self.message.views
        sendmsg = self.sock.sendmsg
        stamp = stamp_into
        for seq in range(first, first + count):
            stamp(f0, 0, seq & STAMP_MASK)
            sendmsg(views)  # a datagram goes whole or not at all


class UdpOneCopy(MessageMode):
    name = "udp_one_copy"
    description = "sendmsg() with the 8 fields as the iovec, one datagram each (1 copy)"
    transport: ClassVar[str] = "udp"
    sender_class = _UdpOneCopySender


#: rings whose completions never came (a socket gone mid-round): kept alive, never reused
_IN_FLIGHT: list[list[Message]] = []


class _ContiguousMessage(Message):
    """A ring slot: the message laid out once in one page-aligned mapping and sent as one
    buffer, what a zero-copy sender does (build into memory that stays put, send from it).
    ``fields`` are the 8 parts inside it (the stamp goes into the first); ``views`` is the
    one iovec. Gathered from 8 separately mapped fields instead, the same datagrams sent
    no faster than udp_one_copy on the blackhole target (1.00x at 60,000 B: every field
    pinned on its own); from one buffer, 1.27x with 0.79x the CPU (2026-12-01)."""

    __slots__ = ("map",)

    def __init__(self, model: Message) -> None:  # a copy: no template rebuilt
        f = model.field_size
        self.size, self.field_size = model.size, f
        self.map = mmap.mmap(-1, -(-model.size // mmap.PAGESIZE) * mmap.PAGESIZE)
        whole = memoryview(self.map)[: model.size]
        whole[:] = model.tobytes()
        # memoryviews where Message has bytearrays: writable buffers all the same to its users
        self.fields = [whole[i * f : (i + 1) * f] for i in range(FIELDS)]  # type: ignore[misc]
        self.views = [whole]

    def release(self) -> None:
        for field in self.fields:
            field.release()  # type: ignore[attr-defined]
        super().release()
        self.map.close()


class _UdpZeroCopySender(_ZeroCopySender):
    """zero_copy's ring over a datagram socket (page-aligned fields above 32 KiB); close()
    reaps before it lets a buffer go."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int, ring: int) -> None:
        super().__init__(sock, conn_id, size, ring)
        plain, self.ring = self.ring, [_ContiguousMessage(m) for m in self.ring]
        for message in plain:
            message.release()
        self.heads = [m.fields[0] for m in self.ring]  # where each slot's stamp goes
        self.iovs = [m.views for m in self.ring]

    def send(self, first: int, count: int) -> None:
        try:
            self._datagrams(first, count)
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE:
                raise
            raise ModeUnsupported(
                f"udp_zero_copy: the kernel refuses {self.size} B datagrams with MSG_ZEROCOPY "
                f"here ({exc.strerror}: more pages than one packet may hold)"
            ) from None

    def _datagrams(self, first: int, count: int) -> None:
        """One sendmsg per datagram (it goes whole or not at all), no per-send method call:
        the ids are counted in a local, handed to the tracker before every reap."""
        last_id, tracker, heads, iovs = self.last_id, self.tracker, self.heads, self.iovs
        sendmsg, stamp, nslots = self.sock.sendmsg, stamp_into, len(heads)
        issued, done_below = tracker.issued, tracker.done_below
        try:
            for seq in range(first, first + count):
                slot = seq % nslots
                if last_id[slot] >= done_below:
                    tracker.issued = issued
                    self._wait_for(last_id[slot])
                    done_below = tracker.done_below
                stamp(heads[slot], 0, seq & STAMP_MASK)
                while True:
                    try:
                        sendmsg(iovs[slot], (), MSG_ZEROCOPY)
                        break
                    except OSError as exc:
                        if exc.errno != errno.ENOBUFS:
                            raise
                        tracker.issued = issued
                        self.on_enobufs()
                last_id[slot] = issued
                issued += 1
        finally:
            tracker.issued = issued

    def close(self) -> None:
        try:
            self.finish(self.timeout)
        except (OSError, TimeoutError, RuntimeError):
            _IN_FLIGHT.append(self.ring)  # the kernel may still read them: never free or reuse
            self.ring = []
        super().close()


class UdpZeroCopy(ZeroCopy):
    name = "udp_zero_copy"
    description = "sendmsg(MSG_ZEROCOPY) of one datagram per message from a ring (0 copies)"
    transport: ClassVar[str] = "udp"

    def prepare(self, sock: socket.socket) -> None:
        super().prepare(sock)
        level, option = (
            (SOL_IPV6, IPV6_RECVERR) if sock.family == socket.AF_INET6 else (SOL_IP, IP_RECVERR)
        )
        sock.setsockopt(level, option, 1)  # completions (and ICMP errors) on the error queue

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        ring = max(2, min(4096, self.ring_bytes // size))
        return _UdpZeroCopySender(sock, conn_id, size, ring)


class _GsoSender(Sender):
    """``per_call`` messages, each its own 8 fields, as one iovec segmented by UDP_SEGMENT."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock, self.size = sock, size
        self.per_call = gso_batch(size)
        first = Message(conn_id, size)
        self.messages = [first, *(first.copy() for _ in range(self.per_call - 1))]
        self.iov = [view for m in self.messages for view in m.views]

    def send(self, first: int, count: int) -> None:
        sendmsg, iov, messages, size = self.sock.sendmsg, self.iov, self.messages, self.size
        seq, end = first, first + count
        while seq < end:
            k = min(self.per_call, end - seq)
            for i in range(k):
                stamp_into(messages[i].fields[0], 0, (seq + i) & STAMP_MASK)
            sent = sendmsg(iov[: k * FIELDS])
            if sent != k * size:
                raise OSError(errno.EMSGSIZE, f"UDP_SEGMENT sent {sent} of {k * size} bytes")
            seq += k

    def close(self) -> None:
        for message in self.messages:
            message.release()


def gso_batch(size: int) -> int:
    """Datagrams of ``size`` bytes one UDP_SEGMENT send carries: as many as fit in 64 KiB."""
    return max(1, min(UDP_MAX_SEGMENTS, GSO_LIMIT // size))


class UdpGso(Mode):
    name = "udp_gso"
    description = "sendmsg() of many datagrams at once, segmented by the kernel (UDP_SEGMENT)"
    transport: ClassVar[str] = "udp"

    @staticmethod
    def probe(sock: socket.socket, size: int) -> None:
        """Two segments of ``size`` bytes (one where only one fits) to the destination's
        discard port: a kernel without UDP GSO (EIO), or a route whose MTU a segment exceeds
        (EINVAL), refuses them here rather than mid-round. Nothing reaches the sink."""
        host = sock.getpeername()[0]
        with socket.socket(sock.family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, PROBE_PORT))
            segments = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))]
            probe.sendmsg([bytes(min(2, gso_batch(size)) * size)], segments)

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        try:
            self.probe(sock, size)
            sock.setsockopt(SOL_UDP, UDP_SEGMENT, size)
        except OSError as exc:
            raise ModeUnsupported(
                f"udp_gso: the kernel refused UDP_SEGMENT for {size} B datagrams here: {exc}"
            ) from None
        return _GsoSender(sock, conn_id, size)


class _UdpBareSender(_BareSender):
    def transmitter(self) -> Callable[[bytearray], object]:
        return self.sock.send  # one datagram: never a short send


class UdpBareSend(MessageMode):
    """The control of the UDP modes: the message already one buffer; stamp it, send() it, on
    the same UDP flow (so the *_vs_control ratios compare like with like)."""

    name = "bare_send"
    description = "the message prepared as one buffer: stamp it, send one datagram (the control)"
    transport: ClassVar[str] = "udp"
    sender_class = _UdpBareSender


UDP_MODES: tuple[type[Mode], ...] = (UdpTwoCopy, UdpOneCopy, UdpZeroCopy, UdpGso)
