"""``netcopy report``, ``netcopy csv`` and ``netcopy plot``: saved runs as tables, CSV, plots.

Input: pytest-benchmark JSON (``--benchmark-json`` or a file in
``--benchmark-save`` storage), or a saved-run id looked up in ``--storage``
the way ``netcopy compare`` does (``0001``, ``*base``). Every file goes
through :func:`pytest_netcopy.results.runs.load_run`; its :class:`RunFileError`
reaches ``cli.main``, which prints it (naming the file) and exits 2.
The documents themselves are ``pytest_netcopy.report``'s; this module only
wires the commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_netcopy.cli import error
from pytest_netcopy.report.csvout import COLUMNS_HELP, write_csv
from pytest_netcopy.report.document import DEFAULT_FORMAT, render_report
from pytest_netcopy.report.formats import check_table_format
from pytest_netcopy.report.metrics import Counters
from pytest_netcopy.results.baseline import BaselineError, local_machine_id, resolve_baseline
from pytest_netcopy.results.runs import Run, load_run

__all__ = ["register", "run_csv", "run_plot", "run_report"]

COUNTER_CHOICES: dict[str, Counters] = {"auto": "auto", "all": True, "none": False}
INPUT_HELP = (
    "a pytest-benchmark JSON file (--benchmark-json, or one in --benchmark-save storage), "
    "or a saved-run id looked up in --storage ('0001', '*NAME', 'MACHINE/0001')"
)
REPORT_DESCRIPTION = (
    "Tables per message size x threads with the modes side by side: Gbps, "
    "messages/s, ns per message (inverse throughput, not latency), zero-copy copied %%, "
    "integrity, and where counted sender and sink CPU ns/byte, syscalls/message and "
    "cycles/byte; the fastest mode of each row is marked with '*'. Then the crossover "
    "sizes (where one_copy overtakes two_copy, where zero_copy overtakes copying). Where "
    "TCP_INFO was read, what limited the senders (receive window / send buffer / the sender "
    "itself). Request/response results get a latency table: p50 / p99 / p99.9 round trips "
    "(µs) and transactions/s, the lowest p50 marked, thin tails flagged, the open loop's "
    "offered and achieved rates. With several runs: the runs side by side with the change "
    "against the first."
)
CSV_DESCRIPTION = (
    "Write one CSV row per benchmark of RUN: the reference workload's\n"
    "columns first (so its plotting scripts work), then pytest-netcopy's."
)
PLOT_DESCRIPTION = (
    "Write PNGs of the reference workload's five plots:\n"
    "  1. throughput vs message size, a panel per thread count\n"
    "  2. time per message (inverse throughput) vs threads\n"
    "  3. LLC and L1d cache misses per message vs size\n"
    "  4. cycles per byte vs size (CPU ns per byte where no PMU counted cycles)\n"
    "  5. an overall comparison at 16 KiB\n"
    "and 6. a crossover plot: where one_copy overtakes two_copy and zero_copy\n"
    "overtakes copying. Each names the machine (CPU, kernel); error bars span\n"
    "the measured rounds (min..max). A run with request/response results also gets\n"
    "  7. p50 and p99 round trips vs request size, a line of each per mode\n"
    "  8. the percentile distribution per size (HdrHistogram style, from the\n"
    "     stored histograms: latency against 90%, 99%, 99.9%, ...)"
)
PLOT_EPILOG = (
    "matplotlib is an optional extra; install it with:\n  pip install 'pytest-netcopy[plot]'"
)


def register(subparsers: Any) -> None:
    """Add the ``report``, ``csv`` and ``plot`` subcommands to ``netcopy``'s subparsers."""
    _add_report(subparsers)
    _add_csv(subparsers)
    _add_plot(subparsers)


