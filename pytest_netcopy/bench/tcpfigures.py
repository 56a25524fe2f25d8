"""The measured rounds' TCP_INFO together: what limited the senders (docs/tcp-info.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_netcopy.results.tcpinfo import FIGURE_KEYS, TcpInfoFigures, TcpInfoValues
from pytest_netcopy.transport.pool import RoundResult
from pytest_netcopy.transport.tcpinfo import FIGURES


def over_rounds(rounds: Sequence[TcpInfoValues]) -> TcpInfoValues:
    """Rounds together: instantaneous figures averaged, the cumulative ones (changes over
    each round) summed. A figure is None (with the first round's reason) unless every
    round has it."""
    values: dict[str, float | int | None] = {}
    missing: dict[str, str] = {}
    for key in FIGURE_KEYS:
        per_round = [r.as_dict()[key] for r in rounds]
        known = [v for v in per_round if v is not None]
        if not rounds or len(known) < len(per_round):
            values[key] = None
            missing[key] = next(
                (r.missing.get(key, "not read") for r in rounds if r.as_dict()[key] is None),
                "no measured rounds",
            )
            continue
        total = sum(known)
        values[key] = total if FIGURES[key][1] == "delta" else total / len(known)
    return TcpInfoValues(**values, missing=missing)  # type: ignore[arg-type]


def tcp_info_figures(threads: int, rounds: Sequence[RoundResult]) -> TcpInfoFigures | None:
    """The benchmark's TCP_INFO figures; None when a round did not read TCP_INFO at all
    (a pool without TCP connections)."""
    infos = [r.tcp_info for r in rounds]
    known = [i for i in infos if i is not None]
    if not infos or len(known) < len(infos):
        return None
    totals = over_rounds(known)
    wall_us = threads * math.fsum(r.seconds for r in rounds) * 1e6
    busy = totals.busy_us
    fraction = busy / wall_us if busy is not None and wall_us > 0 else None
    return TcpInfoFigures(totals, known, fraction)
