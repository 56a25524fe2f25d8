"""Where the senders and the sink run, and how the sender sockets pace themselves."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_netcopy.transport.errors import CongestionRefused


@dataclass(frozen=True)
class Placement:
    sender_cpus: list[int]
    sink_cpus: list[int]
    pinned: bool

    def as_dict(self) -> dict[str, object]:
        return {"sender_cpus": self.sender_cpus, "sink_cpus": self.sink_cpus, "pinned": self.pinned}


#: what ``congestion="auto"`` asks for: the reference workload's (and most
#: distributions') default; BBR's pacing and probing make loopback rounds bistable
AUTO_CONGESTION = "cubic"


def set_congestion(sock: socket.socket, choice: str) -> str:
    """Apply a TCP congestion control to a sender socket; returns the one in effect.

    ``system`` keeps the kernel default, ``auto`` asks for cubic and keeps the
    default where this account may not choose it; any other name must succeed
    (else :class:`CongestionRefused`).
    """
    if choice != "system":
        name = AUTO_CONGESTION if choice == "auto" else choice
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
        except OSError as exc:
            if choice != "auto":
                raise CongestionRefused(choice, str(exc)) from None
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def plan_placement(pin: bool, available: Sequence[int] | None = None) -> Placement:
    """Sink on the last allowed CPU, senders on the others (when there are two or more)."""
    cpus = sorted(available if available is not None else os.sched_getaffinity(0))
    if pin and len(cpus) >= 2:
        return Placement(sender_cpus=cpus[:-1], sink_cpus=cpus[-1:], pinned=True)
    return Placement(sender_cpus=cpus, sink_cpus=cpus, pinned=False)
