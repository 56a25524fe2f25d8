"""Run-level facts about the machine, for ``machine_info["netcopy"]``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SYSCTLS = (
    "net.core.optmem_max",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_rmem",
    "kernel.perf_event_paranoid",
    "net.ipv4.tcp_congestion_control",
)


def read_sysctl(name: str, procfs: Path = Path("/proc")) -> str | None:
    """A sysctl's value as text (whitespace folded), or None where unreadable."""
    try:
        text = (procfs / "sys" / name.replace(".", "/")).read_text()
    except OSError:
        return None
    return " ".join(text.split())


def cpu_model(procfs: Path = Path("/proc")) -> str | None:
    try:
        lines = (procfs / "cpuinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip() or None
    return None


def machine_facts(procfs: Path = Path("/proc")) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "kernel_release": os.uname().release,
        "cpu_count": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(procfs),
    }
    for name in SYSCTLS:
        value = read_sysctl(name, procfs)
        if name in ("net.core.optmem_max", "kernel.perf_event_paranoid") and value is not None:
            facts[name] = int(value)
        else:
            facts[name] = value
    return facts
