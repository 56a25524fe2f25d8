"""The built-in send paths: two_copy, one_copy, zero_copy, and the bare_send control."""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol

from pytest_netcopy.send.message import Message, stamp_into
from pytest_netcopy.send.modes import Mode, ModeRegistry, ModeUnsupported, Sender
from pytest_netcopy.send.zerocopy import (
    MSG_ZEROCOPY,
    SO_ZEROCOPY,
    CompletionTracker,
    ZeroCopyError,
    parse_errqueue_cmsgs,
)
from pytest_netcopy.sink.wire import STAMP_MASK


def advance_iov(iov: Sequence[memoryview], sent: int) -> list[memoryview]:
    """The part of ``iov`` still to send after ``sent`` bytes went out.

    Resumes in the right field at the right offset after a short write.
    """
    i = 0
    while i < len(iov) and sent >= len(iov[i]):
        sent -= len(iov[i])
        i += 1
    if i == len(iov):
        if sent:
            raise ValueError(f"{sent} bytes sent beyond the end of the iovec")
        return []
    return [iov[i][sent:], *iov[i + 1 :]]


def send_rest(
    sendmsg: Callable[..., int], iov: Sequence[memoryview], sent: int, flags: int = 0
) -> int:
    """Finish a message after a short ``sendmsg`` that sent ``sent`` bytes of ``iov``.

    Returns the number of further calls it took.
    """
    calls = 0
    rest = advance_iov(iov, sent)
    while rest:
        n = sendmsg(rest, (), flags)
        calls += 1
        rest = advance_iov(rest, n)
    return calls


