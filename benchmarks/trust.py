"""How far can the gate be trusted? False alarms and power, measured on this machine.

    python benchmarks/trust.py [--pairs 20] [--regression extra_copy|sndbuf|both] [--noisy]
        [--out trust.json] [--keep DIR] [--gate RULES] [--copies K] [-- PYTEST_OPTIONS]
    python benchmarks/trust.py --aa-sweeps 7 [--noisy] [--keep DIR]

For each of ``--pairs`` indices it runs the real sweep in fresh pytest
processes, back to back (``pytest benchmarks/test_sweep.py
--netcopy-sizes=4096,65536 --netcopy-threads=1 --netcopy-modes=two_copy``):

1. the normal build                  -> A
2. the normal build again            -> B
3. each regressed build (``--regression``), under the same mode name:
   ``extra_copy`` (``benchmarks/trust/extra_copy.py``: one more full copy of
   each message, K with ``--copies K``) -> C; ``sndbuf``
   (``benchmarks/trust/small_sndbuf.py``: the same code with the sender
   socket's SO_SNDBUF capped, a kernel-side regression no instruction count
   sees) -> S

and compares with the gate's own logic (``gate.compare_runs``, default rules
unless ``--gate``): A vs B failing is a **false alarm**, B vs C (B vs S)
failing is the regression **caught**. Per pair and size it prints the
verdicts as the gate gives them (regression / no regression with the smallest
change it could have seen / undecided, and why), then one table with the
control send's speeds over the batch, the command, the date and the goals
(met or missed).

``--noisy`` runs a noisy neighbour for the whole batch (``stress-ng --cpu 2
--cpu-load 30``, Debian package ``stress-ng``), started and stopped by the
script itself, also on Ctrl-C or an error.

``--aa-sweeps K`` runs K back-to-back default sweeps (``pytest benchmarks/``)
instead and compares every ordered pair (K*(K-1)) with the gate: falsely
failing benchmarks per pair and undecided benchmark-metrics.

Not a test (pytest does not collect ``trust.py``); a pair takes ~10-20 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from tabulate import tabulate

from pytest_netcopy.gate.compare import benchmark_id, compare_runs
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.policy import DEFAULT_RULES
from pytest_netcopy.gate.row import REGRESSION, Row
from pytest_netcopy.gate.rules import Rule, format_rules, parse_rules
from pytest_netcopy.results.runs import Run, load_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SWEEP = HERE / "test_sweep.py"
BUILD_DIR = HERE / "trust"
MODE = "two_copy"
SIZES = (4096, 65536)
#: the issue's goals, per 20 pairs: at most 1 false alarm, at least 19 caught
GOAL_PAIRS, MAX_FALSE_ALARMS, MIN_CAUGHT = 20, 1, 19
#: the whole-sweep A/A goal: falsely failing benchmarks per ordered pair of sweeps
MAX_AA_FAILING_PER_PAIR = 0.1
#: the power the gate's smallest detectable change is quoted at
POWER = 0.8
NOISY_COMMAND = ("stress-ng", "--cpu", "2", "--cpu-load", "30")
NOISY_PACKAGE = "stress-ng"
#: seconds to wait for the noisy neighbour to stop, after SIGTERM and again after SIGKILL
STOP_TIMEOUT = 5.0
UNDECIDED_VERDICTS = ("undecided", "not comparable")


@dataclass(frozen=True)
class Build:
    """A regressed build: its plugin module in benchmarks/trust/, its letter in --keep."""

    name: str
    module: str
    letter: str
    label: str


BUILDS = {
    "extra_copy": Build("extra_copy", "extra_copy", "c", "one more copy per message"),
    "sndbuf": Build("sndbuf", "small_sndbuf", "s", "send buffer capped (SO_SNDBUF)"),
}
REGRESSIONS = {
    "extra_copy": ("extra_copy",),
    "sndbuf": ("sndbuf",),
    "both": ("extra_copy", "sndbuf"),
}


# ---------------------------------------------------------------------------
# the noisy neighbour


class NoisyNeighbour:
    """A background load in its own process group; :meth:`stop` ends the whole group."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if shutil.which(self.command[0]) is None:
            hint = f" (Debian package {NOISY_PACKAGE}: apt-get install {NOISY_PACKAGE})"
            raise SystemExit(
                f"trust: --noisy: {self.command[0]!r} not found"
                + (hint if self.command[0] == NOISY_PACKAGE else "")
            )
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() kills its workers too
        )

    def check(self) -> None:
        """Raise SystemExit when the load ended on its own (the batch would not be noisy)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(
                f"trust: the noisy neighbour ({shlex.join(self.command)}) stopped early "
                f"(exit {self.proc.returncode})"
            )

    def stop(self) -> None:
        """SIGTERM to the group, wait; SIGKILL to what is left, wait. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            _killpg(proc.pid, sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        _killpg(proc.pid, signal.SIGKILL)  # workers that outlived their parent


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextmanager
def noisy_neighbour(command: Sequence[str] | None) -> Iterator[NoisyNeighbour | None]:
    """Run ``command`` in the background for the block (None: nothing); always stopped."""
    if command is None:
        yield None
        return
    noisy = NoisyNeighbour(command)
    noisy.start()
    try:
        yield noisy
    finally:
        noisy.stop()


def _sigterm_as_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------
# the runs


def run_sweep(
    out: Path, *, build: Build | None, extra: Sequence[str], copies: int = 1, full: bool = False
) -> None:
    """One pytest process of the sweep (``full``: the default grid); its JSON goes to ``out``."""
    if full:
        cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
               "-p", "no:xdist", f"--benchmark-json={out}", *extra]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "pytest", str(SWEEP), "-q", "-p", "no:cacheprovider",
            "--netcopy-sizes=" + ",".join(str(s) for s in SIZES), "--netcopy-threads=1",
            f"--netcopy-modes={MODE}", f"--benchmark-json={out}", *extra,
        ]  # fmt: skip
    # the gate's user-instruction count runs only with a gate in the session; these runs are
    # compared offline, so ask for it (baselines for a gate should be saved the same way)
    cmd.append("--netcopy-instructions=on")
    env = dict(os.environ)
    if build is not None:
        cmd += ["-p", build.module]
        env["NETCOPY_EXTRA_COPIES"] = str(copies)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(BUILD_DIR), env.get("PYTHONPATH", "")) if p
        )
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise SystemExit(f"trust: the sweep failed (exit {proc.returncode}):\n{tail}")


