"""Writes pmu_run.json, the one hand-made fixture, from the real run real_run.json.

    /work/venv/bin/python tests/data/runs/make_pmu_run.py

The machine that made the real runs has no hardware PMU (a VM: cycles, cache
misses and friends are "not supported"), so a run with counted hardware events
cannot be recorded there. This script takes real_run.json as the template and
keeps its schema exactly (every key, in order, with the same types), changing
only values:

* machine_info: a hybrid Intel desktop (core PMUs ``cpu_atom`` and ``cpu_core``,
  20 CPUs, perf_event_paranoid 1), senders pinned to CPUs 0-18, sink on 19;
* timings: each benchmark's rounds scaled so its median round gives the
  throughput in PMU_GBPS (rounds, pytest-benchmark stats and the sink's
  task-clock scale with it; the senders' task-clock and per-round CPU ns/byte
  also with the thread count, as each sender thread has a CPU of its own here;
  message counts stay as measured);
* hardware counters: totals over the measured rounds, sender threads summed,
  status ``scaled`` (a hybrid PMU counts only while the thread is on its core
  type), and the derived cycles/instructions per byte and IPC. One group,
  zero_copy 256 B x 2 threads, was starved by multiplexing: ``not counted``,
  value null, running_fraction 0.0 (never a fake 0).

Deterministic: the same template gives the same file.
"""

from __future__ import annotations

import copy
import json
import random
import statistics
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TEMPLATE = HERE / "real_run.json"
TARGET = HERE / "pmu_run.json"
SIZES = (256, 1024, 4096, 16384, 65536)

# throughput (Gbps, all connections) of the median round per (threads, mode) at SIZES
PMU_GBPS = {
    (1, "two_copy"): (1.95, 6.10, 15.8, 31.5, 40.2),
    (1, "one_copy"): (1.62, 5.40, 14.9, 32.8, 44.1),
    (1, "zero_copy"): (0.41, 1.55, 5.20, 14.6, 27.3),
    (2, "two_copy"): (3.10, 9.80, 24.6, 45.0, 52.3),
    (2, "one_copy"): (2.60, 8.90, 25.9, 43.6, 55.9),
    (2, "zero_copy"): (0.70, 2.60, 8.90, 24.0, 41.5),
}
CPU = "12th Gen Intel(R) Core(TM) i7-12700"
KERNEL = "6.8.0-49-generic"
NCPUS = 20
STARVED = ("zero_copy", 256, 2)
HARDWARE = ("cycles", "instructions", "cache-misses", "L1-dcache-load-misses", "LLC-load-misses")
#: per message, as a function of the cache lines of one message
L1_PER_LINE = {"two_copy": 2.2, "one_copy": 1.15, "zero_copy": 0.4}
LLC_PER_LINE = {"two_copy": 0.05, "one_copy": 0.03, "zero_copy": 0.08}
IPC = {"two_copy": 1.9, "one_copy": 1.7, "zero_copy": 1.2}
GHZ = 4.3

# pytest-benchmark stats that are times (scale with the rounds) or rates (scale inversely)
TIME_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr")


def machine(info: dict[str, Any]) -> dict[str, Any]:
    info = copy.deepcopy(info)
    info.update(node="bench-i7", release=KERNEL, processor="x86_64")
    info["cpu"].update(
        count=NCPUS,
        vendor_id_raw="GenuineIntel",
        brand_raw=CPU,
        hz_advertised_friendly="2.1000 GHz",
        hz_actual_friendly="4.6001 GHz",
        hz_advertised=[2100000000, 0],
        hz_actual=[4600100000, 0],
        stepping=2,
        model=151,
        family=6,
    )
    info["netcopy"].update(
        {
            "kernel_release": KERNEL,
            "cpu_count": NCPUS,
            "cpus_allowed": NCPUS,
            "cpu_model": CPU,
            "net.core.optmem_max": 20480,
            "net.ipv4.tcp_wmem": "4096 16384 4194304",
            "net.ipv4.tcp_rmem": "4096 131072 6291456",
            "kernel.perf_event_paranoid": 1,
            "pmus": ["cpu_atom", "cpu_core"],
            "nmi_watchdog": False,
            "placement": placement(),
        }
    )
    return info


