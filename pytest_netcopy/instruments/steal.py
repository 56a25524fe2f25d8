"""Hypervisor steal time on the benchmark's CPUs, read from ``/proc/stat``.

On a virtual machine the host can stop a vCPU that has work to do (to run
another guest or its own threads). The guest kernel counts that time as
*steal*, per CPU, in the 8th value of each ``cpuN`` line of ``/proc/stat``
(clock ticks, ``SC_CLK_TCK`` per second: 10 ms on every common build). A
round during which the host stole even 10 ms of a 50 ms round is 15-20%
slow for a reason outside the machine under test.

Measured on our 2-vCPU VM (64 KiB two_copy, 300 rounds of ~60 ms): 8 of the
10 rounds more than 10% below the median had steal on the sender's or the
sink's CPU, against 4% of the others. On bare metal steal is always 0.

The resolution is one tick: a steal shorter than that shows in a round with
a probability of about its length over the tick; one of a tick or longer
always shows. The reading costs ~20 us and is taken outside the timed region.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

PROC_STAT = "/proc/stat"
#: index of steal among a cpu line's values (user nice system idle iowait irq softirq steal)
STEAL_FIELD = 7


def tick_ms() -> float:
    """Milliseconds per ``/proc/stat`` clock tick (10 on every common build)."""
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        hz = 100
    return 1000.0 / hz if hz > 0 else 10.0


def parse_steal(text: str) -> dict[int, int]:
    """Steal ticks per CPU from the text of ``/proc/stat``.

    Raises ValueError when there is no per-CPU line with a steal value (a
    kernel older than 2.6.11, or not a /proc/stat at all).
    """
    out: dict[int, int] = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            if out:
                break  # the cpu lines come first, together
            continue
        name, _, rest = line.partition(" ")
        if name == "cpu" or not name[3:].isdigit():
            continue  # the all-CPU total
        values = rest.split()
        if len(values) <= STEAL_FIELD or not values[STEAL_FIELD].isdigit():
            raise ValueError(f"{name} line has no steal value: {line!r}")
        out[int(name[3:])] = int(values[STEAL_FIELD])
    if not out:
        raise ValueError("no per-CPU lines (cpu0, cpu1, ...)")
    return out


def _read_file(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


class StealClock:
    """Steal on a set of CPUs (all CPUs when none are named), in milliseconds.

    ``read()`` returns the running total in ticks, or None once the source
    proved unreadable (``reason`` says why); a missing source never fails a
    benchmark, it only means steal is not known.
    """

    def __init__(
        self,
        cpus: Iterable[int] = (),
        *,
        path: str = PROC_STAT,
        reader: Callable[[str], str] = _read_file,
        ms_per_tick: float | None = None,
    ) -> None:
        self.cpus = sorted(set(cpus))
        self.path = path
        self._reader = reader
        self.ms_per_tick = tick_ms() if ms_per_tick is None else ms_per_tick
        self.reason: str | None = None

    def read(self) -> int | None:
        if self.reason is not None:
            return None
        try:
            per_cpu = parse_steal(self._reader(self.path))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self.reason = f"{self.path}: {exc}"
            return None
        if not self.cpus:
            return sum(per_cpu.values())
        missing = [c for c in self.cpus if c not in per_cpu]
        if missing:
            self.reason = f"{self.path}: no line for CPU(s) {missing}"
            return None
        return sum(per_cpu[c] for c in self.cpus)

    def ms(self, before: int | None, after: int | None) -> float | None:
        """Steal between two readings, in ms; None when either is unknown, or when the
        counter went backwards (not a steal this source can vouch for)."""
        if before is None or after is None or after < before:
            return None
        return (after - before) * self.ms_per_tick