def _add_report(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="tables of one or more runs: the modes side by side, the fastest marked",
        description=REPORT_DESCRIPTION,
    )
    report.add_argument("runs", metavar="RUN", nargs="+", help=INPUT_HELP)
    report.add_argument(
        "--format",
        metavar="FMT",
        default=DEFAULT_FORMAT,
        help="table format: plain, simple, github (markdown), grid, simple_grid, pipe, html, "
        "latex, tsv or any other tabulate format. Default: %(default)r",
    )
    report.add_argument(
        "--counters",
        metavar="WHICH",
        choices=sorted(COUNTER_CHOICES),
        default="auto",
        help="counter lines (CPU ns/byte, syscalls/message, cycles/byte): 'auto' shows those "
        "counted somewhere in the run, 'all' every one (n/a where not counted), 'none' "
        "hides them. Default: %(default)r",
    )
    _storage_option(report)
    report.set_defaults(func=run_report)


def _one_run_parser(
    subparsers: Any, name: str, *, help_text: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """The parser of a command over one run (``csv``, ``plot``), its RUN argument added."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help=INPUT_HELP)
    return parser


def _add_csv(subparsers: Any) -> None:
    csv_parser = _one_run_parser(
        subparsers,
        "csv",
        help_text="one CSV row per benchmark: the reference workload's columns, then ours",
        description=CSV_DESCRIPTION,
        epilog=COLUMNS_HELP,
    )
    csv_parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=Path,
        default=None,
        help="write the CSV to FILE. Default: standard output",
    )
    _storage_option(csv_parser)
    csv_parser.set_defaults(func=run_csv)


def _add_plot(subparsers: Any) -> None:
    plot = _one_run_parser(
        subparsers,
        "plot",
        help_text="PNG plots of a run (needs matplotlib: pip install 'pytest-netcopy[plot]')",
        description=PLOT_DESCRIPTION,
        epilog=PLOT_EPILOG,
    )
    plot.add_argument(
        "-o",
        "--output-dir",
        metavar="DIR",
        type=Path,
        default=Path("netcopy-plots"),
        help="directory for the PNG files (created if missing). Default: 'netcopy-plots'",
    )
    plot.add_argument(
        "--dpi",
        metavar="N",
        type=_positive_int,
        default=110,
        help="resolution of the PNG files in dots per inch. Default: %(default)s",
    )
    _storage_option(plot)
    plot.set_defaults(func=run_plot)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least 1")
    return value


def _storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="DIR",
        type=Path,
        default=Path(".benchmarks"),
        help="pytest-benchmark storage for saved-run ids. Default: '.benchmarks'",
    )


def _resolve(value: str, storage: Path) -> Path:
    """A path as given when it exists or looks like a file, else a saved-run id in storage."""
    path = Path(value)
    if path.exists() or value.endswith(".json"):
        return path  # load_run reports a missing or broken file by name
    return resolve_baseline(value, storage, local_machine_id())


def _load(values: Sequence[str], storage: Path) -> list[Run]:
    return [load_run(_resolve(value, storage)) for value in values]


def run_report(args: argparse.Namespace) -> int:
    try:
        check_table_format(args.format, option="--format")
    except ValueError as exc:
        return error("report", str(exc))
    try:
        runs = _load(args.runs, args.storage)
    except BaselineError as exc:
        return error("report", str(exc))
    sys.stdout.write(render_report(runs, fmt=args.format, counters=COUNTER_CHOICES[args.counters]))
    return 0


def run_csv(args: argparse.Namespace) -> int:
    try:
        (run,) = _load([args.run], args.storage)
    except BaselineError as exc:
        return error("csv", str(exc))
    results = [r.extra for r in run.results]
    if args.output is None:
        write_csv(results, sys.stdout)
        return 0
    try:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            rows = write_csv(results, out)
    except OSError as exc:
        return error("csv", f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"netcopy csv: {rows} rows written to {args.output}", file=sys.stderr)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from pytest_netcopy.report import plots

    try:
        (run,) = _load([args.run], args.storage)
    except BaselineError as exc:
        return error("plot", str(exc))
    try:
        written = plots.write_plots(run, args.output_dir, dpi=args.dpi)
    except plots.PlotDependencyError as exc:
        return error("plot", str(exc))
    except OSError as exc:
        return error("plot", f"cannot write to {args.output_dir}: {exc.strerror or exc}")
    for path in written:
        print(path)
    return 0
