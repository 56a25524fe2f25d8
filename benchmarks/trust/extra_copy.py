"""A deliberately slower build: ``two_copy`` that makes one more full copy of each message.

Used by ``benchmarks/trust.py`` (as ``-p extra_copy`` with this folder on
``PYTHONPATH``) and by ``tests/test_gate_plugin.py`` (as a conftest), to
check that the gate catches a real regression of the send path. The mode
keeps the name ``two_copy``, so its benchmarks have the same keys
(``two_copy-65536B-1t``) as a baseline of the normal build: to the gate it
is the same benchmark after a code change.

The sender is the built-in two_copy's (stamp field 0, copy the 8 fields into
one preallocated buffer, ``sendall``), extended through its ``transmitter``
hook with one ``memcpy`` of the whole message into a second preallocated
buffer, which is what goes on the wire. Nothing else differs: no allocation,
same syscalls, same bytes (the hook adds one Python call per message, small
beside a copy of the whole message).

``NETCOPY_EXTRA_COPIES=K`` (default 1) makes it K more copies instead of one
(the copies alternate between two spare buffers), to measure how the gate's
power grows with the size of a regression.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from pytest_netcopy.send.builtin import TwoCopySender
from pytest_netcopy.send.modes import Mode, ModeRegistry, Sender

NAME = "two_copy"


def extra_copies() -> int:
    text = os.environ.get("NETCOPY_EXTRA_COPIES", "1").strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"NETCOPY_EXTRA_COPIES={text!r}: expected a whole number >= 1")
    return int(text)


class _ExtraCopySender(TwoCopySender):
    """The built-in two_copy sender, plus the extra copies before each send."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        super().__init__(sock, conn_id, size)
        self.spare = bytearray(size)
        self.spare2 = bytearray(size)
        self.copies = extra_copies()

    def transmitter(self) -> Callable[[bytearray], object]:
        spare = self.spare
        more = [(self.spare, self.spare2), (self.spare2, self.spare)] * self.copies
        more = more[: self.copies - 1]  # copies after the first: spare <-> spare2
        last = spare if self.copies % 2 else self.spare2
        sendall = self.sock.sendall

        def copy_and_send(buf: bytearray) -> None:
            spare[:] = buf  # the regression: one more full copy of the message
            for src, dst in more:
                dst[:] = src
            sendall(last)

        return copy_and_send

    def close(self) -> None:
        self.message.release()


class ExtraCopy(Mode):
    name = NAME
    description = "two_copy plus one more full copy of each message (a regressed build)"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _ExtraCopySender(sock, conn_id, size)


def pytest_netcopy_add_modes(registry: ModeRegistry) -> None:
    """Put the slower two_copy in place of the built-in one, under the same name."""
    registry.replace(ExtraCopy())
