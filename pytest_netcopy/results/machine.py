"""The machine a saved run was measured on, read out of its ``machine_info``.

Pure functions over the ``machine_info`` mapping of a pytest-benchmark file
(``Run.machine_info``): netcopy's own facts under ``machine_info["netcopy"]``
(written by instruments/machine.py) come first, pytest-benchmark's facts
(``release``, ``cpu.brand_raw``, ``cpu.count``) stand in for runs that lack them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMPARED_FACTS",
    "CPU_COUNT",
    "CPU_MODEL",
    "KERNEL_RELEASE",
    "MachineDifference",
    "MachineFact",
    "differing_facts",
    "fact_text",
    "netcopy_facts",
    "recorded_fact",
]


@dataclass(frozen=True)
class MachineFact:
    """One fact about the machine and where a run records it."""

    #: the key in ``machine_info["netcopy"]``, also the fact's name in messages
    key: str
    #: the path to the same fact in pytest-benchmark's own machine_info
    fallback: tuple[str, ...]


KERNEL_RELEASE = MachineFact("kernel_release", ("release",))
CPU_MODEL = MachineFact("cpu_model", ("cpu", "brand_raw"))
CPU_COUNT = MachineFact("cpu_count", ("cpu", "count"))
#: the link's facts (issue 14), both ends: a different link is a different machine
LINK_FACTS = tuple(
    MachineFact(f"link.{end}.{key}", ())
    for end in ("sender", "peer")
    for key in ("interface", "mtu", "driver", "speed", "sg", "tso", "gso", "gro", "tx-checksumming")
)
#: the facts whose difference makes two runs come from different machines
COMPARED_FACTS = (KERNEL_RELEASE, CPU_MODEL, CPU_COUNT, *LINK_FACTS)


def netcopy_facts(machine_info: Mapping[str, Any]) -> Mapping[str, Any]:
    """``machine_info["netcopy"]``, or an empty mapping when absent or not an object."""
    value = machine_info.get("netcopy")
    return value if isinstance(value, Mapping) else {}


def recorded_fact(machine_info: Mapping[str, Any], fact: MachineFact) -> Any:
    """The fact as recorded: netcopy's value, else (absent or null) pytest-benchmark's,
    else None."""
    value: Any = netcopy_facts(machine_info)
    for part in fact.key.split("."):  # link.sender.mtu: a nested fact
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        value = machine_info
        for part in fact.fallback:
            value = value.get(part) if isinstance(value, Mapping) else None
    return value


def fact_text(machine_info: Mapping[str, Any], fact: MachineFact) -> str | None:
    """The recorded fact as stripped text; None when unknown, empty or not a plain value."""
    value = recorded_fact(machine_info, fact)
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value).strip() or None


@dataclass(frozen=True)
class MachineDifference:
    """A fact both runs recorded, with different values."""

    fact: str
    baseline: str
    current: str

    def __str__(self) -> str:
        return f"{self.fact} {self.baseline!r} (baseline) vs {self.current!r} (current)"


def differing_facts(
    baseline: Mapping[str, Any], current: Mapping[str, Any]
) -> list[MachineDifference]:
    """The :data:`COMPARED_FACTS` that both machine_info mappings record and that differ."""
    found = []
    for fact in COMPARED_FACTS:
        old = fact_text(baseline, fact)
        new = fact_text(current, fact)
        if old is not None and new is not None and old != new:
            found.append(MachineDifference(fact.key, old, new))
    return found
