"""A regression no instruction count sees: ``two_copy`` with the sender socket's send buffer capped.

Used by ``benchmarks/trust.py --regression=sndbuf`` (as ``-p small_sndbuf``
with this folder on ``PYTHONPATH``, like ``extra_copy.py``). The mode keeps
the name ``two_copy`` and its sender is the built-in one, byte for byte and
instruction for instruction in user space; only the socket differs: before
each of its rounds it caps ``SO_SNDBUF`` at ``NETCOPY_SNDBUF`` bytes (default
65536; Linux doubles what is asked for its bookkeeping, so getsockopt reads
twice that), so ``sendall`` blocks and wakes far more often and the kernel
spends more CPU per byte while throughput drops.

The control send (``--netcopy-control``) runs on the same sockets between the
mode's rounds. With the cap left on, the control would be slowed alike and the
ratios to it (``*_vs_control``, the gate's defaults) would cancel the
regression. So after each round the cap is lifted to the size the kernel's
autotuning grows a loopback socket to (``net.ipv4.tcp_wmem``'s maximum, as far
as ``net.core.wmem_max`` allows): the control runs with its usual buffer.
``NETCOPY_SNDBUF_SCOPE=socket`` keeps the cap on for good instead (set once,
when the sender is made), to see what a gate on ratios makes of a change
that slows the control too (docs/gate.md: the control cancels it, and the
speed guard calls it another machine speed).
"""

from __future__ import annotations

import os
import socket

from pytest_netcopy.send.builtin import TwoCopySender
from pytest_netcopy.send.modes import Mode, ModeRegistry, Sender

NAME = "two_copy"
DEFAULT_CAP = 65536
SCOPES = ("rounds", "socket")
#: when /proc cannot be read: tcp_wmem's usual maximum
_FALLBACK_UNCAPPED = 4 * 1024 * 1024


def sndbuf_cap() -> int:
    text = os.environ.get("NETCOPY_SNDBUF", str(DEFAULT_CAP)).strip()
    if not text.isdigit() or not 1024 <= int(text) <= 1 << 30:
        raise ValueError(f"NETCOPY_SNDBUF={text!r}: expected a whole number of bytes >= 1024")
    return int(text)


def sndbuf_scope() -> str:
    text = os.environ.get("NETCOPY_SNDBUF_SCOPE", "rounds").strip()
    if text not in SCOPES:
        raise ValueError(f"NETCOPY_SNDBUF_SCOPE={text!r}: expected one of {', '.join(SCOPES)}")
    return text


def _read_int(path: str, field: int = 0) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[field])
    except (OSError, ValueError, IndexError):
        return None


def uncapped_request() -> int:
    """What to ask setsockopt for so the buffer is autotuning's maximum again (it doubles)."""
    tcp_max = _read_int("/proc/sys/net/ipv4/tcp_wmem", 2) or _FALLBACK_UNCAPPED
    core_max = _read_int("/proc/sys/net/core/wmem_max")
    request = tcp_max // 2
    return min(request, core_max) if core_max else request


class SmallSndbufSender(TwoCopySender):
    """The built-in two_copy sender on a socket whose send buffer is capped while it sends."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        super().__init__(sock, conn_id, size)
        self.cap = sndbuf_cap()
        self.scope = sndbuf_scope()
        self.uncapped = uncapped_request()
        #: SO_SNDBUF as the kernel reported it once capped (twice the cap on Linux)
        self.capped_to: int | None = None
        if self.scope == "socket":
            self._cap()

    def _cap(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.cap)
        self.capped_to = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)

    def send(self, first: int, count: int) -> None:
        if self.scope == "socket":
            super().send(first, count)
            return
        self._cap()
        try:
            super().send(first, count)
        finally:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.uncapped)

    def close(self) -> None:
        self.message.release()


class SmallSndbuf(Mode):
    name = NAME
    description = "two_copy with the sender's SO_SNDBUF capped (a regressed build)"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return SmallSndbufSender(sock, conn_id, size)


def pytest_netcopy_add_modes(registry: ModeRegistry) -> None:
    """Put the capped two_copy in place of the built-in one, under the same name."""
    registry.replace(SmallSndbuf())
