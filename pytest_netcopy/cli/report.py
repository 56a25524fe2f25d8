"""``netcopy report``, ``netcopy csv`` and ``netcopy plot``: saved runs as tables, CSV, plots.

Input: pytest-benchmark JSON (``--benchmark-json`` or a file in
``--benchmark-save`` storage), or a saved-run id looked up in ``--storage``
the way ``netcopy compare`` does (``0001``, ``*base``). Every file goes
through :func:`pytest_netcopy.results.runs.load_run`; its :class:`RunFileError`
reaches ``cli.main``, which prints it (naming the file) and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate_formats

from pytest_netcopy.report.csvout import COLUMNS_HELP, write_csv
from pytest_netcopy.report.tables import (
    Counters,
    Extra,
    copied_fraction,
    crossovers,
    describe_machine,
    index_results,
    integrity_ok,
    modes_table,
    render_crossovers,
    runs_table,
    speed_key,
    table_legend,
)
from pytest_netcopy.results.baseline import BaselineError, local_machine_id, resolve_baseline
from pytest_netcopy.results.runs import Run, load_run
from pytest_netcopy.results.schema import as_float

__all__ = ["register", "render_report", "run_csv", "run_plot", "run_report"]

DEFAULT_FORMAT = "simple_grid"
MARKDOWN_FORMATS = frozenset({"github", "pipe"})
COUNTER_CHOICES: dict[str, Counters] = {"auto": "auto", "all": True, "none": False}
INPUT_HELP = (
    "a pytest-benchmark JSON file (--benchmark-json, or one in --benchmark-save storage), "
    "or a saved-run id looked up in --storage ('0001', '*NAME', 'MACHINE/0001')"
)


def crossovers_title(results: list[Any]) -> str:
    """Where the crossovers come from: the figure ``tables.speed_key`` picks per row."""
    keys = {speed_key(by_mode) for by_mode in index_results(results).values()}
    if keys == {"throughput_vs_control"}:
        return "Crossovers (measured sizes, median-round throughput against the control)"
    if "throughput_vs_control" in keys:
        return (
            "Crossovers (measured sizes, median-round throughput against the control "
            "where every mode of the row has one, else Gbps)"
        )
    return "Crossovers (measured sizes, median-round throughput)"


def register(subparsers: Any) -> None:
    """Add the ``report``, ``csv`` and ``plot`` subcommands to ``netcopy``'s subparsers."""
    report = subparsers.add_parser(
        "report",
        help="tables of one or more runs: the modes side by side, the fastest marked",
        description="Tables per message size x threads with the modes side by side: Gbps, "
        "messages/s, ns per message (inverse throughput, not latency), zero-copy copied %%, "
        "integrity, and where counted sender and sink CPU ns/byte, syscalls/message and "
        "cycles/byte; the fastest mode of each row is marked with '*'. Then the crossover "
        "sizes (where one_copy overtakes two_copy, where zero_copy overtakes copying). With "
        "several runs: the runs side by side with the change against the first.",
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

    csv_parser = subparsers.add_parser(
        "csv",
        help="one CSV row per benchmark: the reference workload's columns, then ours",
        description="Write one CSV row per benchmark of RUN: the reference workload's\n"
        "columns first (so its plotting scripts work), then pytest-netcopy's.",
        epilog=COLUMNS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    csv_parser.add_argument("run", metavar="RUN", help=INPUT_HELP)
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

    plot = subparsers.add_parser(
        "plot",
        help="PNG plots of a run (needs matplotlib: pip install 'pytest-netcopy[plot]')",
        description="Write PNGs of the reference workload's five plots:\n"
        "  1. throughput vs message size, a panel per thread count\n"
        "  2. time per message (inverse throughput) vs threads\n"
        "  3. LLC and L1d cache misses per message vs size\n"
        "  4. cycles per byte vs size (CPU ns per byte where no PMU counted cycles)\n"
        "  5. an overall comparison at 16 KiB\n"
        "and 6. a crossover plot: where one_copy overtakes two_copy and zero_copy\n"
        "overtakes copying. Each names the machine (CPU, kernel); error bars span\n"
        "the measured rounds (min..max).",
        epilog="matplotlib is an optional extra; install it with:\n"
        "  pip install 'pytest-netcopy[plot]'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument("run", metavar="RUN", help=INPUT_HELP)
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


def _error(command: str, message: str) -> int:
    print(f"netcopy {command}: error: {message}", file=sys.stderr)
    return 2


def _resolve(value: str, storage: Path) -> Path:
    """A path as given when it exists or looks like a file, else a saved-run id in storage."""
    path = Path(value)
    if path.exists() or value.endswith(".json"):
        return path  # load_run reports a missing or broken file by name
    return resolve_baseline(value, storage, local_machine_id())


def _load(values: Sequence[str], storage: Path) -> list[Run]:
    return [load_run(_resolve(value, storage)) for value in values]


# ---------------------------------------------------------------------------
# netcopy report


class _Doc:
    """Plain text, or markdown for the github/pipe table formats."""

    def __init__(self, fmt: str) -> None:
        self.markdown = fmt in MARKDOWN_FORMATS
        self.lines: list[str] = []

    def heading(self, text: str) -> None:
        if self.lines:
            self.lines.append("")
        self.lines.append(f"## {text}" if self.markdown else text)
        if not self.markdown:
            self.lines.append("=" * len(text))

    def section(self, text: str) -> None:
        self.lines.append("")
        self.lines.append(f"### {text}" if self.markdown else f"{text}:")
        if self.markdown:
            self.lines.append("")

    def items(self, items: Sequence[str], indent: int = 0) -> None:
        pad = "  " * indent
        for item in items:
            if self.markdown:
                escaped = "\\" + item if item.startswith(("*", "-", "+", "#")) else item
                self.lines.append(f"{pad}- {escaped}")
            else:
                self.lines.append(pad + item)

    def legend(self, items: Sequence[str]) -> None:
        if self.markdown:
            self.lines.append("")
        self.items(items)

    def block(self, text: str) -> None:
        self.lines.append("")
        self.lines.append(text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _when(run: Run) -> str:
    parts = []
    if run.datetime:
        parts.append(run.datetime[:19].replace("T", " ") + " UTC")
    commit = run.commit_info
    if commit.get("id"):
        dirty = ", dirty" if commit.get("dirty") else ""
        branch = f" ({commit['branch']}{dirty})" if commit.get("branch") else ""
        parts.append(f"commit {str(commit['id'])[:9]}{branch}")
    return " · ".join(parts) or "date and commit unknown"


def _machine(run: Run) -> str:
    text = describe_machine(run.machine_info)
    pmus = run.netcopy_machine.get("pmus")
    if isinstance(pmus, list):
        text += " · " + ("PMUs " + ", ".join(map(str, pmus)) if pmus else "no hardware PMU")
    return text


def cpu_list(cpus: Sequence[int]) -> str:
    """``CPU 3`` or ``CPUs 0-18`` or ``CPUs 0, 2, 4-6``."""
    spans: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if spans and cpu == spans[-1][1] + 1:
            spans[-1][1] = cpu
        else:
            spans.append([cpu, cpu])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"CPU {text}" if len(cpus) == 1 else f"CPUs {text}"


def _placement(results: Sequence[Extra]) -> str:
    places: list[Mapping[str, Any]] = []
    for result in results:
        place = result.get("placement")
        places.append(place if isinstance(place, Mapping) else {})
    pinned = {p.get("pinned") for p in places}
    if pinned == {False}:
        return "not pinned"
    if pinned != {True}:
        return "pinned for some benchmarks only"
    where = {(tuple(p.get("sender_cpus") or ()), tuple(p.get("sink_cpus") or ())) for p in places}
    if len(where) != 1:
        return "sender threads and sink pinned to separate CPUs"
    ((senders, sinks),) = where
    return f"pinned: sender threads on {cpu_list(senders)}, sink on {cpu_list(sinks)}"


def _settings(results: Sequence[Extra]) -> str:
    nodelay = {r.get("tcp_nodelay") for r in results}
    if nodelay == {False}:
        nagle = "Nagle on (TCP_NODELAY off, the default)"
    elif nodelay == {True}:
        nagle = "Nagle off (TCP_NODELAY on)"
    else:
        nagle = "TCP_NODELAY differs between benchmarks"
    return f"{nagle} · {_placement(results)}"


def _label(result: Extra) -> str:
    threads = int(result["threads"])
    return f"{result['mode']} {result['size']} B {threads} thread{'s' if threads > 1 else ''}"


def _notes(results: Sequence[Extra]) -> list[str]:
    notes = []
    corrupt = [_label(r) for r in results if integrity_ok(r) is False]
    if corrupt:
        notes.append(
            "INTEGRITY FAILURE: the sink received wrong bytes in "
            + ", ".join(corrupt)
            + "; those figures measure a broken sender and are not valid."
        )
    zero = [r for r in results if isinstance(r.get("zerocopy"), dict)]
    completions = sum(as_float(r["zerocopy"].get("completions")) or 0.0 for r in zero)
    if completions:
        copied = sum(as_float(r["zerocopy"].get("copied")) or 0.0 for r in zero)
        share = 100.0 * copied / completions
        if share >= 99.95:
            notes.append(
                "zero_copy: the kernel copied every send (100% of completions flagged COPIED): "
                "on loopback and veth the receive path copies the pages, so zero_copy pays for "
                "pinning and completions without saving the copy."
            )
        elif any((copied_fraction(r) or 0.0) > 0 for r in zero):
            notes.append(f"zero_copy: the kernel fell back to copying for {share:.1f}% of sends.")
    enobufs = sum(int(as_float(r["zerocopy"].get("enobufs")) or 0) for r in zero)
    if enobufs:
        notes.append(
            f"zero_copy hit ENOBUFS {enobufs} times: outstanding completions exceeded "
            "net.core.optmem_max; the sender reaped completions and retried."
        )
    return notes


def render_report(
    runs: Sequence[Run], *, fmt: str = DEFAULT_FORMAT, counters: Counters = "auto"
) -> str:
    """The text of ``netcopy report`` for one run, or several side by side."""
    doc = _Doc(fmt)
    extras = [[r.extra for r in run.results] for run in runs]
    if len(runs) == 1:
        run, results = runs[0], extras[0]
        doc.heading(f"netcopy report: {run.path}")
        doc.items(
            [f"run: {_when(run)}", f"machine: {_machine(run)}", f"sender: {_settings(results)}"]
        )
        doc.block(modes_table(results, fmt=fmt, counters=counters, legend=False))
        doc.legend(table_legend(results, counters=counters))
        lines = render_crossovers(crossovers(results)).splitlines()
        if lines:
            doc.section(crossovers_title(results))
            doc.items(lines)
        notes = _notes(results)
    else:
        doc.heading(f"netcopy report: {len(runs)} runs")
        for n, (run, results) in enumerate(zip(runs, extras, strict=True), 1):
            doc.items([f"run {n}: {run.path} · {_when(run)}"])
            doc.items([f"machine: {_machine(run)}", f"sender: {_settings(results)}"], indent=1)
        machines = {describe_machine(run.machine_info) for run in runs}
        if len(machines) > 1:
            doc.items(["the runs come from different machines: compare ratios, not absolutes"])
        labelled = [(f"run {n}", results) for n, results in enumerate(extras, 1)]
        doc.block(runs_table(labelled, fmt=fmt, counters=counters, legend=False))
        everything = [r for results in extras for r in results]
        doc.legend(table_legend(everything, counters=counters, several_runs=True))
        doc.section(crossovers_title(everything))
        for n, results in enumerate(extras, 1):
            lines = render_crossovers(crossovers(results)).splitlines()
            doc.items([f"run {n}, {line}" for line in lines] or [f"run {n}: nothing to compare"])
        notes = [
            f"run {n}: {note}" for n, results in enumerate(extras, 1) for note in _notes(results)
        ]
    if notes:
        doc.section("Notes")
        doc.items(notes)
    return doc.text()


def run_report(args: argparse.Namespace) -> int:
    if args.format not in tabulate_formats:
        return _error(
            "report",
            f"--format {args.format!r} is not a table format; choose one of "
            + ", ".join(sorted(tabulate_formats)),
        )
    try:
        runs = _load(args.runs, args.storage)
    except BaselineError as exc:
        return _error("report", str(exc))
    sys.stdout.write(render_report(runs, fmt=args.format, counters=COUNTER_CHOICES[args.counters]))
    return 0


# ---------------------------------------------------------------------------
# netcopy csv / plot


def run_csv(args: argparse.Namespace) -> int:
    try:
        (run,) = _load([args.run], args.storage)
    except BaselineError as exc:
        return _error("csv", str(exc))
    results = [r.extra for r in run.results]
    if args.output is None:
        write_csv(results, sys.stdout)
        return 0
    try:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            rows = write_csv(results, out)
    except OSError as exc:
        return _error("csv", f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"netcopy csv: {rows} rows written to {args.output}", file=sys.stderr)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from pytest_netcopy.report import plots

    try:
        (run,) = _load([args.run], args.storage)
    except BaselineError as exc:
        return _error("plot", str(exc))
    try:
        written = plots.write_plots(run, args.output_dir, dpi=args.dpi)
    except plots.PlotDependencyError as exc:
        return _error("plot", str(exc))
    except OSError as exc:
        return _error("plot", f"cannot write to {args.output_dir}: {exc.strerror or exc}")
    for path in written:
        print(path)
    return 0
