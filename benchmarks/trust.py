"""How far can the gate be trusted? False alarms and power, measured on this machine.

    python benchmarks/trust.py [--pairs 20] [--regression extra_copy|sndbuf|both] [--noisy]
        [--out trust.json] [--keep DIR] [--gate RULES] [--copies K] [--speed-tolerance PCT|off]
        [--gated [--max-rounds N] [--max-seconds S]] [-- PYTEST_OPTIONS]
    python benchmarks/trust.py --aa-sweeps 7 [--noisy] [--keep DIR]
    python benchmarks/trust.py --rejudge DIR [--gate RULES] [--speed-tolerance PCT|off] [--out F]

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
control send's speeds over the batch, how many comparisons had their speed
figures judged by the speed guard by medians (before issue 12) and by rounds
(today's), the command, the date and the goals (met or missed).

``--gated`` runs the second run of each pair (B, C, S) as a gated pytest
session against the first one's JSON (``--netcopy-baseline``,
``--netcopy-gate=RULES``, ``--netcopy-gate-max-rounds``/``-max-seconds`` from
``--max-rounds``/``--max-seconds``), so an undecided benchmark measures its
sequential extra rounds as in CI; the verdicts are the session's own (its
last line), the extra rounds each benchmark took are reported, and the
offline judging of the session's JSON is checked against it.

``--rejudge DIR`` runs nothing: it judges the runs a batch kept with
``--keep DIR`` (``NN-a/b/c/s.json`` pairs, ``sweep-NN.json`` A/A sweeps) again
under ``--gate RULES`` / ``--speed-tolerance`` and prints the same tables.

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
import json
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the trust package beside this script (benchmarks/trust/)
    sys.path.insert(0, str(HERE))

from trust.noisy import NOISY_COMMAND, NoisyNeighbour, noisy_neighbour  # noqa: E402
from trust.report import aa_counts, aa_summary, pair_text, speeds_text, summarize  # noqa: E402
from trust.sweeps import (  # noqa: E402
    BUILDS,
    REGRESSIONS,
    SIZES,
    Build,
    GatedSession,
    kept_pairs,
    kept_sweeps,
    pair_paths,
    run_sweep,
)
from trust.verdicts import Speeds, add_speeds, judge_pair  # noqa: E402

from pytest_netcopy.gate.policy import (  # noqa: E402
    DEFAULT_RULES,
    DEFAULT_SPEED_TOLERANCE,
    parse_speed_tolerance,
)
from pytest_netcopy.gate.rules import format_rules, parse_rules  # noqa: E402
from pytest_netcopy.results.runs import RunFileError, load_run  # noqa: E402

#: the batch's own facts (command, date, rules...) in a --keep folder, for --rejudge
BATCH_FILE = "batch.json"


def _sigterm_as_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_pair(
    args: argparse.Namespace, paths: Mapping[str, Path], builds: Sequence[Build]
) -> dict[str, str | None]:
    """One pair's runs: A, B, each regressed build. With ``--gated`` B is a gated
    session against A, and each regressed build against B; their last lines by check."""

    def gated(base: Path) -> GatedSession | None:
        if not args.gated:
            return None
        return GatedSession(
            base, tuple(args.rules), args.max_rounds, args.max_seconds, args.speed_tolerance
        )

    extra = args.pytest_args
    run_sweep(paths["a"], build=None, extra=extra)
    lines = {"same": run_sweep(paths["b"], build=None, extra=extra, gated=gated(paths["a"]))}
    for build in builds:
        lines[build.name] = run_sweep(
            paths[build.letter], build=build, extra=extra, copies=args.copies,
            gated=gated(paths["b"]),
        )  # fmt: skip
    return lines


def run_pairs(
    args: argparse.Namespace, work: Path, noisy: NoisyNeighbour | None
) -> tuple[list[dict[str, Any]], Speeds]:
    """Every pair: run, judge, print; the control speeds."""
    builds = [BUILDS[n] for n in REGRESSIONS[args.regression]]
    pairs: list[dict[str, Any]] = []
    speeds: Speeds = {}
    started = time.monotonic()
    for i in range(args.pairs):
        if noisy is not None:
            noisy.check()
        paths = pair_paths(work, i)
        sessions = run_pair(args, paths, builds)
        pair = judge_pair(i, paths, builds, args.rules, args.tolerance, sessions)
        add_speeds(speeds, list(paths.values()))
        pairs.append(pair)
        print(f"pair {i + 1:2d}/{args.pairs}  ({time.monotonic() - started:.0f} s)", flush=True)
        print("\n".join(pair_text(pair, builds)), flush=True)
    return pairs, speeds


def rejudge_pairs(
    args: argparse.Namespace, folder: Path
) -> tuple[list[dict[str, Any]], Speeds, list[Build]]:
    """The kept pairs judged again under ``--gate`` (nothing runs), printed as they go."""
    indices = kept_pairs(folder)
    builds = [
        b
        for b in BUILDS.values()
        if any(pair_paths(folder, i)[b.letter].is_file() for i in indices)
    ]
    pairs: list[dict[str, Any]] = []
    speeds: Speeds = {}
    for i in indices:
        paths = pair_paths(folder, i)
        pair = judge_pair(i, paths, builds, args.rules, args.tolerance)
        add_speeds(speeds, list(paths.values()))
        pairs.append(pair)
        print(f"pair {i:02d}", flush=True)
        print("\n".join(pair_text(pair, builds)), flush=True)
    return pairs, speeds, builds


def judge_sweeps(paths: Sequence[Path], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    runs = [load_run(path) for path in paths]
    speeds: Speeds = {}
    add_speeds(speeds, paths)
    pairs = aa_counts(runs, args.rules, args.tolerance)
    return aa_summary(pairs) + "\n" + speeds_text(speeds), {"aa_pairs": pairs}


def run_aa(args: argparse.Namespace, work: Path) -> tuple[str, dict[str, Any]]:
    paths = []
    for k in range(args.aa_sweeps):
        path = work / f"sweep-{k:02d}.json"
        run_sweep(path, build=None, extra=args.pytest_args, full=True)
        paths.append(path)
        print(f"sweep {k + 1}/{args.aa_sweeps} done", flush=True)
    return judge_sweeps(paths, args)


def rejudge(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The runs kept in ``--rejudge DIR`` judged again (nothing runs): its pairs, its
    A/A sweeps, or both."""
    folder: Path = args.rejudge
    texts: list[str] = []
    data: dict[str, Any] = {}
    if kept_pairs(folder):
        pairs, speeds, builds = rejudge_pairs(args, folder)
        texts += [summarize(pairs, args.rules, builds, args.copies, args.tolerance)]
        texts += [speeds_text(speeds)]
        data.update(pairs=pairs, control_gbps={str(k): v for k, v in speeds.items()})
    sweeps = kept_sweeps(folder)
    if len(sweeps) >= 2:
        text, more = judge_sweeps(sweeps, args)
        texts.append(f"A/A over {len(sweeps)} kept sweeps (rules: {format_rules(args.rules)})")
        texts.append(text)
        data.update(more)
    return "\n".join(texts), data


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
        help="keep the runs' pytest-benchmark JSON files in DIR (NN-a/b/c/s.json, "
        f"sweep-NN.json) and the batch's command in DIR/{BATCH_FILE}",
    )
    add(
        "--rejudge",
        type=Path,
        metavar="DIR",
        help="run nothing: judge the runs kept in DIR (--keep) again, under --gate and "
        "--speed-tolerance, and print the same tables",
    )
    add(
        "--gate",
        metavar="RULES",
        default=None,
        help=f"gate rules. Default: {format_rules(DEFAULT_RULES)!r}".replace("%", "%%"),
    )
    add(
        "--speed-tolerance",
        metavar="PCT|off",
        default=None,
        help="the speed guard's tolerance (like --netcopy-gate-speed-tolerance). Default: "
        f"{DEFAULT_SPEED_TOLERANCE:.0%}".replace("%", "%%"),
    )
    add(
        "--gated",
        action="store_true",
        help="run B (and each regressed build) as a gated pytest session against A (B): "
        "undecided benchmarks take their extra rounds, the sessions give the verdicts",
    )
    add(
        "--max-rounds",
        type=int,
        default=None,
        metavar="N",
        help="with --gated: --netcopy-gate-max-rounds. Default: the plugin's",
    )
    add(
        "--max-seconds",
        type=float,
        default=None,
        metavar="S",
        help="with --gated: --netcopy-gate-max-seconds. Default: the plugin's",
    )
    add("--copies", type=int, default=1, help="extra copies per message (extra_copy). Default: 1")
    add(
        "pytest_args",
        nargs="*",
        metavar="PYTEST_ARG",
        help="more pytest options for every run (after --), e.g. -- --netcopy-rounds=15",
    )
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Each bad option or combination: a one-line usage error (exit 2)."""
    try:
        args.rules = DEFAULT_RULES if args.gate is None else tuple(parse_rules(args.gate))
    except ValueError as exc:
        parser.error(f"--gate: {exc}")
    try:
        text = args.speed_tolerance
        args.tolerance = DEFAULT_SPEED_TOLERANCE if text is None else parse_speed_tolerance(text)
    except ValueError as exc:
        parser.error(f"--speed-tolerance={args.speed_tolerance!r}: {exc}")
    if args.pairs < 1:
        parser.error(f"--pairs={args.pairs}: expected a whole number >= 1")
    if args.aa_sweeps == 1 or args.aa_sweeps < 0:
        parser.error(f"--aa-sweeps={args.aa_sweeps}: expected a whole number >= 2")
    if args.max_rounds is not None and args.max_rounds < 0:
        parser.error(f"--max-rounds={args.max_rounds}: expected a whole number >= 0")
    if args.max_seconds is not None and not args.max_seconds > 0:
        parser.error(f"--max-seconds={args.max_seconds}: expected a number of seconds > 0")
    if not args.gated and (args.max_rounds is not None or args.max_seconds is not None):
        parser.error("--max-rounds/--max-seconds: only with --gated (the gated sessions' budget)")
    if args.gated and args.aa_sweeps:
        parser.error("--gated: runs pairs; --aa-sweeps compares ungated sweeps")
    if args.rejudge is not None:
        _check_rejudge(parser, args)
    if args.noisy_command is not None:
        args.noisy = True
        try:
            args.noisy_command = shlex.split(args.noisy_command)
        except ValueError as exc:
            parser.error(f"--noisy-command={args.noisy_command!r}: {exc}")
        if not args.noisy_command:
            parser.error("--noisy-command='': expected a command")


def _check_rejudge(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    folder: Path = args.rejudge
    running = [name for name, on in [("--gated", args.gated), ("--aa-sweeps", args.aa_sweeps),
               ("--noisy", args.noisy or args.noisy_command), ("--keep", args.keep),
               ("pytest options", args.pytest_args)] if on]  # fmt: skip
    if running:
        parser.error(f"--rejudge runs nothing: leave out {running[0]}")
    if not folder.is_dir():
        parser.error(f"--rejudge={str(folder)!r}: not a folder")
    if not kept_pairs(folder) and len(kept_sweeps(folder)) < 2:
        parser.error(
            f"--rejudge={str(folder)!r}: no kept runs in it (expected NN-a.json with its "
            "NN-b.json, or two or more sweep-NN.json, as --keep DIR leaves them)"
        )


def noisy_command(args: argparse.Namespace) -> list[str] | None:
    if not args.noisy:
        return None
    return list(args.noisy_command or NOISY_COMMAND)


def batch_facts(args: argparse.Namespace, command: str, date: str) -> dict[str, Any]:
    """What a batch was: kept beside its runs (--keep) and in --out."""
    return {
        "command": command, "date": date, "noisy": shlex.join(noisy_command(args) or []) or "none",
        "rules": format_rules(args.rules), "speed_tolerance": args.tolerance,
        "regression": args.regression, "copies": args.copies, "gated": args.gated,
        "max_rounds": args.max_rounds, "max_seconds": args.max_seconds,
        "pytest_args": args.pytest_args, "sizes": SIZES,
    }  # fmt: skip


def live(args: argparse.Namespace, facts: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run the batch (pairs, or A/A sweeps) and judge it."""
    signal.signal(signal.SIGTERM, _sigterm_as_exit)  # so the noisy neighbour is stopped
    with tempfile.TemporaryDirectory(prefix="netcopy-trust-") as tmp:
        work = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = args.keep
            (work / BATCH_FILE).write_text(json.dumps(facts, indent=1) + "\n")
        with noisy_neighbour(noisy_command(args)) as noisy:
            if args.aa_sweeps:
                return run_aa(args, work)
            pairs, speeds = run_pairs(args, work, noisy)
    builds = [BUILDS[n] for n in REGRESSIONS[args.regression]]
    text = summarize(pairs, args.rules, builds, args.copies, args.tolerance)
    data = {"pairs": pairs, "control_gbps": {str(k): v for k, v in speeds.items()}}
    return text + "\n" + speeds_text(speeds), data


def made_by(folder: Path) -> str:
    """The kept batch's own command and date, as --keep recorded them."""
    try:
        facts = json.loads((folder / BATCH_FILE).read_text())
        return f"runs made by: {facts['command']} ({facts['date']}, noisy: {facts['noisy']})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"runs made by: unknown (no readable {BATCH_FILE})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(
        ["python", "benchmarks/trust.py", *(sys.argv[1:] if argv is None else argv)]
    )
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = batch_facts(args, command, date)
    if args.rejudge is not None:
        try:
            text, data = rejudge(args)
        except RunFileError as exc:
            raise SystemExit(f"trust: --rejudge: {exc}") from None
        header = f"command: {command}\ndate: {date}\n{made_by(args.rejudge)}"
    else:
        text, data = live(args, facts)
        header = f"command: {command}\ndate: {date}\nnoisy neighbour: {facts['noisy']}"
    print(header + "\n" + text)
    if args.out:
        args.out.write_text(json.dumps({**facts, **data}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
