"""UDP benchmarks: the pool, the senders' pace (given, or calibrated to the sink), the figures.

Without flow control a sender can outrun the sink, so a UDP benchmark runs at a rate: the
one the session gives (``udp_rate``: bits or datagrams per second per flow), or by default
the fastest the sink keeps up with at under :data:`LOSS_BUDGET` loss, found by a short
search (unpaced first, then halving, then two bisection steps; a handful of rounds of the
target length). docs/udp.md.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from typing import Any

from pytest_netcopy.bench.calibration import calibrate
from pytest_netcopy.results.udp import UdpFigures
from pytest_netcopy.transport.pool import RoundResult
from pytest_netcopy.transport.udp import DatagramPool

#: the loss a calibrated rate may have (a fraction of the datagrams sent)
LOSS_BUDGET = 0.01
#: halving steps of the search, then bisection steps between the last good and bad rates
HALVINGS = 6
BISECTIONS = 2
#: datagrams per flow in a search round, at least
MIN_SEARCH_COUNT = 64
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
RATE_EXPECTED = (
    "expected calibrate, a rate in bits per second such as 2G or 500M (suffixes k, M, G; "
    "optional bps), or datagrams per second such as 100000dps or 100kdps"
)

#: ("bits_per_second" | "datagrams_per_second", value); None: calibrate
RateSetting = tuple[str, float] | None


def parse_udp_rate(text: str) -> RateSetting:
    """``calibrate`` (None), ``2G``/``500M``/``1.5Gbps`` (bits/s), ``100000dps`` (datagrams/s)."""
    value = text.strip().lower()
    if value in ("calibrate", "auto", ""):
        return None
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)\s*(dps|bps|bit/s|b/s|b)?", value)
    if not value.isascii() or m is None:
        raise ValueError(RATE_EXPECTED)
    number = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not number > 0 or not math.isfinite(number):
        raise ValueError(RATE_EXPECTED)
    unit = "datagrams_per_second" if m.group(3) == "dps" else "bits_per_second"
    return unit, number


def datagrams_per_second(setting: tuple[str, float], size: int) -> float:
    """A rate setting as datagrams per second per flow (bits count the UDP payload)."""
    unit, value = setting
    return value if unit == "datagrams_per_second" else value / (size * 8)


def loss(result: RoundResult) -> float:
    """The fraction of the round's datagrams the sink did not get (0 when nothing counts)."""
    udp = result.udp
    return udp.lost / udp.sent if udp is not None and udp.sent else 0.0


def choose_rate(pool: DatagramPool, setting: RateSetting, target: float) -> dict[str, Any]:
    """Set ``pool.rate`` from the setting, or calibrate it; the ``udp.rate`` record."""
    if setting is not None:
        pool.rate = datagrams_per_second(setting, pool.size)
        return {setting[0]: setting[1], "how": "option"}
    if pool.transmit_only is not None:  # nothing receives: nothing to keep up with
        pool.rate = None
        return {"datagrams_per_second": None, "how": "unpaced"}
    return calibrate_rate(pool, target)


def calibrate_rate(pool: DatagramPool, target: float) -> dict[str, Any]:
    """The fastest rate with under :data:`LOSS_BUDGET` loss, as ``pool.rate`` and its record."""
    pool.rate = None
    count = calibrate(pool, target, pool.size)
    first = pool.run_round(count)
    unpaced = count / max(first.seconds, 1e-6)
    if loss(first) <= LOSS_BUDGET:
        return {"datagrams_per_second": unpaced, "how": "calibrated", "paced": False}
    good, bad = None, unpaced
    rate = unpaced / 2
    for _ in range(HALVINGS):
        if _keeps_up(pool, rate, target):
            good = rate
            break
        bad, rate = rate, rate / 2
    if good is None:  # never under budget: the slowest rate tried, its loss recorded
        pool.rate = rate * 2
        return {"datagrams_per_second": pool.rate, "how": "calibrated", "paced": True}
    for _ in range(BISECTIONS):
        middle = (good + bad) / 2
        if _keeps_up(pool, middle, target):
            good = middle
        else:
            bad = middle
    pool.rate = good
    return {"datagrams_per_second": good, "how": "calibrated", "paced": True}


def _keeps_up(pool: DatagramPool, rate: float, target: float) -> bool:
    pool.rate = rate
    return loss(pool.run_round(max(MIN_SEARCH_COUNT, math.ceil(rate * target)))) <= LOSS_BUDGET


def udp_figures(
    rounds: Sequence[RoundResult], rate: dict[str, Any], sink_rcvbufs: Sequence[int]
) -> UdpFigures | None:
    """The measured rounds' datagram counts, loss and goodput; None when nothing received."""
    counted = [r.udp for r in rounds]
    if not rounds or any(u is None for u in counted):
        return None
    udp = [u for u in counted if u is not None]
    sent = sum(u.sent for u in udp)
    goodput = [u.verified_bytes * 8 / r.seconds / 1e9 for u, r in zip(udp, rounds, strict=True)]
    return UdpFigures(
        sent=sent,
        received=sum(u.received for u in udp),
        lost=sum(u.lost for u in udp),
        reordered=sum(u.reordered for u in udp),
        duplicated=sum(u.duplicated for u in udp),
        loss_fraction=sum(u.lost for u in udp) / sent if sent else 0.0,
        goodput_gbps=statistics.median(goodput),
        rate=dict(rate),
        sink_rcvbuf=max(sink_rcvbufs) if sink_rcvbufs else None,
        round_lost=[u.lost for u in udp],
        round_received=[u.received for u in udp],
        round_goodput_gbps=goodput,
    )