# ---------------------------------------------------------------------------
# what the gate said


def verdict_of(rows: Sequence[Row]) -> tuple[str, str]:
    """One benchmark's verdict over its rows, as the gate gives them, and the detail:
    ``regression`` (on which metrics); else ``undecided`` (which metrics, why); else
    ``no regression`` (the smallest change each metric could have seen)."""
    bad = [r for r in rows if r.verdict == REGRESSION]
    if bad:
        return "regression", ", ".join(f"{r.metric} {_pct(r.change)}" for r in bad)
    open_ = [r for r in rows if r.verdict in UNDECIDED_VERDICTS]
    if open_:
        return "undecided", "; ".join(
            f"{r.metric}: {getattr(r, 'why', '') or r.reason}" for r in open_
        )
    seen = [f"{r.metric} {_mdc_text(r)}" for r in rows]
    return "no regression", ", ".join(seen)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _mdc_text(row: Row) -> str:
    mdc = getattr(row, "detectable", None)
    if mdc is None:
        return "(no detectable change shown)"
    return f"<{mdc:.1%}" if row.rule.percent else f"<{mdc:g}"


def per_size(outcome: GateOutcome, size: int) -> dict[str, Any]:
    """What the gate said about the benchmark of one size."""
    bench = benchmark_id((MODE, size, 1))
    rows = [r for r in outcome.rows if r.benchmark == bench]
    verdict, detail = verdict_of(rows)
    return {
        "failed": verdict == "regression",
        "verdict": verdict,
        "detail": detail,
        "metrics": [r.metric for r in rows if r.verdict == REGRESSION],
        "change": {r.metric: r.change for r in rows},
        "p": {r.metric: r.p_value for r in rows},
        "verdicts": {r.metric: r.verdict for r in rows},
        "detectable": {r.metric: getattr(r, "detectable", None) for r in rows},
        "bad_change": {r.metric: r.rule.direction * r.change for r in rows if r.change is not None},
        "mdc_shown": verdict != "no regression"
        or all(getattr(r, "detectable", None) is not None for r in rows if r.p_value is not None),
        "speed_changed": bench in outcome.speed_changed,
    }


