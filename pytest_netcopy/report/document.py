"""The document ``netcopy report`` prints: one run, or several side by side.

A heading, what each run was (date, commit, machine, sender settings), the
table (``report.tables``) with its legend, the crossover sizes and notes on
integrity failures and zero-copy fallbacks. Plain text, or markdown for the
github/pipe table formats.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_netcopy.report.crossovers import (
    crossovers,
    crossovers_title,
    render_cpu_crossovers,
    render_crossovers,
)
from pytest_netcopy.report.describe import (
    describe_machine,
    describe_machine_pmus,
    describe_sender,
    describe_when,
)
from pytest_netcopy.report.figures import Extra, copied_fraction, integrity_ok
from pytest_netcopy.report.formats import MARKDOWN_FORMATS
from pytest_netcopy.report.latency import (
    latency_legend,
    latency_table,
    rr_results,
    stream_results,
)
from pytest_netcopy.report.metrics import Counters
from pytest_netcopy.report.tables import modes_table, runs_table, table_legend
from pytest_netcopy.results.runs import Run
from pytest_netcopy.results.schema import as_float

DEFAULT_FORMAT = "simple_grid"


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


def _label(result: Extra) -> str:
    threads = int(result["threads"])
    return f"{result['mode']} {result['size']} B {threads} thread{'s' if threads > 1 else ''}"


def _zerocopy_notes(results: Sequence[Extra]) -> list[str]:
    notes = []
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


def report_notes(results: Sequence[Extra]) -> list[str]:
    """The notes under one run's table: integrity failures, zero-copy copies and ENOBUFS
    (also printed by the terminal summary after a sweep)."""
    notes = []
    corrupt = [_label(r) for r in results if integrity_ok(r) is False]
    if corrupt:
        notes.append(
            "INTEGRITY FAILURE: the sink received wrong bytes in "
            + ", ".join(corrupt)
            + "; those figures measure a broken sender and are not valid."
        )
    return notes + _zerocopy_notes(results)


def _latency(doc: _Doc, results: Sequence[Extra], fmt: str, title: str) -> None:
    """The request/response latency table and its legend, where the results have any."""
    rr = rr_results(results)
    if rr:
        doc.section(title)
        doc.block(latency_table(rr, fmt=fmt))
        doc.legend(latency_legend(rr))


#: the heading of the blackhole target's lines (report.crossovers.render_cpu_crossovers)
TRANSMIT_TITLE = "Transmit only (blackhole target): where zero-copy's sender CPU pays"


def _one_run(
    doc: _Doc, run: Run, everything: Sequence[Extra], fmt: str, counters: Counters
) -> list[str]:
    """The document of one run; returns its notes."""
    results = stream_results(everything)
    doc.heading(f"netcopy report: {run.path}")
    doc.items(
        [
            f"run: {describe_when(run)}",
            f"machine: {describe_machine_pmus(run)}",
            f"sender: {describe_sender(results or everything)}",
        ]
    )
    if results or not rr_results(everything):
        doc.block(modes_table(results, fmt=fmt, counters=counters, legend=False))
        doc.legend(table_legend(results, counters=counters))
    lines = render_crossovers(crossovers(results)).splitlines()
    if lines:
        doc.section(crossovers_title(results))
        doc.items(lines)
    transmit = render_cpu_crossovers(everything)  # issue 15: the blackhole target
    if transmit:
        doc.section(TRANSMIT_TITLE)
        doc.items(transmit)
    _latency(doc, everything, fmt, "Request/response latency by size x threads")
    return report_notes(everything)


def _several_runs(
    doc: _Doc, runs: Sequence[Run], extras: Sequence[Sequence[Extra]], fmt: str, counters: Counters
) -> list[str]:
    """The document of several runs side by side; returns their notes, each naming its run."""
    doc.heading(f"netcopy report: {len(runs)} runs")
    for n, (run, results) in enumerate(zip(runs, extras, strict=True), 1):
        doc.items([f"run {n}: {run.path} · {describe_when(run)}"])
        doc.items(
            [
                f"machine: {describe_machine_pmus(run)}",
                f"sender: {describe_sender(stream_results(results) or results)}",
            ],
            indent=1,
        )
    machines = {describe_machine(run.machine_info) for run in runs}
    if len(machines) > 1:
        doc.items(["the runs come from different machines: compare ratios, not absolutes"])
    streams = [stream_results(results) for results in extras]
    labelled = [(f"run {n}", results) for n, results in enumerate(streams, 1)]
    doc.block(runs_table(labelled, fmt=fmt, counters=counters, legend=False))
    everything = [r for results in streams for r in results]
    doc.legend(table_legend(everything, counters=counters, several_runs=True))
    doc.section(crossovers_title(everything))
    for n, results in enumerate(streams, 1):
        lines = render_crossovers(crossovers(results)).splitlines()
        doc.items([f"run {n}, {line}" for line in lines] or [f"run {n}: nothing to compare"])
    for n, results in enumerate(extras, 1):
        transmit = render_cpu_crossovers(results)  # issue 15: the blackhole target
        if transmit:
            doc.section(f"{TRANSMIT_TITLE}, run {n}")
            doc.items(transmit)
        _latency(doc, results, fmt, f"Request/response latency, run {n}")
    return [
        f"run {n}: {note}" for n, results in enumerate(extras, 1) for note in report_notes(results)
    ]


def render_report(
    runs: Sequence[Run], *, fmt: str = DEFAULT_FORMAT, counters: Counters = "auto"
) -> str:
    """The text of ``netcopy report`` for one run, or several side by side."""
    doc = _Doc(fmt)
    extras = [[r.extra for r in run.results] for run in runs]
    if len(runs) == 1:
        notes = _one_run(doc, runs[0], extras[0], fmt, counters)
    else:
        notes = _several_runs(doc, runs, extras, fmt, counters)
    if notes:
        doc.section("Notes")
        doc.items(notes)
    return doc.text()
