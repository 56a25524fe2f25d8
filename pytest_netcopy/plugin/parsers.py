"""Parsers of the plugin's option values: text in, a checked value out, ValueError if bad.

The message of a ValueError says what was expected; the resolver
(:mod:`pytest_netcopy.plugin.options`) puts where the value came from in front.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pytest_netcopy.gate.rules import Rule, parse_rules
from pytest_netcopy.sink.wire import FIELDS, MIN_SIZE

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
}
MAX_SIZE = 64 << 20
MAX_THREADS = 256


#: the congestion control names this kernel has (its modules cannot be loaded
#: on demand by a non-root account, so a name must be in this list)
AVAILABLE_CONGESTION = "/proc/sys/net/ipv4/tcp_available_congestion_control"
ASCII_DIGITS = "expected ASCII digits (0-9)"


def _ascii(text: str) -> None:
    """Refuse digits Python would read but a person would not type (full-width, Arabic-Indic)."""
    if not text.isascii():
        raise ValueError(f"{text.strip()!r}: {ASCII_DIGITS}")


def parse_bytes(text: str) -> int:
    _ascii(text)
    m = re.fullmatch(r"\s*([0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError("expected a byte count such as 4096, 4K or 64KiB")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _split(text: str) -> list[str]:
    """The items of a list: separated by commas (and/or spaces); an empty one is refused."""
    if not text.strip():
        raise ValueError("expected a non-empty comma-separated list")
    items = []
    for part in text.split(","):
        if not part.strip():
            raise ValueError(
                "an empty item (two commas in a row, or one at an end): expected a "
                "comma-separated list"
            )
        items.extend(part.split())
    return items


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for item in _split(text):
        if not item.isascii():
            raise ValueError(f"{item!r} is not a size: {ASCII_DIGITS}")
        try:
            size = parse_bytes(item)
        except ValueError:
            raise ValueError(
                f"{item!r} is not a size: expected byte counts such as 256,4096,64K "
                f"(units B, K, KiB, M, MiB; up to {MAX_SIZE >> 20} MiB)"
            ) from None
        if size < MIN_SIZE or size % FIELDS or size > MAX_SIZE:
            raise ValueError(
                f"{item} is not a usable message size: expected a multiple of {FIELDS} "
                f"(8 fields of size/8 bytes) from {MIN_SIZE} B to {MAX_SIZE >> 20} MiB"
            )
        if size not in sizes:
            sizes.append(size)
    return sizes


def parse_threads(text: str) -> list[int]:
    out = []
    for item in _split(text):
        if not item.isascii():
            raise ValueError(f"{item!r} is not a thread count: {ASCII_DIGITS}")
        if not item.isdigit() or not 1 <= int(item) <= MAX_THREADS:
            raise ValueError(
                f"{item!r} is not a thread count: expected whole numbers from 1 to {MAX_THREADS}"
            )
        if int(item) not in out:
            out.append(int(item))
    return out


def parse_modes(text: str) -> list[str]:
    out = []
    for item in _split(text):
        if not item.isidentifier():
            raise ValueError(f"{item!r} is not a mode name")
        if item not in out:
            out.append(item)
    return out


def positive_float(text: str) -> float:
    _ascii(text)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("expected a positive number of seconds")
    return value


def timeout(text: str) -> float:
    value = positive_float(text)
    if value < 0.001:
        raise ValueError("expected at least 0.001 seconds (below that the kernel waits forever)")
    return value


def count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        _ascii(text)
        if not text.strip().isdigit() or int(text) < minimum:
            raise ValueError(f"expected a whole number >= {minimum}")
        return int(text)

    return parse


def choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text.strip().lower()

    return parse


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def available_congestion() -> list[str] | None:
    """The congestion controls this kernel has (None: it does not say)."""
    try:
        with open(AVAILABLE_CONGESTION, encoding="ascii") as f:
            return f.read().split()
    except OSError:
        return None


def congestion(text: str) -> str:
    """auto, system, or a name this kernel has: the list is checked here, at the start."""
    value = text.strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,15}", value):
        raise ValueError("expected auto, system, or an algorithm name such as cubic")
    available = available_congestion()
    if value in ("auto", "system") or available is None or value in available:
        return value
    raise ValueError(
        f"not a congestion control this kernel has; expected auto, system, or one of "
        f"{' '.join(available)} (net.ipv4.tcp_available_congestion_control; another "
        "algorithm's module must be loaded by root first)"
    )


def recv_buffer(text: str) -> int:
    value = parse_bytes(text)
    if not 4096 <= value <= 256 << 20:
        raise ValueError("expected a byte count from 4K to 256M")
    return value


def stripped(text: str) -> str:
    return text.strip()


def parse_gate(text: str) -> tuple[bool, tuple[Rule, ...] | None]:
    """A value of ``--netcopy-gate`` / ``netcopy_gate`` / ``NETCOPY_GATE``.

    Empty or a true word: on, with the rules of the next source (or the
    defaults); a false word: off; anything else: on, with these rules
    (``(True, rules)``). A bad rule raises ValueError naming it.
    """
    if not text.strip():
        return True, None
    try:
        return parse_bool(text), None
    except ValueError:
        pass
    rules = parse_rules(text)
    return True, (tuple(rules) or None)
