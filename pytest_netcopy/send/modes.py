"""What a send mode is, and the registry of the modes a session knows.

A :class:`Mode` prepares a connected socket and makes a :class:`Sender` for
it; a sender sends ``count`` messages with sequence numbers ``first..`` and,
at the end of a round, settles whatever is still in flight. Users add their
own modes from a conftest through the ``pytest_netcopy_add_modes`` hook,
usually as a :class:`FunctionMode` around a function that sends one message.
The built-in modes are in :mod:`.builtin`.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import ClassVar

from pytest_netcopy.send.message import Message, stamp_into
from pytest_netcopy.sink.wire import STAMP_MASK


class ModeUnsupported(Exception):
    """This machine, kernel or socket cannot do the mode; the message says why."""


class Sender(ABC):
    """Sends messages on one connected socket for the duration of a benchmark."""

    #: seconds any wait of the sender may take; the pool sets the session's timeout
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
    #: "tcp": a connected stream socket; "udp": a connected SOCK_DGRAM socket, one message per
    #: datagram (docs/udp.md)
    transport: ClassVar[str] = "tcp"

    def prepare(self, sock: socket.socket) -> None:  # noqa: B027 - optional hook
        """Per-socket setup; raise ModeUnsupported when the socket cannot do it."""

    @abstractmethod
    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender: ...

    def __repr__(self) -> str:
        return f"<netcopy mode {self.name}>"


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
