"""TCP_INFO of the sender connections, parsed by the length the kernel returns.

``getsockopt(IPPROTO_TCP, TCP_INFO, BUFFER)`` copies at most the kernel's own
``struct tcp_info`` (include/uapi/linux/tcp.h), which has grown at its end over the
years: a kernel returns the fields it has and nothing after them. So each field is
read only when the returned bytes reach its end; otherwise it is None, with the
reason ("kernel returned 160 bytes; tcpi_busy_time needs Linux 4.10+"), never 0.

The layout: eight ``__u8`` (offsets 0-7: state, ca_state, retransmits, probes,
backoff, options, the wscale nibbles, the app-limited bits), ``__u32`` from offset 8
(rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets, four "last"
times, pmtu, rcv_ssthresh, rtt 68, rttvar 72, snd_ssthresh, snd_cwnd 80, advmss,
reordering, rcv_rtt, rcv_space, total_retrans 100), then pacing_rate 104 and
max_pacing_rate 112 (__u64, 3.15), bytes_acked 120, bytes_received 128 (__u64, 4.1),
segs_out 136, segs_in 140 (4.2), notsent_bytes 144, min_rtt 148, data_segs_in 152,
data_segs_out 156 (4.6), delivery_rate 160 (__u64, 4.9), busy_time 168, rwnd_limited
176, sndbuf_limited 184 (__u64 µs, 4.10), delivered 192, delivered_ce 196 (4.18),
bytes_sent 200, bytes_retrans 208 (__u64), dsack_dups 216, reord_seen 220 (4.19), ...

:func:`read_all` reads the pool's sockets (before and after each round) and
:func:`round_figures` turns two readings into a round's :class:`RoundTcpInfo`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pytest_netcopy.results.tcpinfo import TcpInfoValues

#: bytes asked of getsockopt: more than any kernel's struct tcp_info (280 on 6.18)
BUFFER = 512


@dataclass(frozen=True)
class Field:
    """One field of ``struct tcp_info``: where it is, its width, the kernel that added it."""

    name: str
    kernel_name: str
    offset: int
    #: struct format: "B" (__u8), "I" (__u32), "Q" (__u64)
    fmt: Literal["B", "I", "Q"]
    since: str

    @property
    def end(self) -> int:
        return self.offset + struct.calcsize("=" + self.fmt)

    @property
    def modulus(self) -> int:
        """Where the counter wraps."""
        return 1 << (8 * struct.calcsize("=" + self.fmt))


FIELDS: tuple[Field, ...] = (
    Field("state", "tcpi_state", 0, "B", "2.6"),
    Field("snd_mss", "tcpi_snd_mss", 16, "I", "2.6"),
    Field("rtt", "tcpi_rtt", 68, "I", "2.6"),
    Field("rttvar", "tcpi_rttvar", 72, "I", "2.6"),
    Field("snd_cwnd", "tcpi_snd_cwnd", 80, "I", "2.6"),
    Field("total_retrans", "tcpi_total_retrans", 100, "I", "2.6"),
    Field("notsent_bytes", "tcpi_notsent_bytes", 144, "I", "4.6"),
    Field("min_rtt", "tcpi_min_rtt", 148, "I", "4.6"),
    Field("delivery_rate", "tcpi_delivery_rate", 160, "Q", "4.9"),
    Field("busy_time", "tcpi_busy_time", 168, "Q", "4.10"),
    Field("rwnd_limited", "tcpi_rwnd_limited", 176, "Q", "4.10"),
    Field("sndbuf_limited", "tcpi_sndbuf_limited", 184, "Q", "4.10"),
    Field("bytes_sent", "tcpi_bytes_sent", 200, "Q", "4.19"),
    Field("bytes_retrans", "tcpi_bytes_retrans", 208, "Q", "4.19"),
)
BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class TcpInfo:
    """One socket's TCP_INFO, in the kernel's units: rtt, rttvar, min_rtt and the chrono
    times (busy_time, rwnd_limited, sndbuf_limited) in µs, delivery_rate in bytes/s,
    snd_cwnd in segments. A field the kernel did not return is None; ``missing`` says why."""

    #: bytes the kernel returned (0: getsockopt failed)
    length: int
    state: int | None = None
    snd_mss: int | None = None
    rtt: int | None = None
    rttvar: int | None = None
    snd_cwnd: int | None = None
    total_retrans: int | None = None
    notsent_bytes: int | None = None
    min_rtt: int | None = None
    delivery_rate: int | None = None
    busy_time: int | None = None
    rwnd_limited: int | None = None
    sndbuf_limited: int | None = None
    bytes_sent: int | None = None
    bytes_retrans: int | None = None
    #: field name: why it is None
    missing: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> int | None:
        got: int | None = getattr(self, name)
        return got


def parse(raw: bytes) -> TcpInfo:
    """The fields ``raw`` (what getsockopt returned) is long enough to hold."""
    values: dict[str, int] = {}
    missing: dict[str, str] = {}
    for f in FIELDS:
        if len(raw) >= f.end:
            values[f.name] = struct.unpack_from("=" + f.fmt, raw, f.offset)[0]
        else:
            missing[f.name] = (
                f"kernel returned {len(raw)} bytes; {f.kernel_name} needs Linux {f.since}+"
            )
    return TcpInfo(len(raw), **values, missing=missing)


def unread(reason: str) -> TcpInfo:
    """A socket whose TCP_INFO could not be read: every field None for ``reason``."""
    return TcpInfo(0, missing={f.name: reason for f in FIELDS})


def read(sock: socket.socket) -> TcpInfo:
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, BUFFER)
    except OSError as exc:
        return unread(f"getsockopt TCP_INFO failed: {exc.strerror or exc}")
    return parse(raw)


def read_all(socks: Sequence[socket.socket]) -> list[TcpInfo]:
    """Each socket's TCP_INFO, in order (a failed read is a reading of Nones with the reason)."""
    return [read(sock) for sock in socks]


