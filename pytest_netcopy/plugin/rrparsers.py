"""Parsers of the request/response options (issue 16): patterns, response size, rates."""

from __future__ import annotations

import math

from pytest_netcopy.plugin.parsers import _split, parse_sizes, parse_threads
from pytest_netcopy.sink.rr import MAX_RESPONSE

PATTERNS = ("stream", "rr")
#: the highest rate per connection a schedule may ask for (a due time every microsecond)
MAX_RATE = 1_000_000.0


def parse_patterns(text: str) -> tuple[str, ...]:
    """``stream,rr`` (either or both, in the order given)."""
    out: list[str] = []
    for item in _split(text):
        if item not in PATTERNS:
            raise ValueError(f"{item!r} is not a pattern: expected stream, rr or stream,rr")
        if item not in out:
            out.append(item)
    return tuple(out)


def parse_rr_threads(text: str) -> tuple[int, ...]:
    return tuple(parse_threads(text))


def parse_response_size(text: str) -> int:
    """One size, as a message size (a multiple of 8, >= 64 B), at most 64 MiB."""
    sizes = parse_sizes(text)
    if len(sizes) != 1:
        raise ValueError("expected one response size, such as 64 or 4K")
    if sizes[0] > MAX_RESPONSE:
        raise ValueError(f"expected a response size of at most {MAX_RESPONSE >> 20} MiB")
    return sizes[0]


def parse_rates(text: str) -> tuple[float, ...]:
    """Transactions per second per connection, a comma list; empty or ``none``: closed loop."""
    if text.strip().lower() in ("", "none"):
        return ()
    out: list[float] = []
    for item in _split(text):
        try:
            rate = float(item) if item.isascii() else math.nan
        except ValueError:
            rate = math.nan
        if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
            raise ValueError(
                f"{item!r} is not a rate: expected transactions per second per connection, "
                f"numbers above 0 and up to {MAX_RATE:g} (or none: closed loop)"
            )
        if rate not in out:
            out.append(rate)
    return tuple(out)


def parse_on_off(text: str) -> bool:
    word = text.strip().lower()
    if word not in ("on", "off"):
        raise ValueError("expected on or off")
    return word == "on"
