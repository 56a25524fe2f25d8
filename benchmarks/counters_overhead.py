"""What do the counters cost the benchmark? Counters on versus ``--netcopy-counters=none``.

    python benchmarks/counters_overhead.py [--repeats 5] [--out overhead.json]

The issue's target: "Counters on versus --netcopy-counters=none: throughput
differs by at most 2% at 4 KiB and above (same run, interleaved)".

It runs the real sweep (``pytest benchmarks/test_sweep.py``, fresh processes,
never two at once) ``--repeats`` times with ``--netcopy-counters=default`` and
as often with ``--netcopy-counters=none``, interleaved in ABBA order (on, off,
off, on, ...) so that a slow drift of the machine hits both sides alike, and
reads ``throughput_gbps`` from each ``--benchmark-json``. Per (mode, size,
threads) it prints the median throughput of each side, the ratio of the
medians (on / off), the range of the per-repeat ratios (each "on" run with its
neighbouring "off" run), and the spread of the "off" runs among themselves
(how much the figure moves with no change at all), then a verdict against 2%.

Not a test (pytest does not collect it). Each sweep of the default grid here
(3 sizes x 2 thread counts x 3 modes) takes ~20-30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

from tabulate import tabulate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SWEEP = HERE / "test_sweep.py"
TARGET = 0.02  # at most 2% apart
Key = tuple[str, int, int]  # mode, size, threads


def run_sweep(args: argparse.Namespace, counters: str, json_path: Path) -> dict[Key, float]:
    """One fresh pytest process over the grid; throughput_gbps per (mode, size, threads)."""
    cmd = [
        sys.executable, "-m", "pytest", str(SWEEP),
        "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
        f"--netcopy-sizes={args.sizes}",
        f"--netcopy-threads={args.threads}",
        f"--netcopy-modes={args.modes}",
        f"--netcopy-counters={counters}",
        f"--benchmark-json={json_path}",
    ]  # fmt: skip
    if args.round_time is not None:
        cmd.append(f"--netcopy-round-time={args.round_time}")
    if args.rounds is not None:
        cmd.append(f"--netcopy-rounds={args.rounds}")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the sweep failed (exit {done.returncode}): {' '.join(cmd)}")
    data = json.loads(json_path.read_text())
    out: dict[Key, float] = {}
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        if counters == "none" and extra.get("counters"):
            raise SystemExit("--netcopy-counters=none still recorded counters")
        out[extra["mode"], extra["size"], extra["threads"]] = float(extra["throughput_gbps"])
    return out


def order(repeats: int) -> list[str]:
    """ABBA: on, off, off, on, on, off, ... (each side gets ``repeats`` runs)."""
    sides: list[str] = []
    for i in range(repeats):
        sides += ["default", "none"] if i % 2 == 0 else ["none", "default"]
    return sides


def summarize(runs: Sequence[tuple[str, dict[Key, float]]]) -> list[dict[str, Any]]:
    keys = sorted({k for _, r in runs for k in r}, key=lambda k: (k[1], k[2], k[0]))
    rows = []
    for key in keys:
        on = [r[key] for side, r in runs if side == "default" and key in r]
        off = [r[key] for side, r in runs if side == "none" and key in r]
        # each repeat's pair: runs 2i and 2i+1 are one "on" and one "off", adjacent in time
        pairs = [
            (a[1][key], b[1][key]) if a[0] == "default" else (b[1][key], a[1][key])
            for a, b in zip(runs[0::2], runs[1::2], strict=True)
            if key in a[1] and key in b[1]
        ]
        ratios = [x / y for x, y in pairs]
        ratio = median(on) / median(off)
        rows.append(
            {
                "mode": key[0],
                "size": key[1],
                "threads": key[2],
                "on_gbps": on,
                "off_gbps": off,
                "ratio_of_medians": ratio,
                "pair_ratios": ratios,
                "off_spread": max(off) / min(off) - 1,
                "within_target": abs(ratio - 1) <= TARGET,
            }
        )
    return rows


def pooled(rows: list[dict[str, Any]]) -> str:
    """All cells together: the median pair ratio, and the median off-vs-off spread.

    When the "off" runs alone spread by more than the target, a single cell
    cannot resolve 2%; the pooled median over every pair of every cell can.
    """
    ratios = [x for r in rows for x in r["pair_ratios"]]
    spreads = [r["off_spread"] for r in rows]
    return (
        f"pooled over {len(rows)} cells: median on/off {pct(median(ratios))} "
        f"({len(ratios)} pairs); median off-vs-off spread {median(spreads) * 100:.1f}%"
    )


def pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def render(rows: list[dict[str, Any]]) -> str:
    table = [
        [
            r["mode"],
            f"{r['size'] // 1024}K",
            r["threads"],
            f"{median(r['on_gbps']):.2f}",
            f"{median(r['off_gbps']):.2f}",
            pct(r["ratio_of_medians"]),
            f"{pct(min(r['pair_ratios']))} .. {pct(max(r['pair_ratios']))}",
            f"{r['off_spread'] * 100:.1f}%",
            "yes" if r["within_target"] else "NO",
        ]
        for r in rows
    ]
    headers = [
        "mode", "size", "thr", "on Gbps", "off Gbps", "on/off",
        "pair ratios (min..max)", "off-vs-off spread", "within 2%",
    ]  # fmt: skip
    return tabulate(table, headers=headers, disable_numparse=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per side (default 5)")
    parser.add_argument("--sizes", default="4K,16K,64K")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modes", default="two_copy,one_copy,zero_copy")
    parser.add_argument("--round-time", type=float, default=None, help="plugin default if unset")
    parser.add_argument("--rounds", type=int, default=None, help="plugin default if unset")
    parser.add_argument("--out", type=Path, default=None, help="write every figure as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    runs: list[tuple[str, dict[Key, float]]] = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="netcopy-overhead-") as tmp:
        for i, side in enumerate(order(args.repeats)):
            t0 = time.monotonic()
            runs.append((side, run_sweep(args, side, Path(tmp) / f"{i}.json")))
            print(
                f"run {i + 1}/{2 * args.repeats} counters={side}: {time.monotonic() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    rows = summarize(runs)
    print(render(rows))
    bad = [r for r in rows if not r["within_target"]]
    print(
        f"\n{len(rows) - len(bad)} of {len(rows)} cells within {TARGET:.0%} "
        f"(ratio of medians, {args.repeats} runs per side, ABBA order, "
        f"{time.monotonic() - start:.0f} s, {os.cpu_count()} CPUs)"
    )
    print(pooled(rows))
    if args.out is not None:
        raw = [
            {"counters": side, "results": [[*key, gbps] for key, gbps in sorted(r.items())]}
            for side, r in runs
        ]
        args.out.write_text(json.dumps({"runs": raw, "rows": rows}, indent=1))
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
