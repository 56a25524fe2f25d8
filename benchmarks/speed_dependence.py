"""How the ratios to the control depend on the machine's speed, and what the speed guard costs.

    python benchmarks/speed_dependence.py [--trust DIR ...] [SWEEP.json ...]
        [--tolerance 5%] [--min-rounds 5]

Reads kept runs: ``--trust DIR`` a folder of ``benchmarks/trust.py --keep`` runs
(``NN-a.json``, ``NN-b.json`` the normal build, ``NN-c.json`` a regressed one)
and any full sweeps of the same code given as files. Prints:

1. per mode, size and threads: how ``throughput_vs_control`` and
   ``cpu_vs_control`` move with the control's speed (the slope of log ratio on
   log control speed, per round: within runs, each run's rounds about its own
   means, and across runs, run medians against run medians), with the range of
   control speeds seen. (Within a run the slope of ``throughput_vs_control``
   leans negative by construction: a control round's own noise divides into
   the ratio.);
2. before/after: over every ordered pair of runs of the same code (A/A), and
   the regressed build against the normal one (trust folders), how many
   benchmarks had their speed figures judged and how many of those failed the
   gate's default rules, with today's guard (median control speeds within the
   tolerance), with the guard by rounds (gate/speed.py: only the rounds whose
   controls ran at a common speed, at least ``--min-rounds`` of each run), with
   either (every round where the medians agree, else the rounds at a common
   speed), and with no guard at all.

Uses the gate's own compare_runs; runs no benchmark itself.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import fmean, median
from typing import Any

from tabulate import tabulate

from pytest_netcopy.gate.compare import benchmark_id, compare_runs
from pytest_netcopy.gate.metrics import control_speed_change
from pytest_netcopy.gate.policy import (
    DEFAULT_RULES,
    DEFAULT_SPEED_TOLERANCE,
    MIN_MATCHED_ROUNDS,
    SPEED_INDEPENDENT,
    parse_speed_tolerance,
)
from pytest_netcopy.gate.row import REGRESSION
from pytest_netcopy.gate.speed import (
    Matched,
    Unmatched,
    band_rounds,
    comparable_rounds,
    round_control_speeds,
)
from pytest_netcopy.results.runs import Result, Run, load_run

Key = tuple[str, int, int]
RATIOS = ("throughput_vs_control", "cpu_vs_control")


def load_sets(
    trust: Sequence[Path], sweeps: Sequence[Path]
) -> tuple[list[Run], list[tuple[Run, Run]]]:
    """The runs of the normal build, and (normal, regressed) pairs from the trust folders."""
    same: list[Run] = []
    slow: list[tuple[Run, Run]] = []
    for folder in trust:
        for b_path in sorted(folder.glob("*-b.json")):
            a_path = b_path.with_name(b_path.name.replace("-b.json", "-a.json"))
            c_path = b_path.with_name(b_path.name.replace("-b.json", "-c.json"))
            b = load_run(b_path)
            if a_path.is_file():
                same.append(load_run(a_path))
            same.append(b)
            if c_path.is_file():
                slow.append((b, load_run(c_path)))
    same += [load_run(p) for p in sweeps]
    return same, slow


def _ols(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    if len(xs) < 3:
        return None
    mx, my = fmean(xs), fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _points(result: Result, metric: str) -> list[tuple[float, float]]:
    speeds = round_control_speeds(result)
    rounds = result.extra.get("rounds") or {}
    values = rounds.get(metric) if isinstance(rounds, dict) else None
    if speeds is None or not isinstance(values, list):
        return []
    return [
        (math.log(s), math.log(v))
        for s, v in zip(speeds, values, strict=False)
        if isinstance(v, int | float) and v > 0 and math.isfinite(v)
    ]


def slopes(runs: Iterable[Run]) -> list[list[Any]]:
    """One row per benchmark and ratio: within-run and across-run elasticities."""
    per: dict[tuple[Key, str], list[list[tuple[float, float]]]] = defaultdict(list)
    speeds: dict[Key, list[float]] = defaultdict(list)
    for run in runs:
        for result in run.results:
            got = round_control_speeds(result)
            speeds[result.key] += list(got or ())
            for metric in RATIOS:
                pts = _points(result, metric)
                if pts:
                    per[(result.key, metric)].append(pts)
    body = []
    for (key, metric), runs_pts in sorted(per.items()):
        dx, dy = [], []
        for pts in runs_pts:  # within: each run about its own means
            mx, my = fmean(p[0] for p in pts), fmean(p[1] for p in pts)
            dx += [p[0] - mx for p in pts]
            dy += [p[1] - my for p in pts]
        within = _ols(dx, dy)
        mids = [(median(p[0] for p in pts), median(p[1] for p in pts)) for pts in runs_pts]
        across = _ols([m[0] for m in mids], [m[1] for m in mids])
        s = speeds[key]
        body.append([
            f"{key[0]}-{key[1]}B-{key[2]}t", metric, len(runs_pts), len(dx),
            f"{min(s):.1f}-{max(s):.1f}" if s else "-",
            "-" if within is None else f"{within:+.2f}",
            "-" if across is None else f"{across:+.2f}",
        ])  # fmt: skip
    return body


def restricted(result: Result, rounds: Sequence[int]) -> Result:
    """The result with only the given measured rounds in its per-round lists."""
    section = result.extra.get("rounds") or {}
    n = len(section.get("throughput_gbps") or ())
    kept = {
        k: [v[i] for i in rounds] if isinstance(v, list) and len(v) == n else v
        for k, v in section.items()
    }
    return replace(result, extra={**result.extra, "rounds": kept})


@dataclass
class Tally:
    """Over pairs of runs: speed figures judged, and benchmarks failed on them / at all."""

    pairs: int = 0
    benchmarks: int = 0
    judged: int = 0
    failed_speed: int = 0
    failed_any: int = 0
    per_pair_failed: list[int] = field(default_factory=list)

    def add(self, judged: dict[str, Any]) -> None:
        self.pairs += 1
        failed = 0
        for speed_judged, rows in judged.values():
            self.benchmarks += 1
            speed = [r for r in rows if r.rule.figure not in SPEED_INDEPENDENT]
            self.judged += speed_judged
            self.failed_speed += any(r.verdict == REGRESSION for r in speed)
            hit = any(r.verdict == REGRESSION for r in rows)
            self.failed_any += hit
            failed += hit
        self.per_pair_failed.append(failed)


def _single(run: Run, result: Result) -> Run:
    return replace(run, results=[result])


def decide(old: Result, new: Result, how: str, tolerance: float, min_rounds: int) -> Any:
    """What a guard says for one benchmark: ``"all"`` rounds, ``"skip"`` the speed
    figures, or a Matched (those rounds only). ``today``: the medians alone;
    ``rounds``: the band alone; ``either``: the gate's comparable_rounds; ``none``."""
    if how == "none":
        return "all"
    if how == "today":
        speed = control_speed_change(old, new)
        return "all" if speed is None or abs(speed.change) <= tolerance + 1e-9 else "skip"
    pick = band_rounds if how == "rounds" else comparable_rounds
    match = pick(old, new, tolerance, min_rounds)
    if match is None:
        return decide(old, new, "today", tolerance, min_rounds)
    return "skip" if isinstance(match, Unmatched) else match