def control_speeds(run: Run) -> dict[int, float]:
    """The control send's median Gbps per size of a run."""
    out = {}
    for result in run.results:
        control = result.extra.get("control")
        gbps = control.get("throughput_gbps") if isinstance(control, dict) else None
        if isinstance(gbps, int | float):
            out[result.size] = float(gbps)
    return out


def compare(base: Path, new: Path, rules: Sequence[Rule]) -> dict[str, dict[str, Any]]:
    outcome = compare_runs(load_run(base), load_run(new), rules)
    return {str(size): per_size(outcome, size) for size in SIZES}


# ---------------------------------------------------------------------------
# a batch of pairs


Speeds = dict[int, list[float]]


def run_pairs(
    args: argparse.Namespace, rules: Sequence[Rule], work: Path, noisy: NoisyNeighbour | None
) -> tuple[list[dict[str, Any]], Speeds]:
    """Every pair: A, B, each regressed build; what the gate said; the control speeds."""
    builds = [BUILDS[n] for n in REGRESSIONS[args.regression]]
    pairs: list[dict[str, Any]] = []
    speeds: dict[int, list[float]] = {s: [] for s in SIZES}
    started = time.monotonic()
    for i in range(args.pairs):
        if noisy is not None:
            noisy.check()
        a, b = (work / f"{i:02d}-{n}.json" for n in "ab")
        run_sweep(a, build=None, extra=args.pytest_args)
        run_sweep(b, build=None, extra=args.pytest_args)
        pair: dict[str, Any] = {"pair": i, "same": compare(a, b, rules)}
        paths = [a, b]
        for build in builds:
            x = work / f"{i:02d}-{build.letter}.json"
            run_sweep(x, build=build, extra=args.pytest_args, copies=args.copies)
            pair[build.name] = compare(b, x, rules)
            paths.append(x)
        for path in paths:
            for size, gbps in control_speeds(load_run(path)).items():
                speeds.setdefault(size, []).append(gbps)
        pairs.append(pair)
        print(f"pair {i + 1:2d}/{args.pairs}  ({time.monotonic() - started:.0f} s)", flush=True)
        for size in SIZES:
            print(
                f"  {size // 1024:2d} KiB  "
                + "  |  ".join(
                    f"{label}: {pair[key][str(size)]['verdict']} ({pair[key][str(size)]['detail']})"
                    for key, label in [("same", "A/B")] + [(b.name, b.name) for b in builds]
                ),
                flush=True,
            )
    return pairs, speeds


