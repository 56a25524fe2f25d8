"""How stable is user_instructions_per_message? Repeated counts of the same code.

    python benchmarks/instruction_stability.py [--runs 20] [--sizes 4096,65536] [--out FILE]

Counts each built-in mode (two_copy, one_copy, zero_copy) and the slower build of
``benchmarks/trust/extra_copy.py`` (two_copy with one more full copy of each
message, loaded as trust.py loads it: this folder on the path, the module by name)
``--runs`` times per size, through the same code path as the benchmark's pass
(``bench.passes.InstructionCounter``: one counting process under valgrind, an N-
and a 2N-message child per count). The children send only into a drain in this
process, so the machine is hardly disturbed. Per mode and size it prints min,
median, max, the spread ((max - min) / median), the seconds per count, and for
the extra copy its median against two_copy's: what the gate's threshold must sit
between. Not a test (pytest does not collect it). Needs valgrind.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pytest_netcopy.bench.passes import InstructionCounter
from pytest_netcopy.instruments.cachegrind import find_valgrind
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.send.modes import Mode

TRUST = Path(__file__).parent / "trust"


def modes() -> dict[str, Mode]:
    registry = builtin_registry()
    sys.path.insert(0, str(TRUST))  # as trust.py's -p extra_copy with PYTHONPATH
    from extra_copy import ExtraCopy

    chosen = {name: registry.get(name) for name in ("two_copy", "one_copy", "zero_copy")}
    chosen["two_copy+1 copy"] = ExtraCopy()
    return chosen


def measure(runs: int, sizes: list[int]) -> list[dict[str, Any]]:
    counter = InstructionCounter(timeout=60.0)
    rows = []
    try:
        started = time.monotonic()
        counter.count(builtin_registry().get("two_copy"), sizes[0])  # starts the process
        print(f"counting process started in {time.monotonic() - started:.1f} s", flush=True)
        for size in sizes:
            for name, mode in modes().items():
                values, seconds = [], []
                for _ in range(runs):
                    counter.forget()
                    t0 = time.monotonic()
                    got = counter.count(mode, size)
                    seconds.append(time.monotonic() - t0)
                    if got.user_instructions_per_message is None:
                        raise SystemExit(f"{name} {size} B: not counted: {got.reason}")
                    values.append(got.user_instructions_per_message)
                rows.append(_row(name, size, values, seconds))
                print(tabulate([rows[-1]], headers="keys", floatfmt=".1f"), flush=True)
    finally:
        counter.close()
    return rows


def _row(name: str, size: int, values: list[float], seconds: list[float]) -> dict[str, Any]:
    median = statistics.median(values)
    return {
        "mode": name,
        "size": size,
        "runs": len(values),
        "min": min(values),
        "median": median,
        "max": max(values),
        "spread %": 100 * (max(values) - min(values)) / median,
        "s/count": statistics.median(seconds),
        "values": values,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sizes", default="4096,65536")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if find_valgrind() is None:
        print("needs valgrind (Debian package valgrind)", file=sys.stderr)
        return 2
    rows = measure(args.runs, [int(s) for s in args.sizes.split(",")])
    shown = [{k: v for k, v in r.items() if k != "values"} for r in rows]
    print()
    print(tabulate(shown, headers="keys", floatfmt=".1f"))
    for size in sorted({r["size"] for r in rows}):
        by = {r["mode"]: r for r in rows if r["size"] == size}
        plain, slower = by["two_copy"], by["two_copy+1 copy"]
        print(
            f"{size} B: one more copy {slower['median'] / plain['median'] - 1:+.1%} "
            f"(min of the slower build vs max of two_copy: "
            f"{slower['min'] / plain['max'] - 1:+.1%})"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
