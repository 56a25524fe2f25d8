"""``netcopy compare BASE NEW``: the CI gate outside pytest.

Same comparison, same table and same last line as ``--netcopy-gate``.
Exit status: 0 no regression (undecided rows named on the last line), 1
regression (or, with ``--two-sided``, an improvement beyond the threshold), 2
unusable input (a file that cannot be read, a bad rule, an unknown metric or
mode, an unknown table format, machines that differ under
``--strict-machine``), 3 nothing judged (no benchmark in both runs, or every
row undecided or not comparable; 0 with ``--allow-empty``), 4 undecided rows
under ``--strict`` and no regression (a regression is 1 all the same).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_netcopy.cli import error
from pytest_netcopy.gate.catalog import check_rules
from pytest_netcopy.gate.compare import MachineMismatch, compare_runs
from pytest_netcopy.gate.metrics import control_metrics, has_control
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.policy import (
    ABSOLUTE_RULES_EXAMPLE,
    DEFAULT_RULES,
    DEFAULT_SPEED_TOLERANCE,
    parse_speed_tolerance,
)
from pytest_netcopy.gate.rules import format_rules, parse_rules
from pytest_netcopy.report.formats import check_table_format
from pytest_netcopy.results.baseline import BaselineError, local_machine_id, resolve_baseline
from pytest_netcopy.results.runs import load_run

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand to the ``netcopy`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "compare",
        help="compare a run with a baseline and fail (exit 1) on a significant regression",
        description="Compare NEW with BASE benchmark by benchmark (matched by mode, size and "
        "threads) and metric by metric. A change is a regression when it goes the rule's bad way "
        "by more than the rule's threshold AND a Mann-Whitney U test on the per-round samples "
        "says it is significant; no regression when the interval on the change stays within "
        "the threshold; else undecided. Exit status 0: no regression; 1: regression; 2: bad "
        "input; 3: nothing judged; 4: undecided under --strict.",
    )
    parser.add_argument(
        "base",
        metavar="BASE",
        help="the baseline: a pytest-benchmark JSON file, or a saved run in --storage selected "
        "as --benchmark-compare does ('0001', '*NAME', 'MACHINE/0001')",
    )
    parser.add_argument("new", metavar="NEW", help="the run to check, given like BASE")
    _add_gate_options(parser)
    parser.add_argument(
        "--format",
        metavar="FMT",
        default="simple",
        help="table format, any of tabulate's (simple, github, grid, pipe, ...). "
        "Default: %(default)r",
    )
    parser.add_argument(
        "--storage",
        metavar="DIR",
        type=Path,
        default=Path(".benchmarks"),
        help="pytest-benchmark storage for saved-run ids (BASE or NEW that is not a file). "
        "Default: '.benchmarks'",
    )
    parser.set_defaults(func=run)


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    """The options that say what the gate judges and how (the same as the pytest gate's)."""
    parser.add_argument(
        "--gate",
        metavar="RULES",
        default=None,
        help="rules METRIC:-N%% (a drop of more than N%% is bad), METRIC:+N%% (a rise), or "
        "METRIC:+N / METRIC:-N (in the metric's units), separated by spaces or commas. "
        "Default: " + repr(format_rules(DEFAULT_RULES)).replace("%", "%%"),
    )
    parser.add_argument(
        "--two-sided",
        action="store_true",
        help="also fail on an improvement beyond the threshold, so a stale baseline gets "
        "refreshed. Default: off",
    )
    parser.add_argument(
        "--strict-machine",
        action="store_true",
        help="refuse to compare (exit 2) when the kernel, CPU model or CPU count differ. "
        "Default: off (the differences are printed above the table)",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when nothing was judged (no benchmark in both runs, or every row 'not "
        "comparable'), e.g. for a first run. Default: off (exit 3)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 4) when a row is undecided (its interval reaches beyond the "
        "threshold, too few rounds, another machine speed, not comparable) and nothing "
        "regressed. Default: off (undecided rows are named on the last line, exit 0)",
    )
    parser.add_argument(
        "--speed-tolerance",
        metavar="PCT",
        default=f"{DEFAULT_SPEED_TOLERANCE:.0%}",
        help="a benchmark whose control send ran more than PCT faster or slower in NEW than "
        "in BASE was measured with the machine at another speed: its speed-dependent rows are "
        "'not comparable' (user CPU and syscall counts are judged anyway); 'off': judge at "
        "any speed. Default: %(default)r",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``netcopy compare``; a RunFileError propagates to ``cli.main`` (exit 2)."""
    try:
        rules = DEFAULT_RULES if args.gate is None else tuple(parse_rules(args.gate))
        check_rules(rules)
    except ValueError as exc:
        return error("compare", f"--gate: {exc}")
    if not rules:
        return error(
            "compare",
            f"--gate {args.gate!r} has no rule; {format_rules(DEFAULT_RULES)!r} is the default",
        )
    try:
        tolerance = parse_speed_tolerance(args.speed_tolerance)
    except ValueError as exc:
        return error("compare", f"--speed-tolerance {args.speed_tolerance!r}: {exc}")
    try:
        check_table_format(args.format, option="--format")
    except ValueError as exc:
        return error("compare", str(exc))
    machine = local_machine_id()
    paths = []
    for label, value in (("BASE", args.base), ("NEW", args.new)):
        try:
            paths.append(resolve_baseline(value, args.storage, machine))
        except BaselineError as exc:
            return error("compare", f"{label} {exc}")
    base_path, new_path = paths
    baseline, current = load_run(base_path), load_run(new_path)
    if args.gate is not None:  # (the defaults' @-zero_copy need not be in the runs)
        modes = sorted({r.key[0] for r in baseline.results + current.results})
        try:
            check_rules(rules, modes)
        except ValueError as exc:
            return error("compare", f"--gate: {exc} (the modes in BASE and NEW)")
    needs = control_metrics(rules)
    for path, run_ in ((base_path, baseline), (new_path, current)):
        if needs and not has_control(run_):
            source = "the default rules" if args.gate is None else "the --gate rules"
            return error(
                "compare",
                f"{path} has no control figures (made with --netcopy-control=none or by an "
                f"older pytest-netcopy), so {source} on {', '.join(needs)} cannot compare it; "
                f"give rules on absolute figures, e.g. --gate '{ABSOLUTE_RULES_EXAMPLE}'",
            )
    try:
        outcome = compare_runs(
            baseline,
            current,
            rules,
            two_sided=args.two_sided,
            strict_machine=args.strict_machine,
            speed_tolerance=tolerance,
            strict=args.strict,
        )
    except MachineMismatch as exc:
        return error("compare", str(exc))
    print(f"baseline: {base_path}\ncurrent:  {new_path}")
    return _show(outcome, args.format, args.allow_empty)


#: the exit status of undecided rows under --strict when nothing regressed
EXIT_UNDECIDED = 4


def _show(outcome: GateOutcome, fmt: str, allow_empty: bool) -> int:
    """Print the comparison; the exit status (0, 1, 3 when nothing was judged, 4 when
    undecided under --strict)."""
    text = outcome.render(fmt)
    if not outcome.empty:
        print(text)
        if not outcome.failed:
            return 0
        regressed = any(not r.undecided for r in outcome.failing)
        return 1 if regressed else EXIT_UNDECIDED
    if allow_empty:
        print(f"{text} (allowed by --allow-empty)")
        return 0
    print(f"{text}; a gate that judged nothing fails (--allow-empty accepts it)")
    return 3