class TwoCopySender(Sender):
    """two_copy's sender. A variant extends it by overriding :meth:`transmitter`."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        self.message = Message(conn_id, size)
        self.buf = bytearray(size)
        fs = self.message.field_size
        #: where fields 1..7 start in ``buf``, and its end (computed once: request/response
        #: calls send() once per message)
        self.offsets = (*(fs * i for i in range(1, 8)), self.message.size)

    def transmitter(self) -> Callable[[bytearray], object]:
        """What puts each serialized message (``self.buf``) on the wire: ``sendall``.

        Called once per :meth:`send`, outside the loop, so the built-in mode
        pays nothing for the hook; a variant returns a function that does
        more work per message before sending.
        """
        return self.sock.sendall

    def send(self, first: int, count: int) -> None:
        f0, f1, f2, f3, f4, f5, f6, f7 = self.message.fields
        a1, a2, a3, a4, a5, a6, a7, end = self.offsets
        buf = self.buf
        sendall = self.transmitter()
        stamp = stamp_into
        for seq in range(first, first + count):
            stamp(f0, 0, seq & STAMP_MASK)
            # serialize: the user-space copy this mode is named for
            buf[0:a1] = f0
            buf[a1:a2] = f1
            buf[a2:a3] = f2
            buf[a3:a4] = f3
            buf[a4:a5] = f4
            buf[a5:a6] = f5
            buf[a6:a7] = f6
            buf[a7:end] = f7
            sendall(buf)


class SenderClass(Protocol):
    """A Sender made as ``cls(sock, conn_id, size)``."""

    def __call__(self, sock: socket.socket, conn_id: int, size: int, /) -> Sender: ...


class MessageMode(Mode):
    """A mode whose sender is ``sender_class(sock, conn_id, size)``."""

    sender_class: ClassVar[SenderClass]

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return type(self).sender_class(sock, conn_id, size)


class TwoCopy(MessageMode):
    name = "two_copy"
    description = "copy the 8 fields into one buffer, then send() it (2 copies)"
    sender_class = TwoCopySender


class _BareSender(Sender):
    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        message = Message(conn_id, size)
        self.buf = bytearray(message.tobytes())
        message.release()

    def transmitter(self) -> Callable[[bytearray], object]:
        """What puts the buffer on the wire (``sendall``), once per :meth:`send`."""
        return self.sock.sendall

    def send(self, first: int, count: int) -> None:
        buf = self.buf
        sendall = self.transmitter()
        stamp = stamp_into
        for seq in range(first, first + count):
            stamp(buf, 0, seq & STAMP_MASK)  # field 0 starts the buffer
            sendall(buf)


class BareSend(MessageMode):
    """The control send: the message is already one contiguous buffer; stamp, sendall.

    Not a candidate send path (a real sender has to build its message
    somewhere) but the least any sender can do to put the same bytes on the
    same socket. Unless the session turns the control off, every benchmark
    measures it in the round before each of its measured rounds, so the
    ``*_vs_control`` figures divide out what the machine is doing at the time.
    """

    name = "bare_send"
    description = "the message prepared as one buffer: stamp it, sendall (the control)"
    sender_class = _BareSender


class _OneCopySender(Sender):
    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        self.message = Message(conn_id, size)

    def send(self, first: int, count: int) -> None:
        f0 = self.message.fields[0]
        views = self.message.views
        size = self.message.size
        sendmsg = self.sock.sendmsg
        stamp = stamp_into
        for seq in range(first, first + count):
            stamp(f0, 0, seq & STAMP_MASK)
            sent = sendmsg(views)
            if sent != size:  # a short write: resume at the right field and offset
                send_rest(sendmsg, views, sent)

    def close(self) -> None:
        self.message.release()


class OneCopy(MessageMode):
    name = "one_copy"
    description = "sendmsg() with the 8 fields as the iovec: the kernel gathers them (1 copy)"
    sender_class = _OneCopySender


class _ZeroCopySender(Sender):
    """A ring of messages; a slot is rewritten only after its completion."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int, ring: int) -> None:
        self.sock = sock
        self.size = size
        first = Message(conn_id, size)
        self.ring = [first, *(first.copy() for _ in range(ring - 1))]
        self.last_id = [-1] * ring
        self.tracker = CompletionTracker()
        self.enobufs = 0
        self.poller = select.poll()
        self.poller.register(sock.fileno(), 0)  # POLLERR is always reported
        self.ancbufsize = socket.CMSG_SPACE(64)

    def send(self, first: int, count: int) -> None:
        ring = self.ring
        last_id = self.last_id
        tracker = self.tracker
        size = self.size
        sendmsg = self.sock.sendmsg
        nslots = len(ring)
        for seq in range(first, first + count):
            slot = seq % nslots
            if last_id[slot] >= tracker.done_below:
                self._wait_for(last_id[slot])
            message = ring[slot]
            stamp_into(message.fields[0], 0, seq & STAMP_MASK)
            iov: Sequence[memoryview] = message.views
            remaining = size
            while True:
                try:
                    n = sendmsg(iov, (), MSG_ZEROCOPY)
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    self.on_enobufs()
                    continue
                last_id[slot] = tracker.issue()
                remaining -= n
                if not remaining:
                    break
                iov = advance_iov(iov, n)

    def on_enobufs(self) -> None:
        """Too many notifications outstanding (optmem): reap some, so the send can retry."""
        self.enobufs += 1
        if not self.tracker.outstanding:
            raise ZeroCopyError(
                "sendmsg(MSG_ZEROCOPY) failed with ENOBUFS with no send outstanding: "
                "net.core.optmem_max is too small for even one completion notification"
            ) from None
        self._reap(block=True)

    def _reap(self, block: bool) -> int:
        """Read every queued notification; with ``block``, wait for at least one."""
        got = 0
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                _, ancdata, flags, _ = self.sock.recvmsg(0, self.ancbufsize, socket.MSG_ERRQUEUE)
            except BlockingIOError:
                if got or not block:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no zero-copy completion within {self.timeout:g} s "
                        f"({self.tracker.outstanding} sends outstanding)"
                    ) from None
                for _, events in self.poller.poll(min(left, 1.0) * 1000):
                    if events & (select.POLLHUP | select.POLLNVAL):
                        raise ConnectionError(
                            f"socket closed with {self.tracker.outstanding} zero-copy "
                            "sends outstanding"
                        ) from None
                continue
            if flags & socket.MSG_CTRUNC:
                raise ZeroCopyError("error-queue control data truncated")
            for note in parse_errqueue_cmsgs(ancdata):
                got += self.tracker.add(note)

    def _wait_for(self, ident: int) -> None:
        while ident >= self.tracker.done_below:
            self._reap(block=True)

    def finish(self, timeout: float) -> None:
        while not self.tracker.all_complete():
            self._reap(block=True)

    def stats(self) -> dict[str, int]:
        t = self.tracker
        return {
            "sends": t.issued,
            "completions": t.completions,
            "copied": t.copied,
            "enobufs": self.enobufs,
            "notifications": t.notifications,
        }

    def close(self) -> None:
        self.poller.unregister(self.sock.fileno())
        for message in self.ring:
            message.release()


class ZeroCopy(Mode):
    name = "zero_copy"
    description = "sendmsg(MSG_ZEROCOPY) from a ring of buffers, completions reaped (0 copies)"
    #: bytes of messages the ring may have in flight
    ring_bytes = 4 * 1024 * 1024

    def prepare(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
        except OSError as exc:
            raise ModeUnsupported(
                f"zero_copy: setsockopt(SO_ZEROCOPY) failed on this kernel/socket: {exc}"
            ) from None

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        # enough messages to keep ring_bytes in flight; at least 2 so a slot can
        # be refilled while the other is in the kernel, at most 4096
        ring = max(2, min(4096, self.ring_bytes // size))
        return _ZeroCopySender(sock, conn_id, size, ring)


BUILTIN_MODES: tuple[type[Mode], ...] = (TwoCopy, OneCopy, ZeroCopy)


def builtin_registry() -> ModeRegistry:
    from pytest_netcopy.send.udp import UDP_MODES  # it builds on the classes above

    return ModeRegistry(cls() for cls in (*BUILTIN_MODES, *UDP_MODES))
