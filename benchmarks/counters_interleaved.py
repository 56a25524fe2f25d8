"""What do the counters cost a round? Counters on and off, interleaved in one run.

    python benchmarks/counters_interleaved.py [--pairs 10] [--sizes 4K,16K,64K] [--threads 1,2]

For each mode x size x threads it opens ONE pool of sender threads and
connections to one sink, calibrates a round to --round-time, and then runs
rounds alternately with the perf counters enabled around the round (as the
plugin does) and without, ABBA order. Both sides share connections, buffers,
CPUs and the minutes of machine state they run in, so what differs is the
counters alone. It prints the median on/off throughput ratio per cell.

The subprocess comparison in counters_overhead.py runs whole pytest sessions
per side; on this VM whole sessions land on different levels (the same cell
differs by 30% between two "off" sessions), which hides a 2% effect. Not a
test (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence

from tabulate import tabulate

from pytest_netcopy.bench.calibration import calibrate
from pytest_netcopy.bench.measure import RoundCounters
from pytest_netcopy.instruments.counters import DEFAULT_EVENTS
from pytest_netcopy.plugin.options import parse_sizes, parse_threads
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.placement import plan_placement
from pytest_netcopy.transport.pool import SenderPool


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=10, help="on/off pairs per cell (10)")
    parser.add_argument("--sizes", default="4K,16K,64K")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modes", default="two_copy,one_copy,zero_copy")
    parser.add_argument("--round-time", type=float, default=0.05)
    args = parser.parse_args(argv)
    registry = builtin_registry()
    placement = plan_placement(True)
    sink = SinkProcess(timeout=60, cpus=placement.sink_cpus if placement.pinned else ())
    rows = []
    try:
        sink.ensure_running()
        for size in parse_sizes(args.sizes):
            for threads in parse_threads(args.threads):
                for name in args.modes.split(","):
                    with SenderPool(
                        sink, registry.get(name), size, threads, timeout=60,
                        congestion="auto",
                        cpus=placement.sender_cpus if placement.pinned else (),
                    ) as pool, RoundCounters(pool, DEFAULT_EVENTS) as counters:  # fmt: skip
                        count = calibrate(pool, args.round_time, size)
                        pool.run_round(count)  # warm-up
                        on: list[float] = []
                        off: list[float] = []
                        for i in range(args.pairs):
                            order = (True, False) if i % 2 == 0 else (False, True)
                            for with_counters in order:
                                if with_counters:
                                    r = counters.run(lambda n=count: pool.run_round(n))
                                    on.append(r.bytes * 8 / r.seconds / 1e9)
                                else:
                                    r = pool.run_round(count)
                                    off.append(r.bytes * 8 / r.seconds / 1e9)
                    ratio = statistics.median(on) / statistics.median(off) - 1
                    rows.append(
                        [name, size, threads, f"{statistics.median(on):.2f}",
                         f"{statistics.median(off):.2f}", f"{ratio * 100:+.1f}%",
                         "yes" if abs(ratio) <= 0.02 else "NO"]
                    )  # fmt: skip
                    print(*rows[-1], flush=True, file=sys.stderr)
    finally:
        sink.close()
    print(
        tabulate(
            rows,
            headers=["mode", "size", "threads", "on Gbps", "off Gbps", "on/off", "within 2%"],
        )
    )
    within = sum(r[-1] == "yes" for r in rows)
    print(f"\n{within} of {len(rows)} cells within 2% ({args.pairs} interleaved pairs each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
