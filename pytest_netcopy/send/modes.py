"""The send primitives under test, behind one small interface, and their registry.

A :class:`Mode` prepares a connected socket and makes a :class:`Sender` for
it; a sender sends ``count`` messages with sequence numbers ``first..`` and,
at the end of a round, settles whatever is still in flight. Users add their
own modes from a conftest through the ``pytest_netcopy_add_modes`` hook,
usually as a :class:`FunctionMode` around a function that sends one message.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from pytest_netcopy.send.message import Message, stamp_into
from pytest_netcopy.send.zerocopy import (
    MSG_ZEROCOPY,
    SO_ZEROCOPY,
    CompletionTracker,
    ZeroCopyError,
    parse_errqueue_cmsgs,
)

STAMP_MASK = 0xFFFFFFFF


class ModeUnsupported(Exception):
    """This machine, kernel or socket cannot do the mode; the message says why."""


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


class Sender(ABC):
    """Sends messages on one connected socket for the duration of a benchmark."""

    #: seconds any wait of the sender may take; the pool sets --netcopy-timeout
    timeout: float = 60.0

    @abstractmethod
    def send(self, first: int, count: int) -> None:
        """Send messages ``first .. first+count-1``, each stamped with its number."""

    def finish(self, timeout: float) -> None:  # noqa: B027 - optional hook
        """End of a round: settle everything still owned by the kernel."""

    def stats(self) -> dict[str, int] | None:
        """Cumulative mode-specific counts (zero_copy: completion accounting)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release buffers; the socket belongs to the caller."""


class Mode(ABC):
    name: str = ""
    description: str = ""

    def prepare(self, sock: socket.socket) -> None:  # noqa: B027 - optional hook
        """Per-socket setup; raise ModeUnsupported when the socket cannot do it."""

    @abstractmethod
    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender: ...

    def __repr__(self) -> str:
        return f"<netcopy mode {self.name}>"


class _TwoCopySender(Sender):
    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        self.message = Message(conn_id, size)
        self.buf = bytearray(size)

    def send(self, first: int, count: int) -> None:
        f0, f1, f2, f3, f4, f5, f6, f7 = self.message.fields
        fs = self.message.field_size
        a1, a2, a3, a4, a5, a6, a7 = (fs * i for i in range(1, 8))
        end = self.message.size
        buf = self.buf
        sendall = self.sock.sendall
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


class TwoCopy(Mode):
    name = "two_copy"
    description = "copy the 8 fields into one buffer, then send() it (2 copies)"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _TwoCopySender(sock, conn_id, size)


class _BareSender(Sender):
    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        message = Message(conn_id, size)
        self.buf = bytearray(message.tobytes())
        message.release()

    def send(self, first: int, count: int) -> None:
        buf = self.buf
        sendall = self.sock.sendall
        stamp = stamp_into
        for seq in range(first, first + count):
            stamp(buf, 0, seq & STAMP_MASK)  # field 0 starts the buffer
            sendall(buf)


class BareSend(Mode):
    """The control send: the message is already one contiguous buffer; stamp, sendall.

    Not a candidate send path (a real sender has to build its message
    somewhere) but the least any sender can do to put the same bytes on the
    same socket. Every benchmark measures it in the round before each of its
    measured rounds (``--netcopy-control``), so the ``*_vs_control`` figures
    divide out what the machine is doing at the time.
    """

    name = "bare_send"
    description = "the message prepared as one buffer: stamp it, sendall (the control)"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _BareSender(sock, conn_id, size)


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


class OneCopy(Mode):
    name = "one_copy"
    description = "sendmsg() with the 8 fields as the iovec: the kernel gathers them (1 copy)"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _OneCopySender(sock, conn_id, size)


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
                    # too many notifications outstanding (optmem): reap, retry
                    self.enobufs += 1
                    if not tracker.outstanding:
                        raise ZeroCopyError(
                            "sendmsg(MSG_ZEROCOPY) failed with ENOBUFS with no send "
                            "outstanding: net.core.optmem_max is too small for even one "
                            "completion notification"
                        ) from None
                    self._reap(block=True)
                    continue
                last_id[slot] = tracker.issue()
                remaining -= n
                if not remaining:
                    break
                iov = advance_iov(iov, n)

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


SendOne = Callable[[socket.socket, list[memoryview]], object]


class _FunctionSender(Sender):
    def __init__(self, func: SendOne, sock: socket.socket, conn_id: int, size: int) -> None:
        self.func = func
        self.sock = sock
        self.message = Message(conn_id, size)

    def send(self, first: int, count: int) -> None:
        func = self.func
        sock = self.sock
        f0 = self.message.fields[0]
        views = self.message.views
        for seq in range(first, first + count):
            stamp_into(f0, 0, seq & STAMP_MASK)
            func(sock, views)

    def close(self) -> None:
        self.message.release()


class FunctionMode(Mode):
    """A mode from a function that sends one whole message.

    ``func(sock, fields)`` gets the connected blocking socket and the message's
    8 fields as memoryviews (already stamped); it must send all their bytes,
    in order, before it returns. It must not keep references to the views.
    """

    def __init__(self, name: str, func: SendOne, description: str = "") -> None:
        if not name.isidentifier():
            raise ValueError(f"mode name {name!r}: expected an identifier such as my_send")
        self.name = name
        self.func = func
        self.description = description or (func.__doc__ or "").strip().split("\n")[0]

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _FunctionSender(self.func, sock, conn_id, size)


BUILTIN_MODES: tuple[type[Mode], ...] = (TwoCopy, OneCopy, ZeroCopy)


class ModeRegistry:
    """The modes a session knows, by name."""

    def __init__(self, modes: Iterable[Mode] = ()) -> None:
        self._modes: dict[str, Mode] = {}
        for mode in modes:
            self.add(mode)

    def add(self, mode: Mode | SendOne, name: str | None = None) -> Mode:
        """Register a Mode, or a send-one-message function under ``name``."""
        if not isinstance(mode, Mode):
            if name is None:
                name = getattr(mode, "__name__", "")
            mode = FunctionMode(name, mode)
        elif name is not None and name != mode.name:
            raise ValueError(f"mode {mode.name!r} registered under another name {name!r}")
        if mode.name in self._modes and self._modes[mode.name] is not mode:
            raise ValueError(f"a mode named {mode.name!r} is already registered")
        self._modes[mode.name] = mode
        return mode

    def replace(self, mode: Mode) -> Mode:
        """Put ``mode`` in place of the registered mode of the same name.

        For a build that swaps a send path under its usual name (e.g. a slower
        two_copy to check that a regression gate catches it).
        """
        if mode.name not in self._modes:
            raise KeyError(
                f"no mode named {mode.name!r} to replace; known modes: {', '.join(self.names())}"
            )
        self._modes[mode.name] = mode
        return mode

    def get(self, name: str) -> Mode:
        try:
            return self._modes[name]
        except KeyError:
            raise KeyError(
                f"unknown mode {name!r}; known modes: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._modes)

    def __contains__(self, name: object) -> bool:
        return name in self._modes


def builtin_registry() -> ModeRegistry:
    return ModeRegistry(cls() for cls in BUILTIN_MODES)
