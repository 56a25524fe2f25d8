"""How far can the gate be trusted? False alarms and power, measured on this machine.

    python benchmarks/trust.py [--pairs 20] [--out trust.json]

For each of ``--pairs`` indices it runs the real sweep three times, back to
back, in fresh pytest processes (``pytest benchmarks/test_sweep.py
--netcopy-sizes=4K,64K --netcopy-threads=1 --netcopy-modes=two_copy``):

1. the normal build                  -> A
2. the normal build again            -> B
3. the slower build (``benchmarks/trust/extra_copy.py``: two_copy with one
   more full copy of each message, under the same name)  -> C

and compares with the gate's own logic (``gate.compare_runs``, default rules
unless ``--gate`` is given):

* false alarm: A vs B (same code) fails the gate for that size;
* power:       B vs C (one more copy) fails the gate for that size.

It prints one table (per size: pairs, how many failed, on which metric, the
median change of each metric, and the goal) and, with ``--out``, writes every
pair's figures as JSON. Not a test (pytest does not collect ``trust.py``);
it takes a few minutes: each run is ~2-4 s.
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

from pytest_netcopy.gate.compare import benchmark_id, compare_runs
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.policy import DEFAULT_RULES
from pytest_netcopy.gate.row import REGRESSION
from pytest_netcopy.gate.rules import Rule, format_rules, parse_rules
from pytest_netcopy.results.runs import load_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SWEEP = HERE / "test_sweep.py"
SLOW_BUILD_DIR = HERE / "trust"
SLOW_BUILD = "extra_copy"
MODE = "two_copy"
SIZES = (4096, 65536)
#: the issue's goals: at most this many false alarms, at least this many caught (64 KiB)
MAX_FALSE_ALARMS = 1
MIN_CAUGHT = 19


def run_sweep(out: Path, *, slow: bool, extra: Sequence[str], copies: int = 1) -> None:
    """One pytest process of the sweep; its JSON goes to ``out``."""
    cmd = [
        sys.executable, "-m", "pytest", str(SWEEP), "-q", "-p", "no:cacheprovider",
        "--netcopy-sizes=" + ",".join(str(s) for s in SIZES), "--netcopy-threads=1",
        f"--netcopy-modes={MODE}", f"--benchmark-json={out}", *extra,
    ]  # fmt: skip
    env = dict(os.environ)
    if slow:
        cmd += ["-p", SLOW_BUILD]
        env["NETCOPY_EXTRA_COPIES"] = str(copies)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SLOW_BUILD_DIR), env.get("PYTHONPATH", "")) if p
        )
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise SystemExit(f"trust: the sweep failed (exit {proc.returncode}):\n{tail}")


def per_size(outcome: GateOutcome, size: int) -> dict[str, Any]:
    """What the gate said about the benchmark of one size."""
    bench = benchmark_id((MODE, size, 1))
    rows = [r for r in outcome.rows if r.benchmark == bench]
    return {
        "failed": any(r.verdict == REGRESSION for r in rows),
        "metrics": [r.metric for r in rows if r.verdict == REGRESSION],
        "change": {r.metric: r.change for r in rows},
        "p": {r.metric: r.p_value for r in rows},
        "verdict": {r.metric: r.verdict for r in rows},
        "speed_changed": bench in outcome.speed_changed,
    }


def compare(base: Path, new: Path, rules: Sequence[Rule]) -> dict[int, dict[str, Any]]:
    outcome = compare_runs(load_run(base), load_run(new), rules)
    return {size: per_size(outcome, size) for size in SIZES}


def _change(got: dict[str, Any], kind: str) -> float | None:
    """The change of the first rule metric of a kind (throughput..., cpu...)."""
    for metric, change in got["change"].items():
        if metric.startswith(kind) and change is not None:
            return float(change)
    return None


def _pct(values: list[float]) -> str:
    return f"{median(values):+.1%}" if values else "-"


def summarize(pairs: list[dict[str, Any]], rules: Sequence[Rule], copies: int = 1) -> str:
    headers = ["check", "size", "pairs", "gate failed", "on throughput", "on cpu", "on user cpu",
               "not judged (speed)", "median change throughput", "median change cpu",
               "median change user cpu", "goal"]  # fmt: skip
    body = []
    for kind, label in (
        ("same", "false alarms (same code)"),
        ("slow", f"power ({copies} more cop{'y' if copies == 1 else 'ies'})"),
    ):
        for size in SIZES:
            got = [p[kind][str(size)] for p in pairs]
            failed = sum(g["failed"] for g in got)
            on_tp = sum(any(m.startswith("throughput") for m in g["metrics"]) for g in got)
            on_cpu = sum(any(m.startswith("cpu") for m in g["metrics"]) for g in got)
            on_user = sum(any(m.startswith("user_cpu") for m in g["metrics"]) for g in got)
            speed = sum(bool(g.get("speed_changed")) for g in got)
            tp = [c for g in got if (c := _change(g, "throughput")) is not None]
            cpu = [c for g in got if (c := _change(g, "cpu")) is not None]
            user = [c for g in got if (c := _change(g, "user_cpu")) is not None]
            if kind == "same":
                met = failed <= MAX_FALSE_ALARMS
                goal = f"<= {MAX_FALSE_ALARMS}: {'met' if met else 'MISSED'}"
            elif size == 65536:
                met = failed >= MIN_CAUGHT
                goal = f">= {MIN_CAUGHT}: {'met' if met else 'MISSED'}"
            else:
                goal = "-"
            body.append([label, f"{size // 1024} KiB", len(got), failed, on_tp, on_cpu, on_user,
                         speed, _pct(tp), _pct(cpu), _pct(user), goal])  # fmt: skip
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    return f"rules: {format_rules(rules)}\n{table}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=20, help="pairs per check. Default: 20")
    parser.add_argument("--out", type=Path, help="write every pair's figures here (JSON)")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR",
        help="keep the runs' pytest-benchmark JSON files in DIR (NN-a/b/c.json), "
        "to compare them again later with other rules (netcopy compare --gate)",
    )  # fmt: skip
    parser.add_argument(
        "--gate", metavar="RULES", default=None,
        help=f"gate rules. Default: {format_rules(DEFAULT_RULES)!r}".replace("%", "%%"),
    )  # fmt: skip
    parser.add_argument(
        "--copies", type=int, default=1,
        help="extra copies of each message in the slower build. Default: 1 (the issue's test)",
    )  # fmt: skip
    parser.add_argument(
        "pytest_args", nargs="*", metavar="PYTEST_ARG",
        help="more pytest options for every run (after --), e.g. -- --netcopy-rounds=15",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        rules = DEFAULT_RULES if args.gate is None else tuple(parse_rules(args.gate))
    except ValueError as exc:
        parser.error(f"--gate: {exc}")
    pairs: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="netcopy-trust-") as tmp:
        work = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = args.keep
        for i in range(args.pairs):
            a, b, c = (work / f"{i:02d}-{n}.json" for n in "abc")
            run_sweep(a, slow=False, extra=args.pytest_args)
            run_sweep(b, slow=False, extra=args.pytest_args)
            run_sweep(c, slow=True, extra=args.pytest_args, copies=args.copies)
            same = compare(a, b, rules)
            slow = compare(b, c, rules)
            pairs.append(
                {
                    "pair": i,
                    "same": {str(k): v for k, v in same.items()},
                    "slow": {str(k): v for k, v in slow.items()},
                }
            )
            marks = " ".join(
                f"{s // 1024}K:{'FA' if same[s]['failed'] else '.'}/"
                f"{'caught' if slow[s]['failed'] else 'missed'}"
                for s in SIZES
            )
            print(f"pair {i + 1:2d}/{args.pairs}  {marks}  ({time.monotonic() - started:.0f} s)",
                  flush=True)  # fmt: skip
    extra = " ".join(args.pytest_args)
    print(f"slower build: {args.copies} extra cop{'y' if args.copies == 1 else 'ies'} per message; "
          f"pytest options: {extra or '(defaults)'}")  # fmt: skip
    text = summarize(pairs, rules, args.copies)
    print(text)
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "rules": format_rules(rules),
                    "copies": args.copies,
                    "pytest_args": args.pytest_args,
                    "sizes": SIZES,
                    "pairs": pairs,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
