"""Retransmitted segments of a sender's connection: ``tcpi_total_retrans`` of TCP_INFO.

``struct tcp_info`` (linux/include/uapi/linux/tcp.h): eight ``__u8`` (state,
ca_state, retransmits, probes, backoff, options, the wscale bits, the
app-limited bits: offsets 0-7), then ``__u32`` fields from offset 8: rto, ato,
snd_mss, rcv_mss (8-20), unacked, sacked, lost, retrans, fackets (24-40),
last_data_sent, last_ack_sent, last_data_recv, last_ack_recv (44-56), pmtu,
rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering (60-88),
rcv_rtt, rcv_space (92, 96), and ``tcpi_total_retrans`` at offset 100. The
kernel copies at most what was asked and at most its own struct: a kernel from
before the field returns 100 bytes or fewer, and the count is then unknown
(None with the reason), never 0.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import NamedTuple

#: bytes asked of getsockopt (more than any kernel's struct tcp_info today)
BUFFER = 256
TOTAL_RETRANS = struct.Struct("=I")
TOTAL_RETRANS_OFFSET = 100


class Reading(NamedTuple):
    """``tcpi_total_retrans`` (u32) of one socket; None with ``reason`` when not known."""

    value: int | None
    reason: str


def parse(raw: bytes) -> Reading:
    end = TOTAL_RETRANS_OFFSET + TOTAL_RETRANS.size
    if len(raw) < end:
        return Reading(
            None,
            f"TCP_INFO gave {len(raw)} bytes, no tcpi_total_retrans (needs {end}; older kernel)",
        )
    return Reading(TOTAL_RETRANS.unpack_from(raw, TOTAL_RETRANS_OFFSET)[0], "")


def total_retrans(sock: socket.socket) -> Reading:
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, BUFFER)
    except OSError as exc:
        return Reading(None, f"getsockopt TCP_INFO failed: {exc.strerror or exc}")
    return parse(raw)


def delta(before: Sequence[Reading], after: Sequence[Reading]) -> tuple[int | None, str]:
    """Segments retransmitted between two readings of the same sockets, summed (u32 wrap
    allowed); None with the first reason unless every socket was read both times."""
    for reading in (*before, *after):
        if reading.value is None:
            return None, reading.reason
    return sum(
        (b.value - a.value) % 2**32
        for a, b in zip(before, after, strict=True)
        if a.value is not None and b.value is not None
    ), ""