#: how T connections combine a figure: "mean"/"sum" of the value read after the round,
#: "delta": the change since before it, summed
How = Literal["mean", "sum", "delta"]

#: a round's figure (results.tcpinfo.TcpInfoValues): (the TcpInfo field, how, scale)
FIGURES: dict[str, tuple[str, How, int]] = {
    "rtt_us": ("rtt", "mean", 1),
    "rttvar_us": ("rttvar", "mean", 1),
    "snd_cwnd": ("snd_cwnd", "mean", 1),
    "delivery_rate_bps": ("delivery_rate", "sum", 8),  # the kernel's bytes/s, in bits/s
    "retrans": ("total_retrans", "delta", 1),
    "busy_us": ("busy_time", "delta", 1),
    "rwnd_limited_us": ("rwnd_limited", "delta", 1),
    "sndbuf_limited_us": ("sndbuf_limited", "delta", 1),
    "min_rtt_us": ("min_rtt", "mean", 1),
    "bytes_sent": ("bytes_sent", "delta", 1),
    "bytes_retrans": ("bytes_retrans", "delta", 1),
}

#: what a round records: the figures of TCP_INFO over its connections
RoundTcpInfo = TcpInfoValues


def round_figures(before: Sequence[TcpInfo], after: Sequence[TcpInfo]) -> RoundTcpInfo:
    """A round's figures from the readings of the same sockets before and after it.

    A figure is None (with the first reason) unless every socket gave it both times."""
    if len(before) != len(after):
        raise ValueError(f"{len(before)} readings before the round, {len(after)} after")
    values: dict[str, float | int | None] = {}
    missing: dict[str, str] = {}
    for key, (name, how, scale) in FIGURES.items():
        readings = after if how != "delta" else [*before, *after]
        why = next((r.missing[name] for r in readings if r.value(name) is None), None)
        if not after:
            why = "no connections"
        if why is not None:
            values[key], missing[key] = None, why
            continue
        now = [r.value(name) or 0 for r in after]
        if how == "delta":
            wrap = BY_NAME[name].modulus
            now = [(a - (b.value(name) or 0)) % wrap for a, b in zip(now, before, strict=True)]
        total = sum(now) * scale
        values[key] = total / len(now) if how == "mean" else total
    return RoundTcpInfo(**values, missing=missing)  # type: ignore[arg-type]
