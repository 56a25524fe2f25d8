"""Zero-copy against the gathering copy on the blackhole target (issue 15), repeated.

    sudo python benchmarks/zerocopy_blackhole.py [--runs 3] [--sizes 1400,4096,16384,60000]

Runs, ``--runs`` times (each a fresh pytest process, so a fresh topology and probe)::

    pytest benchmarks/ -p no:xdist --netcopy-target=blackhole \\
        --netcopy-modes=udp_one_copy,udp_zero_copy --netcopy-sizes=SIZES --netcopy-threads=1 \\
        --netcopy-patterns=stream

and prints, per size, the median over the runs of each mode's Gbps and sender CPU ns/byte,
and zero-copy's ratios to one_copy (Gbps > 1 and CPU < 1: zero-copy ahead), then where
zero-copy's CPU per byte starts to pay (the same logic as the summary) and whether every
completion came back uncopied. Needs root (docs/blackhole.md). Extra arguments after ``--``
go to pytest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_netcopy.report.crossovers import cpu_crossovers

HERE = Path(__file__).resolve().parent
MODES = ("udp_one_copy", "udp_zero_copy")


def one_run(sizes: str, extra: list[str], out: Path) -> list[dict[str, Any]]:
    """One pytest session of the sweep; its results' extra_info."""
    cmd = [
        sys.executable, "-m", "pytest", str(HERE), "-p", "no:xdist", "-q",
        "--netcopy-target=blackhole", f"--netcopy-modes={','.join(MODES)}",
        f"--netcopy-sizes={sizes}", "--netcopy-threads=1", "--netcopy-patterns=stream",
        f"--benchmark-json={out}", *extra,
    ]  # fmt: skip
    done = subprocess.run(cmd, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"zerocopy_blackhole: pytest exited {done.returncode}: {' '.join(cmd)}")
    return [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def show(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def table(runs: list[list[dict[str, Any]]]) -> list[str]:
    """Per size: median Gbps and CPU ns/byte of both modes over the runs, and the ratios."""
    by: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for results in runs:
        for e in results:
            by.setdefault((int(e["size"]), str(e["mode"])), []).append(e)
    lines = [
        f"{'size':>7}  {'one Gbps':>9} {'zc Gbps':>9} {'zc/one':>7}  "
        f"{'one ns/B':>9} {'zc ns/B':>9} {'zc/one':>7}  zero-copy copied"
    ]
    for size in sorted({s for s, _ in by}):
        one, zc = by.get((size, MODES[0]), []), by.get((size, MODES[1]), [])
        g1 = median([e.get("throughput_gbps") for e in one])
        g0 = median([e.get("throughput_gbps") for e in zc])
        c1 = median([e.get("cpu_ns_per_byte") for e in one])
        c0 = median([e.get("cpu_ns_per_byte") for e in zc])
        copied = [(e.get("zerocopy") or {}).get("copied_fraction") for e in zc]
        lines.append(
            f"{size:>7}  {show(g1, '9.2f')} {show(g0, '9.2f')} "
            f"{show(g0 / g1 if g0 and g1 else None, '7.2f')}  {show(c1, '9.3f')} "
            f"{show(c0, '9.3f')} {show(c0 / c1 if c0 and c1 else None, '7.2f')}  "
            f"{', '.join(show(c, '.0%') for c in copied)}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="extra pytest arguments go after --, e.g. -- --netcopy-rounds=20",
    )
    parser.add_argument("--runs", type=int, default=3, help="pytest sessions (default 3)")
    parser.add_argument("--sizes", default="1400,4096,16384,60000", help="message sizes")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    runs = []
    with tempfile.TemporaryDirectory(prefix="zerocopy_blackhole") as tmp:
        for n in range(args.runs):
            print(f"== run {n + 1} of {args.runs}", flush=True)
            runs.append(one_run(args.sizes, extra, Path(tmp) / f"run{n}.json"))
    print("\n".join(table(runs)))
    for n, results in enumerate(runs, 1):
        for crossover in cpu_crossovers(results):
            print(f"run {n}, threads={crossover.threads}: {crossover.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
