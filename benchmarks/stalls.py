"""Is this machine quiet enough for round-to-round figures? Measure how often its CPUs stall.

    python benchmarks/stalls.py [--seconds 20] [--gap-ms 2]

One busy thread per CPU (pinned), each reading the clock in a tight loop for
``--seconds``: any gap longer than ``--gap-ms`` between two reads is time the
thread did not run (the hypervisor descheduled the vCPU, an interrupt storm,
another task). On a quiet bare-metal machine there are next to none. A gap of
10 ms inside a 50 ms round makes that round ~20% slower, which is how a quiet
VM still shows single slow rounds (README, "Measured here"). Not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence


def spin(cpu: int, seconds: float, gap_ns: int) -> tuple[int, list[float]]:
    os.sched_setaffinity(0, {cpu})
    clock = time.perf_counter_ns
    start = last = clock()
    end = start + int(seconds * 1e9)
    gaps: list[float] = []
    while last < end:
        now = clock()
        if now - last > gap_ns:
            gaps.append((now - last) / 1e6)
        last = now
    return cpu, gaps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="Default: 20")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="Default: 2")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.gap_ms <= 0:
        parser.error("--seconds and --gap-ms must be positive")
    cpus = sorted(os.sched_getaffinity(0))
    with multiprocessing.get_context("spawn").Pool(len(cpus)) as pool:
        results = pool.starmap(spin, [(cpu, args.seconds, int(args.gap_ms * 1e6)) for cpu in cpus])
    for cpu, gaps in results:
        worst = ", ".join(f"{g:.1f}" for g in sorted(gaps)[-5:]) or "-"
        lost = sum(gaps)
        print(
            f"cpu {cpu}: {len(gaps)} stalls > {args.gap_ms:g} ms in {args.seconds:g} s "
            f"({lost:.0f} ms lost); longest: {worst} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