def placement() -> dict[str, Any]:
    return {"sender_cpus": list(range(NCPUS - 1)), "sink_cpus": [NCPUS - 1], "pinned": True}


def counter(value: float | None, status: str, fraction: float | None) -> dict[str, Any]:
    return {"value": value, "status": status, "running_fraction": fraction}


def bench(rng: random.Random, template: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(template)
    e = b["extra_info"]
    mode, size, threads = e["mode"], e["size"], e["threads"]
    gbps = PMU_GBPS[threads, mode][SIZES.index(size)]
    k = e["throughput_gbps"] / gbps  # time factor: the new median round gives gbps
    nbytes, messages = e["bytes_per_round"], e["messages_per_round"]
    rounds = e["rounds"]
    rounds["seconds"] = [s * k for s in rounds["seconds"]]
    rounds["throughput_gbps"] = [nbytes * 8 / s / 1e9 for s in rounds["seconds"]]
    median = statistics.median(rounds["seconds"])
    e.update(
        throughput_gbps=nbytes * 8 / median / 1e9,
        throughput_gbps_per_connection=nbytes * 8 / median / 1e9 / threads,
        messages_per_second=messages / median,
        ns_per_message=median / messages * 1e9,
    )
    e["placement"] = placement()
    e["sink_recv_buffer"] = 1048576
    n_rounds = len(rounds["seconds"])
    total_bytes = nbytes * n_rounds
    total_messages = messages * n_rounds
    # CPU time: the real run's sender threads shared one CPU; here each has its own,
    # so the senders' CPU time is the wall time of all threads together
    cpu = k * threads
    rounds["cpu_ns_per_byte"] = [
        v * cpu for v in template["extra_info"]["rounds"]["cpu_ns_per_byte"]
    ]
    counters = e["counters"]
    task_clock = counters["task-clock"]["value"] * cpu
    counters["task-clock"]["value"] = task_clock
    e["sink_counters"]["task-clock"]["value"] *= k
    e["cpu_ns_per_byte"] = task_clock / total_bytes
    e["sink_cpu_ns_per_byte"] = e["sink_counters"]["task-clock"]["value"] / total_bytes
    if (mode, size, threads) == STARVED:
        for event in HARDWARE:
            counters[event] = counter(None, "not counted", 0.0)
        e.update(cycles_per_byte=None, instructions_per_byte=None, ipc=None)
    else:
        fraction = round(rng.uniform(0.55, 0.98), 3)  # P-core share of the thread's time
        cycles = task_clock * GHZ * rng.uniform(0.97, 1.03)
        ipc = IPC[mode] * rng.uniform(0.95, 1.05)
        lines = size / 64
        llc = (LLC_PER_LINE[mode] * lines + 1.5) * total_messages
        values = {
            "cycles": cycles,
            "instructions": cycles * ipc,
            "cache-misses": llc * 1.6,
            "L1-dcache-load-misses": (L1_PER_LINE[mode] * lines + 180) * total_messages,
            "LLC-load-misses": llc,
        }
        for event in HARDWARE:
            counters[event] = counter(float(round(values[event])), "scaled", fraction)
        e.update(
            cycles_per_byte=counters["cycles"]["value"] / total_bytes,
            instructions_per_byte=counters["instructions"]["value"] / total_bytes,
            ipc=counters["instructions"]["value"] / counters["cycles"]["value"],
        )
    stats = b["stats"]
    for key in TIME_STATS:
        stats[key] *= k
    stats["total"] *= k
    stats["ops"] /= k
    return b


def main() -> None:
    data = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    rng = random.Random(1)
    data["machine_info"] = machine(data["machine_info"])
    data["benchmarks"] = [bench(rng, b) for b in data["benchmarks"]]
    data["commit_info"].update(
        id="3f9c2a1d8e7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
        time="2026-11-20T10:12:44+01:00",
        author_time="2026-11-20T10:12:44+01:00",
    )
    data["datetime"] = "2026-11-20T09:31:07.412345+00:00"
    TARGET.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
