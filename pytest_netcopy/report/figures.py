"""Figures derived from one benchmark's ``extra_info`` (see docs/results-schema.md).

Each function reads one result mapping and returns a number, a flag or None
where the run did not record it (never a fake 0). The tables, the CSV and the
plots all read the results through these, so a figure means the same in each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_netcopy.results.schema import as_float

Extra = Mapping[str, Any]


def round_values(extra: Extra, key: str) -> Any:
    """``extra["rounds"][key]`` as recorded (one value per measured round), or None."""
    rounds = extra.get("rounds")
    return rounds.get(key) if isinstance(rounds, Mapping) else None


def round_samples(extra: Extra, key: str) -> list[float]:
    """The measured rounds' ``key`` values that are finite numbers."""
    return [v for v in (as_float(x) for x in round_values(extra, key) or []) if v is not None]


def ns_samples(extra: Extra) -> list[float]:
    """Each measured round's time per message (ns): its seconds / messages per round."""
    messages = as_float(extra.get("messages_per_round"))
    if not messages:
        return []
    return [s / messages * 1e9 for s in round_samples(extra, "seconds")]


def round_spread(extra: Extra) -> float | None:
    """Stddev / mean of the measured rounds' Gbps, in %; None with fewer than two rounds."""
    values = round_values(extra, "throughput_gbps")
    gbps = round_samples(extra, "throughput_gbps")
    if len(gbps) < 2 or len(gbps) != len(values or []):
        return None
    mean = math.fsum(gbps) / len(gbps)
    if mean <= 0:
        return None
    variance = math.fsum((g - mean) ** 2 for g in gbps) / len(gbps)
    return 100.0 * math.sqrt(variance) / mean


def measured_rounds(extra: Extra) -> int:
    """How many measured rounds the counter totals span: ``len(rounds.seconds)``."""
    seconds = round_values(extra, "seconds")
    return len(seconds) if isinstance(seconds, list) else 0


def syscalls_total(extra: Extra, key: str = "syscalls_per_message") -> float | None:
    """The ``total`` of a ``{syscall: per message, ..., "total": ...}`` object, or None."""
    per_message = extra.get(key)
    if not isinstance(per_message, Mapping):
        return None
    return as_float(per_message.get("total"))


def copied_fraction(extra: Extra) -> float | None:
    """zero-copy completions the kernel served by copying (0..1), None if not zero-copy."""
    zc = extra.get("zerocopy")
    if not isinstance(zc, Mapping):
        return None
    completions = as_float(zc.get("completions"))
    copied = as_float(zc.get("copied"))
    if completions is None or copied is None or completions <= 0:
        return None
    return copied / completions


def integrity_ok(extra: Extra) -> bool | None:
    integrity = extra.get("integrity")
    if not isinstance(integrity, Mapping) or not isinstance(integrity.get("ok"), bool):
        return None
    return bool(integrity["ok"])


def transmit_only(extra: Extra) -> bool:
    """A result of the blackhole target: nothing received it, so no integrity verdict."""
    integrity = extra.get("integrity")
    return extra.get("target") == "blackhole" or (
        isinstance(integrity, Mapping)
        and integrity.get("ok") is None
        and str(integrity.get("note", "")).startswith("transmit only")
    )


def integrity_word(extra: Extra) -> str | None:
    """``intact``, ``CORRUPT``, ``transmit only`` (never verified), or None (not recorded)."""
    if transmit_only(extra):
        return "transmit only"
    ok = integrity_ok(extra)
    return None if ok is None else ("intact" if ok else "CORRUPT")


# ---------------------------------------------------------------------------
# perf counters


def _counter(extra: Extra, event: str, section: str = "counters") -> Mapping[str, Any] | None:
    """The ``{"value": ..., "status": ...}`` entry of ``event`` in ``section``, or None."""
    counters = extra.get(section)
    if not isinstance(counters, Mapping) or not isinstance(counters.get(event), Mapping):
        return None
    entry: Mapping[str, Any] = counters[event]
    return entry


def per_message(extra: Extra, event: str) -> float | None:
    """A sender counter per message sent, or None where it was not counted.

    Counter values are totals over the measured rounds, all sender threads
    together, so per message = value / (messages_per_round x measured rounds).
    """
    entry = _counter(extra, event)
    value = None if entry is None else as_float(entry.get("value"))
    messages = as_float(extra.get("messages_per_round"))
    rounds = measured_rounds(extra)
    if value is None or not messages or not rounds:
        return None
    return value / (messages * rounds)


def counter_status(extra: Extra) -> str:
    """``event=status`` for each sender counter that has no value, ``;``-joined."""
    counters = extra.get("counters")
    if not isinstance(counters, Mapping):
        return ""
    missing = [
        f"{event}={entry.get('status')}"
        for event, entry in sorted(counters.items())
        if isinstance(entry, Mapping) and as_float(entry.get("value")) is None
    ]
    return ";".join(missing)


def counter_statuses(results: Iterable[Extra], event: str, section: str = "counters") -> list[str]:
    """The distinct statuses (sorted) ``event`` has in ``section`` across ``results``."""
    entries = (_counter(extra, event, section) for extra in results)
    return sorted({str(entry.get("status")) for entry in entries if entry is not None})
