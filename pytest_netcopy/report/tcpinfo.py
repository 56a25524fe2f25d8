"""What TCP_INFO says limited the senders: the ``tcp_info`` figures of a result.

``extra_info["tcp_info"]["limited_by"]`` holds the fractions of the senders' busy time
(the kernel's chrono fields) spent limited by the receive window, by the send buffer,
and the rest: the sender itself (docs/results-schema.md). It is null where the kernel
did not give the chrono fields; ``missing`` then says why, and the report says
"not known (why)", never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.results.schema import as_float

#: the shares of busy time, in the order they are shown: (key, words)
LIMITS = (
    ("receive_window", "receive window"),
    ("send_buffer", "send buffer"),
    ("sender", "the sender itself"),
)
#: the fields behind ``limited_by``, whose ``missing`` reason explains a null
CHRONO_FIELDS = ("limited_by", "busy_us", "rwnd_limited_us", "sndbuf_limited_us")


def tcp_info(extra: Extra) -> Mapping[str, Any] | None:
    info = extra.get("tcp_info")
    return info if isinstance(info, Mapping) else None


def limited_by(extra: Extra) -> dict[str, float] | None:
    """The three shares (0..1) of busy time, or None where not known (or no tcp_info)."""
    info = tcp_info(extra)
    shares = None if info is None else info.get("limited_by")
    if not isinstance(shares, Mapping):
        return None
    values = {key: as_float(shares.get(key)) for key, _ in LIMITS}
    if any(v is None for v in values.values()):
        return None
    return {k: float(v) for k, v in values.items() if v is not None}


def why_unknown(extra: Extra) -> str:
    """Why ``limited_by`` is null: the ``missing`` reason of a chrono field, else the first."""
    info = tcp_info(extra) or {}
    missing = info.get("missing")
    reasons = missing if isinstance(missing, Mapping) else {}
    for field in CHRONO_FIELDS:
        if reasons.get(field):
            return str(reasons[field])
    if not isinstance(info.get("limited_by"), Mapping) and as_float(info.get("busy_us")) == 0:
        return "no busy time"
    first = next((str(v) for v in reasons.values() if v), None)
    return first or "not recorded"


def limited_by_cell(extra: Extra) -> str | None:
    """``12 / 0 / 88`` (receive window / send buffer / sender, % of busy time), or
    ``not known (why)``; None for a result without tcp_info."""
    if tcp_info(extra) is None:
        return None
    shares = limited_by(extra)
    if shares is None:
        return f"not known ({why_unknown(extra)})"
    return " / ".join(f"{100.0 * shares[key]:.0f}" for key, _ in LIMITS)


def limited_by_line(extra: Extra) -> str | None:
    """``limited by: receive window 12% / send buffer 0% / the sender itself 88%``, or
    ``limited by: not known (why)``; None for a result without tcp_info."""
    if tcp_info(extra) is None:
        return None
    shares = limited_by(extra)
    if shares is None:
        return f"limited by: not known ({why_unknown(extra)})"
    parts = [f"{words} {100.0 * shares[key]:.0f}%" for key, words in LIMITS]
    return "limited by: " + " / ".join(parts)


#: CSV column -> key of ``tcp_info`` it shows as is
TCP_INFO_COLUMNS = {
    "TCP_RTT_us": "rtt_us",
    "TCP_RTTVar_us": "rttvar_us",
    "TCP_SndCwnd": "snd_cwnd",
    "TCP_DeliveryRate_bps": "delivery_rate_bps",
    "TCP_Retrans": "retrans",
    "TCP_Busy_us": "busy_us",
}
LIMITED_COLUMNS = {
    "Limited_ReceiveWindow_pct": "receive_window",
    "Limited_SendBuffer_pct": "send_buffer",
    "Limited_Sender_pct": "sender",
}


def tcp_info_columns(extra: Extra) -> dict[str, Any]:
    """The CSV's TCP_INFO cells of one result (None: not recorded, never 0)."""
    info = tcp_info(extra) or {}
    shares = limited_by(extra)
    cells: dict[str, Any] = {c: as_float(info.get(k)) for c, k in TCP_INFO_COLUMNS.items()}
    for column, key in LIMITED_COLUMNS.items():
        cells[column] = None if shares is None else 100.0 * shares[key]
    return cells