def judge(base: Run, cur: Run, how: str, tolerance: float, min_rounds: int) -> dict[str, Any]:
    """Per benchmark: (speed figures judged?, its rows), each guard applied here (the
    comparison itself runs with the gate's guard off, on the rounds the guard keeps)."""
    out: dict[str, Any] = {}
    old_by = base.by_key()
    for key, new in cur.by_key().items():
        old = old_by.get(key)
        if old is None:
            continue
        verdict = decide(old, new, how, tolerance, min_rounds)
        old_r, new_r = old, new
        if isinstance(verdict, Matched):
            old_r, new_r = restricted(old, verdict.baseline), restricted(new, verdict.current)
        rows = compare_runs(
            _single(base, old_r), _single(cur, new_r), DEFAULT_RULES, speed_tolerance=None
        ).rows
        if verdict == "skip":
            rows = [r for r in rows if r.rule.figure in SPEED_INDEPENDENT]
        out[benchmark_id(key)] = (verdict != "skip", rows)
    return out


def before_after(
    same: Sequence[Run], slow: Sequence[tuple[Run, Run]], tolerance: float, min_rounds: int
) -> list[list[Any]]:
    sets = [("A/A: same code, every ordered pair", list(itertools.permutations(same, 2)))]
    if slow:
        sets.append(("regressed build vs normal (trust B vs C)", list(slow)))
    body = []
    for label, pairs in sets:
        for how in ("today", "rounds", "either", "none"):
            t = Tally()
            for base, cur in pairs:
                t.add(judge(base, cur, how, tolerance, min_rounds))
            body.append([
                label, how, t.pairs, t.benchmarks, t.judged, t.failed_speed, t.failed_any,
                f"{fmean(t.per_pair_failed):.2f}" if t.per_pair_failed else "-",
            ])  # fmt: skip
    return body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("sweeps", nargs="*", type=Path, help="full sweeps of the same code")
    parser.add_argument("--trust", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of trust.py --keep runs (repeatable)")  # fmt: skip
    parser.add_argument("--tolerance", default=f"{DEFAULT_SPEED_TOLERANCE:.0%}",
                        help="the speed tolerance (default: the gate's)")  # fmt: skip
    parser.add_argument("--min-rounds", type=int, default=MIN_MATCHED_ROUNDS)
    args = parser.parse_args(argv)
    try:
        tolerance = parse_speed_tolerance(args.tolerance)
    except ValueError as exc:
        parser.error(f"--tolerance={args.tolerance}: {exc}")
    if tolerance is None:
        parser.error("--tolerance=off: the guards need a tolerance to compare")
    for folder in args.trust:
        if not folder.is_dir():
            parser.error(f"--trust {folder}: not a folder of trust.py --keep runs")
    same, slow = load_sets(args.trust, args.sweeps)
    if len(same) < 2:
        parser.error("give at least two runs of the same code (--trust DIR or sweep files)")
    print(f"{len(same)} runs of the same code, {len(slow)} regressed-build pairs")
    print("\nslope of log(ratio) on log(control Gbps), per round (+1.00: the ratio moves as "
          "much as the control)")  # fmt: skip
    print(tabulate(slopes(same), headers=["benchmark", "ratio", "runs", "rounds",
                                          "control Gbps", "within runs", "across runs"],
                   tablefmt="github", disable_numparse=True))  # fmt: skip
    print(f"\nguards at {tolerance:.0%}, rounds guard with >= {args.min_rounds} rounds per side; "
          f"default rules")  # fmt: skip
    print(tabulate(before_after(same, slow, tolerance, args.min_rounds),
                   headers=["pairs of runs", "guard", "pairs", "benchmarks", "speed figures judged",
                            "failed on them", "failed (any metric)", "failed per pair"],
                   tablefmt="github", disable_numparse=True))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
