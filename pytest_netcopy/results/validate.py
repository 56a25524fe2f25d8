"""Checking one benchmark's netcopy ``extra_info`` against the schema (docs/results-schema.md).

The loader (:mod:`pytest_netcopy.results.runs`) calls :func:`problem` on every
benchmark and :func:`duplicate` over the file, so every reader (the gate,
``netcopy report``/``csv``/``plot``/``compare``) can rely on the types and ranges
below. Each problem is one line, ``<key>=<value!r>: expected <what>``; the
loader puts the file and the benchmark in front of it.

Only what readers depend on is checked; keys the schema does not know are left alone,
and values the schema lets be null (``steal_ms``, the per-byte figures, a round's
``cpu_ns_per_byte``) stay allowed.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 40
_REPR.maxother = 40
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 6
_REPR.maxlevel = 3


def shown(value: Any) -> str:
    """``repr`` of a value, shortened to fit on one line of an error message."""
    return _REPR.repr(value)


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    """A finite number >= 0 (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _is_size(value: Any) -> bool:
    return _is_int(value, 64) and value % 8 == 0


def _is_mode(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_schema(value: Any) -> bool:
    return _is_int(value, 1)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_integrity(value: Any) -> bool:
    """A verdict (``ok`` true or false), or none on the transmit-only target: ``ok`` null
    with the ``note`` that says so (issue 15)."""
    if not isinstance(value, dict):
        return False
    ok = value.get("ok")
    return isinstance(ok, bool) or (ok is None and isinstance(value.get("note"), str))


def _is_zerocopy(value: Any) -> bool:
    """An object; its ``copied_fraction``, when present, null or a number in 0..1."""
    if not isinstance(value, dict):
        return False
    fraction = value.get("copied_fraction")
    return fraction is None or (_is_number(fraction) and fraction <= 1)


def _is_cpus(value: Any) -> bool:
    return isinstance(value, list) and all(_is_int(cpu, 0) for cpu in value)


def _is_placement(value: Any) -> bool:
    """``{"sender_cpus": [int], "sink_cpus": [int], "pinned": bool}``, each when present."""
    return (
        isinstance(value, dict)
        and all(_is_cpus(value[k]) for k in ("sender_cpus", "sink_cpus") if k in value)
        and isinstance(value.get("pinned", False), bool)
    )


def _is_round_value(value: Any) -> bool:
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def _is_figures(value: Any) -> bool:
    """An object whose numbers are finite (or null); other entries (text, objects) pass."""
    return isinstance(value, dict) and all(
        _is_round_value(v) for v in value.values() if not isinstance(v, str | dict)
    )


RR_NUMBERS = (
    "transactions_per_second", "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us",
    "max_us", "mean_us", "stddev_us",
)  # fmt: skip


def _is_rr(value: Any) -> bool:
    """``rr`` (issue 16): a count of transactions, finite µs figures, ``beyond`` counts, the
    histogram's text, and ``rate`` null or an object with a bool ``kept_schedule``."""
    if not isinstance(value, dict) or not _is_int(value.get("transactions"), 0):
        return False
    beyond, rate = value.get("beyond"), value.get("rate")
    return (
        all(_is_number(value.get(k)) for k in RR_NUMBERS)
        and isinstance(value.get("histogram"), str)
        and isinstance(beyond, dict)
        and all(_is_int(n, 0) for n in beyond.values())
        and (
            rate is None or (isinstance(rate, dict) and isinstance(rate.get("kept_schedule"), bool))
        )
    )


Check = tuple[Callable[[Any], bool], str]

#: ``rounds`` entries that are one object per round (``tcp_info``), not one number
OBJECT_ROUNDS = frozenset({"tcp_info"})

#: required keys: (check, what was expected)
REQUIRED: dict[str, Check] = {
    "netcopy_schema": (_is_schema, "an integer >= 1"),
    "mode": (_is_mode, "a non-empty string"),
    "size": (_is_size, "an integer >= 64, a multiple of 8"),
    "threads": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "messages_per_round": (lambda v: _is_int(v, 0), "an integer >= 0"),
    "bytes_per_round": (lambda v: _is_int(v, 0), "an integer >= 0"),
    "throughput_gbps": (_is_number, "a finite number >= 0"),
    "throughput_gbps_per_connection": (_is_number, "a finite number >= 0"),
    "ns_per_message": (_is_number, "a finite number >= 0"),
    "integrity": (
        _is_integrity,
        "an object with a bool 'ok' (or, transmit only, a null 'ok' and a 'note')",
    ),
    "placement": (
        _is_placement,
        "an object with lists of CPU numbers sender_cpus, sink_cpus and a bool pinned",
    ),
}

#: keys checked only when present
OPTIONAL: dict[str, Check] = {
    "counters": (_is_object, "an object"),
    "sink_counters": (_is_object, "an object"),
    "zerocopy": (_is_zerocopy, "an object whose copied_fraction is null or a number in 0..1"),
    "zerocopy_effective": (lambda v: isinstance(v, bool), "true or false"),
    "target": (lambda v: v in ("sink", "blackhole"), "'sink' or 'blackhole'"),
    "tcp_nodelay": (lambda v: isinstance(v, bool), "true or false"),
    "pattern": (lambda v: v in ("stream", "rr"), "'stream' or 'rr'"),
    "rr": (
        _is_rr,
        "an object with an integer transactions, finite numbers "
        + ", ".join(RR_NUMBERS)
        + ", a text histogram, beyond counts and rate null or an object with kept_schedule",
    ),
    "tcp_info": (
        lambda v: _is_figures(v) and (v.get("limited_by") is None or _is_figures(v["limited_by"])),
        "an object of finite numbers or null, with limited_by an object of them or null",
    ),
    "transport": (lambda v: v in ("tcp", "udp"), "'tcp' or 'udp'"),
    "udp": (
        lambda v: (
            _is_figures(v)
            and all(_is_int(v.get(k), 0) for k in ("sent", "received", "lost"))
            and _is_number(v.get("loss_fraction"))
        ),
        "an object with integers sent, received, lost and a number loss_fraction",
    ),
}

_ROUNDS = "an object of lists of finite numbers or null"


def problem(extra: Mapping[str, Any]) -> str | None:
    """What is wrong with a benchmark's ``extra_info`` (its required keys all present), or None."""
    for key, (check, expected) in REQUIRED.items():
        if not check(extra[key]):
            return f"{key}={shown(extra[key])}: expected {expected}"
    for key, (check, expected) in OPTIONAL.items():
        if key in extra and not check(extra[key]):
            return f"{key}={shown(extra[key])}: expected {expected}"
    for section in ("rounds", "pass_rounds"):
        if section in extra:  # rounds is required, pass_rounds optional
            found = _rounds_problem(section, extra[section])
            if found is not None:
                return found
    return None


def _rounds_problem(section: str, rounds: Any) -> str | None:
    """``rounds``: an object whose entries are lists of finite numbers or null, or null."""
    if not isinstance(rounds, dict):
        return f"{section}={shown(rounds)}: expected {_ROUNDS}"
    for name, values in rounds.items():
        if values is None:
            continue  # e.g. rounds.cpu_vs_control without task-clock
        if name in OBJECT_ROUNDS:
            if not isinstance(values, list) or not all(_is_figures(v) for v in values):
                return f"{section}.{name}={shown(values)}: expected a list of objects of numbers"
            continue
        if not isinstance(values, list) or not all(_is_round_value(v) for v in values):
            return f"{section}.{name}={shown(values)}: expected a list of finite numbers or null"
    return None


def duplicate(key: tuple[Any, ...], name: str, seen: dict[tuple[Any, ...], str]) -> str | None:
    """Record benchmark ``name`` under ``key`` in ``seen``; the problem when already there.
    ``key``: (mode, size, threads), and a request/response benchmark's pattern (``rr``,
    ``rr-1000tps``) fourth."""
    if key in seen:
        what = "(mode, size, threads)" if len(key) == 3 else "(mode, size, threads, pattern)"
        return (
            f"{what}={shown(key)}: expected one benchmark per {what}, also in benchmark {seen[key]}"
        )
    seen[key] = name
    return None