def _counts(got: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(regression, undecided, no regression)."""
    return (
        sum(g["verdict"] == "regression" for g in got),
        sum(g["verdict"] == "undecided" for g in got),
        sum(g["verdict"] == "no regression" for g in got),
    )


def predicted_catch(got: list[dict[str, Any]]) -> tuple[int, int] | None:
    """What the gate's smallest detectable changes predict for a regression: the pairs
    whose detectable change of some metric is below that metric's median change the bad
    way over the batch, and POWER of them (rounded down). None: no detectable changes."""
    metrics = {m for g in got for m in g["bad_change"]}
    effect = {m: median(g["bad_change"][m] for g in got if m in g["bad_change"]) for m in metrics}
    if not any(v is not None for g in got for v in g["detectable"].values()):
        return None
    able = sum(
        any((d := g["detectable"].get(m)) is not None and effect[m] >= d for m in effect)
        for g in got
    )
    return able, int(POWER * able)


def goal(kind: str, got: list[dict[str, Any]]) -> str:
    n = len(got)
    failed = sum(g["failed"] for g in got)
    if kind == "same":
        met = failed * GOAL_PAIRS <= MAX_FALSE_ALARMS * n
        return f"<= {MAX_FALSE_ALARMS} per {GOAL_PAIRS}: {'met' if met else 'MISSED'}"
    if kind == "extra_copy":
        met = failed * GOAL_PAIRS >= MIN_CAUGHT * n
        return f">= {MIN_CAUGHT} per {GOAL_PAIRS}: {'met' if met else 'MISSED'}"
    predicted = predicted_catch(got)
    if predicted is None:
        return "MDC not given by this gate: -"
    able, expect = predicted
    met = failed >= expect
    return f"MDC predicts >= {expect} ({able} pairs able): {'met' if met else 'MISSED'}"


def summarize(
    pairs: list[dict[str, Any]], rules: Sequence[Rule], builds: Sequence[Build], copies: int = 1
) -> str:
    headers = [
        "check",
        "size",
        "pairs",
        "regression",
        "undecided",
        "no regression",
        "no regression without MDC",
        "not judged (speed)",
        "median change",
        "goal",
    ]
    checks = [("same", "false alarms (same code)")]
    for b in builds:
        label = b.label if b.name != "extra_copy" or copies == 1 else f"{copies} more copies"
        checks.append((b.name, label))
    body = []
    for kind, label in checks:
        for size in SIZES:
            got = [p[kind][str(size)] for p in pairs]
            reg, und, ok = _counts(got)
            no_mdc = sum(not g["mdc_shown"] for g in got)
            speed = sum(bool(g.get("speed_changed")) for g in got)
            changes = ", ".join(
                f"{m} {_pct(median(v))}"
                for m in sorted({m for g in got for m in g["change"]})
                if (v := [g["change"][m] for g in got if g["change"].get(m) is not None])
            )
            body.append(
                [
                    label,
                    f"{size // 1024} KiB",
                    len(got),
                    reg,
                    und,
                    ok,
                    no_mdc,
                    speed,
                    changes,
                    goal(kind, got),
                ]
            )
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    return f"rules: {format_rules(rules)}\n{table}"


def speeds_text(speeds: dict[int, list[float]]) -> str:
    return "control send (min/median/max Gbps): " + "; ".join(
        f"{size // 1024} KiB {min(v):.1f}/{median(v):.1f}/{max(v):.1f}"
        for size, v in sorted(speeds.items())
        if v
    )


# ---------------------------------------------------------------------------
# whole-sweep A/A


def aa_counts(runs: Sequence[Run], rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Every ordered pair of runs of the same code: falsely failing benchmarks and
    undecided benchmark-metrics (undecided or not comparable rows)."""
    out = []
    for (i, base), (j, cur) in itertools.permutations(enumerate(runs), 2):
        outcome = compare_runs(base, cur, rules)
        failing = sorted({r.benchmark for r in outcome.rows if r.verdict == REGRESSION})
        undecided = [r for r in outcome.rows if r.verdict in UNDECIDED_VERDICTS]
        out.append(
            {
                "baseline": i,
                "current": j,
                "failing": failing,
                "undecided": len(undecided),
                "rows": len(outcome.rows),
            }
        )
    return out


def aa_summary(pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return "no pairs"
    per_pair = sum(len(p["failing"]) for p in pairs) / len(pairs)
    clean = sum(not p["failing"] for p in pairs)
    undecided = sum(p["undecided"] for p in pairs) / len(pairs)
    rows = pairs[0]["rows"]
    met = per_pair <= MAX_AA_FAILING_PER_PAIR
    lines = [
        f"{b['baseline']} -> {b['current']}: failing {len(b['failing'])} "
        f"({', '.join(b['failing']) or '-'}), undecided {b['undecided']} of {b['rows']}"
        for b in pairs
    ]
    lines.append(
        f"{len(pairs)} ordered pairs: {per_pair:.2f} falsely failing benchmarks per pair "
        f"(goal <= {MAX_AA_FAILING_PER_PAIR}: {'met' if met else 'MISSED'}), {clean} pairs "
        f"clean; {undecided:.1f} of {rows} benchmark-metrics undecided per pair"
    )
    return "\n".join(lines)


def run_aa(
    args: argparse.Namespace, rules: Sequence[Rule], work: Path
) -> tuple[str, dict[str, Any]]:
    runs, speeds = [], {}
    for k in range(args.aa_sweeps):
        path = work / f"sweep-{k:02d}.json"
        run_sweep(path, build=None, extra=args.pytest_args, full=True)
        runs.append(load_run(path))
        print(f"sweep {k + 1}/{args.aa_sweeps} done", flush=True)
    for run in runs:
        for size, gbps in control_speeds(run).items():
            speeds.setdefault(size, []).append(gbps)
    pairs = aa_counts(runs, rules)
    return aa_summary(pairs) + "\n" + speeds_text(speeds), {"aa_pairs": pairs}


# ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--pairs", type=int, default=20, help="pairs per check. Default: 20")
    add(
        "--regression",
        choices=sorted(REGRESSIONS),
        default="extra_copy",
        help="the regressed build(s) to catch. Default: extra_copy",
    )
    add(
        "--noisy",
        action="store_true",
        help=f"run a noisy neighbour ({shlex.join(NOISY_COMMAND)}) for the whole batch",
    )
    add(
        "--noisy-command",
        metavar="CMD",
        default=None,
        help="the noisy neighbour's command instead (implies --noisy)",
    )
    add(
        "--aa-sweeps",
        type=int,
        default=0,
        metavar="K",
        help="run K back-to-back default sweeps and compare every ordered pair instead",
    )
    add("--out", type=Path, help="write every pair's figures here (JSON)")
    add(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the runs' pytest-benchmark JSON files in DIR (NN-a/b/c/s.json, sweep-NN.json)",
    )
    add(
        "--gate",
        metavar="RULES",
        default=None,
        help=f"gate rules. Default: {format_rules(DEFAULT_RULES)!r}".replace("%", "%%"),
    )
    add("--copies", type=int, default=1, help="extra copies per message (extra_copy). Default: 1")
    add(
        "pytest_args",
        nargs="*",
        metavar="PYTEST_ARG",
        help="more pytest options for every run (after --), e.g. -- --netcopy-rounds=15",
    )
    args = parser.parse_args(argv)
    try:
        args.rules = DEFAULT_RULES if args.gate is None else tuple(parse_rules(args.gate))
    except ValueError as exc:
        parser.error(f"--gate: {exc}")
    if args.pairs < 1:
        parser.error(f"--pairs={args.pairs}: expected a whole number >= 1")
    if args.aa_sweeps == 1 or args.aa_sweeps < 0:
        parser.error(f"--aa-sweeps={args.aa_sweeps}: expected a whole number >= 2")
    if args.noisy_command is not None:
        args.noisy = True
        try:
            args.noisy_command = shlex.split(args.noisy_command)
        except ValueError as exc:
            parser.error(f"--noisy-command={args.noisy_command!r}: {exc}")
        if not args.noisy_command:
            parser.error("--noisy-command='': expected a command")
    return args


def noisy_command(args: argparse.Namespace) -> list[str] | None:
    if not args.noisy:
        return None
    return list(args.noisy_command or NOISY_COMMAND)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rules = args.rules
    command = shlex.join(
        ["python", "benchmarks/trust.py", *(sys.argv[1:] if argv is None else argv)]
    )
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    signal.signal(signal.SIGTERM, _sigterm_as_exit)  # so the noisy neighbour is stopped
    with tempfile.TemporaryDirectory(prefix="netcopy-trust-") as tmp:
        work = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = args.keep
        with noisy_neighbour(noisy_command(args)) as noisy:
            if args.aa_sweeps:
                text, data = run_aa(args, rules, work)
            else:
                pairs, speeds = run_pairs(args, rules, work, noisy)
                builds = [BUILDS[n] for n in REGRESSIONS[args.regression]]
                text = summarize(pairs, rules, builds, args.copies) + "\n" + speeds_text(speeds)
                data = {"pairs": pairs, "control_gbps": {str(k): v for k, v in speeds.items()}}
    noisy_text = shlex.join(noisy_command(args) or []) or "none"
    header = f"command: {command}\ndate: {date}\nnoisy neighbour: {noisy_text}"
    print(header + "\n" + text)
    if args.out:
        meta = {"command": command, "date": date, "noisy": noisy_text,
                "rules": format_rules(rules), "regression": args.regression,
                "copies": args.copies, "pytest_args": args.pytest_args, "sizes": SIZES}  # fmt: skip
        args.out.write_text(json.dumps({**meta, **data}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
