"""What a UDP benchmark over a sink records: the sink's datagram counts, loss and goodput.

``extra_info["udp"]`` and the per-round ``rounds.udp_lost`` / ``rounds.udp_received`` /
``rounds.udp_goodput_gbps`` (docs/results-schema.md, docs/udp.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UdpFigures:
    """The measured rounds' datagrams as the sink counted them (lost: sent, never received)."""

    sent: int
    received: int
    lost: int
    reordered: int
    duplicated: int
    #: lost / sent over the measured rounds
    loss_fraction: float
    #: the median round's verified bytes received per second, in Gbit/s
    goodput_gbps: float
    #: ``{"bits_per_second" | "datagrams_per_second": n, "how": "option" | "calibrated"}``
    rate: Mapping[str, Any]
    #: the sink's datagram socket SO_RCVBUF as the kernel reported it (None: not known)
    sink_rcvbuf: int | None = None
    round_lost: list[int] = field(default_factory=list)
    round_received: list[int] = field(default_factory=list)
    round_goodput_gbps: list[float] = field(default_factory=list)

    def to_extra_info(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "reordered": self.reordered,
            "duplicated": self.duplicated,
            "loss_fraction": self.loss_fraction,
            "goodput_gbps": self.goodput_gbps,
            "rate": dict(self.rate),
            "sink_rcvbuf": self.sink_rcvbuf,
        }

    def round_entries(self) -> dict[str, Any]:
        return {
            "udp_lost": list(self.round_lost),
            "udp_received": list(self.round_received),
            "udp_goodput_gbps": list(self.round_goodput_gbps),
        }
