"""One-line descriptions of a run: when and from which commit, the machine, the sender settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.results.machine import (
    CPU_COUNT,
    CPU_MODEL,
    KERNEL_RELEASE,
    netcopy_facts,
    recorded_fact,
)
from pytest_netcopy.results.runs import Run


def describe_machine(machine_info: Mapping[str, Any]) -> str:
    """``CPU model · N CPUs · kernel X`` from machine_info["netcopy"], pytest-benchmark fallback.

    ``N CPUs (M usable)`` when the run's CPU affinity (``cpus_allowed``) was narrower.
    """
    model = recorded_fact(machine_info, CPU_MODEL) or "unknown CPU"
    count = recorded_fact(machine_info, CPU_COUNT)
    kernel = recorded_fact(machine_info, KERNEL_RELEASE) or "unknown"
    allowed = netcopy_facts(machine_info).get("cpus_allowed")
    parts = [str(model)]
    if count:
        usable = f" ({allowed} usable)" if allowed and allowed != count else ""
        parts.append(f"{count} CPUs{usable}")
    parts.append(f"kernel {kernel}")
    return " · ".join(parts)


def describe_when(run: Run) -> str:
    """``2024-05-01 12:00:00 UTC · commit 0123abcde (main, dirty)``."""
    parts = []
    if run.datetime:
        parts.append(run.datetime[:19].replace("T", " ") + " UTC")
    commit = run.commit_info
    if commit.get("id"):
        dirty = ", dirty" if commit.get("dirty") else ""
        branch = f" ({commit['branch']}{dirty})" if commit.get("branch") else ""
        parts.append(f"commit {str(commit['id'])[:9]}{branch}")
    return " · ".join(parts) or "date and commit unknown"


def describe_machine_pmus(run: Run) -> str:
    """:func:`describe_machine`, then the hardware PMUs the run found (where recorded)."""
    text = describe_machine(run.machine_info)
    pmus = run.netcopy_machine.get("pmus")
    if isinstance(pmus, list):
        text += " · " + ("PMUs " + ", ".join(map(str, pmus)) if pmus else "no hardware PMU")
    return text


def cpu_list(cpus: Sequence[int]) -> str:
    """``CPU 3`` or ``CPUs 0-18`` or ``CPUs 0, 2, 4-6``."""
    spans: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if spans and cpu == spans[-1][1] + 1:
            spans[-1][1] = cpu
        else:
            spans.append([cpu, cpu])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"CPU {text}" if len(cpus) == 1 else f"CPUs {text}"


def _placement(results: Sequence[Extra]) -> str:
    places: list[Mapping[str, Any]] = []
    for result in results:
        place = result.get("placement")
        places.append(place if isinstance(place, Mapping) else {})
    pinned = {p.get("pinned") for p in places}
    if pinned == {False}:
        return "not pinned"
    if pinned != {True}:
        return "pinned for some benchmarks only"
    where = {(tuple(p.get("sender_cpus") or ()), tuple(p.get("sink_cpus") or ())) for p in places}
    if len(where) != 1:
        return "sender threads and sink pinned to separate CPUs"
    ((senders, sinks),) = where
    return f"pinned: sender threads on {cpu_list(senders)}, sink on {cpu_list(sinks)}"


def describe_sender(results: Sequence[Extra]) -> str:
    """Nagle (TCP_NODELAY) and the CPU placement of the senders and the sink."""
    nodelay = {r.get("tcp_nodelay") for r in results}
    if nodelay == {False}:
        nagle = "Nagle on (TCP_NODELAY off, the default)"
    elif nodelay == {True}:
        nagle = "Nagle off (TCP_NODELAY on)"
    else:
        nagle = "TCP_NODELAY differs between benchmarks"
    return f"{nagle} · {_placement(results)}"
