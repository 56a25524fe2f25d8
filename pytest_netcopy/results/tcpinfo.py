"""What TCP_INFO says about a benchmark's sender connections, as recorded (docs/tcp-info.md).

:class:`TcpInfoValues` holds the figures over T connections, of one round or of all the
measured rounds; :class:`TcpInfoFigures` is the benchmark's ``extra_info["tcp_info"]``
and ``rounds["tcp_info"]``. A figure the kernel did not give is None, and ``missing``
says why: never a 0 standing in for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

#: a figure: a count, a time in µs, or a mean of them; None: not known
Figure = float | int | None


@dataclass(frozen=True)
class TcpInfoValues:
    """TCP_INFO over the sender connections (docs/tcp-info.md for units and kernels).

    Instantaneous fields (read after a round): ``rtt_us``, ``rttvar_us``, ``snd_cwnd``
    and ``min_rtt_us`` the mean over connections, ``delivery_rate_bps`` (bits/s) their
    sum. Cumulative fields: the change over the round, summed over connections.
    Over several rounds: instantaneous ones averaged, cumulative ones summed.
    """

    rtt_us: float | None = None
    rttvar_us: float | None = None
    snd_cwnd: float | None = None
    delivery_rate_bps: float | None = None
    retrans: int | None = None
    busy_us: int | None = None
    rwnd_limited_us: int | None = None
    sndbuf_limited_us: int | None = None
    min_rtt_us: float | None = None
    bytes_sent: int | None = None
    bytes_retrans: int | None = None
    #: why each None figure is None (its key: the reason)
    missing: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Figure]:
        """The figures by key, without ``missing`` (a round's entry in ``rounds.tcp_info``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "missing"}


#: the keys of :meth:`TcpInfoValues.as_dict`, in order
FIGURE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TcpInfoValues) if f.name != "missing")


@dataclass(frozen=True)
class LimitedBy:
    """Shares of the busy time (the connections had data not yet acknowledged).

    ``receive_window``: the peer's advertised window stopped the sender; ``send_buffer``:
    everything queued was sent and the application was blocked on a full send buffer;
    ``sender``: the rest (busy but neither: congestion window, pacing, data in flight,
    the application not writing faster), ``1 - both``, clamped at 0.
    """

    receive_window: float
    send_buffer: float
    sender: float

    def as_dict(self) -> dict[str, float]:
        return {
            "receive_window": self.receive_window,
            "send_buffer": self.send_buffer,
            "sender": self.sender,
        }


def limited_by(busy_us: int | None, rwnd_us: int | None, sndbuf_us: int | None) -> LimitedBy | None:
    """The shares of ``busy_us``; None when any time is unknown or nothing was busy."""
    if busy_us is None or rwnd_us is None or sndbuf_us is None or busy_us <= 0:
        return None
    rwnd, sndbuf = rwnd_us / busy_us, sndbuf_us / busy_us
    return LimitedBy(rwnd, sndbuf, max(0.0, 1.0 - rwnd - sndbuf))


#: why ``limited_by`` is null when the kernel gave the chrono times but counted no busy time
NO_BUSY_TIME = (
    "no busy time counted: the kernel counts it in whole ticks (1-10 ms), "
    "which these rounds' sending did not reach"
)


@dataclass(frozen=True)
class TcpInfoFigures:
    """A benchmark's TCP_INFO: the measured rounds together, and each round's."""

    totals: TcpInfoValues
    rounds: Sequence[TcpInfoValues]
    #: busy time over (connections x the rounds' seconds); None: busy time unknown
    busy_fraction: float | None = None

    @property
    def limited_by(self) -> LimitedBy | None:
        t = self.totals
        return limited_by(t.busy_us, t.rwnd_limited_us, t.sndbuf_limited_us)

    def to_extra_info(self) -> dict[str, Any]:
        """``extra_info["tcp_info"]``."""
        missing = dict(self.totals.missing)
        shares = self.limited_by
        if shares is None:
            missing["limited_by"] = next(
                (
                    missing[k]
                    for k in ("busy_us", "rwnd_limited_us", "sndbuf_limited_us")
                    if k in missing
                ),
                NO_BUSY_TIME,
            )
        if self.busy_fraction is None:
            missing["busy_fraction"] = missing.get("busy_us", "no measured rounds")
        return {
            **self.totals.as_dict(),
            "busy_fraction": self.busy_fraction,
            "limited_by": None if shares is None else shares.as_dict(),
            "missing": missing,
        }

    def round_entries(self) -> dict[str, Any]:
        """``rounds["tcp_info"]``: one entry per measured round."""
        return {"tcp_info": [r.as_dict() for r in self.rounds]}
