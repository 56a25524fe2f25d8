"""Text tables from netcopy results: the modes side by side, or several runs side by side.

Pure functions over plain mappings shaped like one benchmark's ``extra_info``
(see docs/results-schema.md), so the live pytest session (terminal summary)
and saved runs (``netcopy report``) share one code path.

* :func:`modes_table`: one row per (size, threads), the modes side by side.
* :func:`runs_table`: several runs side by side with the change.
* :func:`table_legend`: the legend lines under either.

The cell lines are ``report.metrics``; the crossover sizes ``report.crossovers``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tabulate as _tabulate

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.report.formats import SEPARATED_FORMATS, check_table_format
from pytest_netcopy.report.metrics import (
    COPIED,
    LIMITED_BY,
    NA,
    SPREAD,
    SPREAD_LIMIT,
    SPREAD_MARK,
    STEAL,
    UDP,
    USER_CPU,
    VS_CONTROL,
    Counters,
    Metric,
    cell_line,
    select_metrics,
)
from pytest_netcopy.report.ranking import fastest_mode, index_results, mode_rank, order_modes

FASTEST_MARK = "*"


@dataclass(frozen=True)
class _Group:
    keys: list[str]
    labels: list[str]  # one metric label per line
    columns: list[list[str]]  # one list of lines per value column


def _render(
    headers: list[str],
    key_align: list[str],
    groups: list[_Group],
    fmt: str,
) -> str:
    check_table_format(fmt)
    n_values = len(headers) - len(key_align) - 1
    colalign = [*key_align, "left", *(["right"] * n_values)]
    rows: list[Any] = []
    multiline = fmt in _tabulate.multiline_formats
    for index, group in enumerate(groups):
        if index and fmt in SEPARATED_FORMATS:
            rows.append(_tabulate.SEPARATING_LINE)
        if multiline:
            rows.append(
                [*group.keys, "\n".join(group.labels), *("\n".join(c) for c in group.columns)]
            )
        else:  # formats that cannot hold a line break in a cell: one row per metric
            for line, label in enumerate(group.labels):
                keys = group.keys if line == 0 else [""] * len(group.keys)
                rows.append([*keys, label, *(c[line] for c in group.columns)])
    return _tabulate.tabulate(
        rows, headers=headers, tablefmt=fmt, colalign=colalign, disable_numparse=True
    )


#: the engine under every table of the report (the latency table's too)
Group = _Group
render_groups = _render


def _cell(
    metrics: Sequence[Metric], extra: Extra | None, mode: str, fastest: bool, failed: bool = False
) -> list[str]:
    """The lines of one cell: "failed" or "not run" where the mode has no result, the
    fastest marked."""
    lines = [cell_line(m, extra, mode) for m in metrics]
    if extra is None:
        lines[0] = "failed" if failed else "not run"
    elif fastest:
        lines[0] = f"{FASTEST_MARK} {lines[0]}"
    return lines


def _compares_modes(indexed: Mapping[tuple[int, int], Mapping[str, Extra]]) -> bool:
    """Whether some size and thread count has two modes (so a fastest can be marked)."""
    return any(len(by_mode) > 1 for by_mode in indexed.values())


def _legend(
    metrics: Sequence[Metric], notes: Sequence[str], several_runs: bool, compared: bool = True
) -> list[str]:
    """The legend lines; the fastest mark's only when ``compared`` (two modes side by side)."""
    lines: list[str] = []
    if several_runs:
        if compared:
            lines.append(
                f"{FASTEST_MARK} fastest mode at that size and thread count within the run."
            )
        lines.append(
            "change: of the median-round figures against run 1 "
            "(netcopy compare judges significance)."
        )
    elif compared:
        lines += [
            f"{FASTEST_MARK} fastest mode of the row (highest Gbps vs control where every mode "
            "has it, else highest Gbps; all connections together)."
            if VS_CONTROL in metrics
            else f"{FASTEST_MARK} fastest mode of the row (highest Gbps, all connections together)."
        ]
    lines.append("ns per message = median round time / messages: inverse throughput, not latency.")
    lines.extend(text for metric, text in _METRIC_LEGENDS if metric in metrics)
    lines.extend(notes)
    return lines


#: the legend line of each metric that needs one, in the order they are listed
_METRIC_LEGENDS = (
    (
        SPREAD,
        f"round spread % = stddev / mean of the measured rounds' Gbps; {SPREAD_MARK} over "
        f"{SPREAD_LIMIT:g}%: a round stalled or the machine changed speed inside the "
        "benchmark, so its figures hold less still (rerun it, or see Gbps vs control).",
    ),
    (
        STEAL,
        "host steal ms = time the hypervisor kept this benchmark's CPUs from running during "
        "its measured rounds (/proc/stat steal, in whole clock ticks: 10 ms on common "
        "kernels): rounds slowed from outside this machine.",
    ),
    (
        LIMITED_BY,
        "limited by % = shares of the senders' busy time (TCP_INFO, all connections) limited "
        "by the receive window / by the send buffer / by the sender itself; not known where "
        "the kernel gave no chrono fields (why in brackets).",
    ),
    (
        VS_CONTROL,
        "Gbps vs control = Gbps / the control send's (bare_send: one prepared buffer, "
        "sendall) in the rounds around it, same connections (median of the rounds).",
    ),
    (
        USER_CPU,
        "sender user CPU ns/byte = the sender threads' user-mode CPU time per byte (their own "
        "code, not the kernel's), sampled at 10 kHz in untimed rounds after the measured ones.",
    ),
    (
        UDP,
        "UDP goodput Gbps / loss % = bytes the sink verified per second of round / datagrams "
        "sent that never arrived (Gbps counts what the senders sent).",
    ),
    (
        COPIED,
        "zero-copy copied % = completions the kernel served by copying "
        "(loopback and veth always copy).",
    ),
)


def table_legend(
    results: Sequence[Extra], *, counters: Counters = "auto", several_runs: bool = False
) -> list[str]:
    """The legend lines :func:`modes_table` (or, with ``several_runs``, :func:`runs_table`)
    appends; for callers that render the table with ``legend=False`` and place it themselves."""
    metrics, notes = select_metrics(results, counters)
    return _legend(metrics, notes, several_runs, _compares_modes(index_results(results)))


def modes_table(
    results: Sequence[Extra],
    *,
    fmt: str = "simple_grid",
    counters: Counters = "auto",
    legend: bool = True,
    failed: Collection[tuple[str, int, int]] = (),
) -> str:
    """One row per (size, threads), the modes side by side, each cell one line per metric.

    ``counters``: True shows every counter line (``n/a`` where not counted),
    False none, ``"auto"`` those with a value somewhere (a note names the rest).
    ``failed``: the (mode, size, threads) that were tried and failed; their
    cells read "failed" rather than "not run" (where no result of them came).
    In tabulate formats without multi-line cells (html, latex, tsv, ...)
    each metric gets its own row. The text ends with a short legend
    (:func:`table_legend`) unless ``legend`` is False.
    """
    if not results:
        return "(no netcopy results)"
    metrics, notes = select_metrics(results, counters)
    labels = [m.label for m in metrics]
    indexed = index_results(results)
    rows = dict(sorted({**{(s, t): {} for _, s, t in failed}, **indexed}.items()))
    modes = order_modes(
        [*(m for by_mode in indexed.values() for m in by_mode), *(f[0] for f in failed)]
    )
    groups = []
    for (size, threads), by_mode in rows.items():
        fastest = fastest_mode(by_mode) if len(by_mode) > 1 else None
        columns = [
            _cell(metrics, by_mode.get(m), m, m == fastest, (m, size, threads) in failed)
            for m in modes
        ]
        groups.append(_Group([f"{size} B", str(threads)], labels, columns))
    table = _render(["size", "threads", "", *modes], ["right", "right"], groups, fmt)
    compared = _compares_modes(indexed)
    return "\n".join([table, *_legend(metrics, notes, False, compared)]) if legend else table


# ---------------------------------------------------------------------------
# several runs


def _change(metric: Metric, old: Extra | None, new: Extra | None) -> str:
    if old is None or new is None:
        return NA
    a, b = metric.get(old), metric.get(new)
    if metric.change == "text":
        return "" if a == b else f"now {metric.show(b) if b is not None else NA}"
    if a is None or b is None:
        return "" if a is None and b is None else NA
    if metric.change == "points":
        return f"{_signed(b - a)} pt"
    if a == 0:
        return NA
    return f"{_signed(100.0 * (b - a) / a)}%"


def _signed(value: float) -> str:
    """``+1.5``, ``-0.3``; a change that rounds to zero is ``+0.0``, never ``-0.0``."""
    rounded = round(value, 1)
    return f"{rounded if rounded else 0.0:+.1f}"


def _runs_headers(count: int) -> list[str]:
    headers = ["size", "threads", "mode", ""]
    for number in range(1, count + 1):
        headers.append(f"run {number}")
        if number > 1:
            headers.append(f"{number} vs 1")
    return headers


def _runs_group(
    key: tuple[int, int, str],
    indexed: Sequence[dict[tuple[int, int], dict[str, Extra]]],
    all_metrics: Sequence[Metric],
) -> _Group:
    """The rows of one (size, threads, mode): a column per run, then its change against run 1."""
    size, threads, mode = key
    by_modes = [idx.get((size, threads), {}) for idx in indexed]
    extras = [by_mode.get(mode) for by_mode in by_modes]
    zerocopy = mode == "zero_copy" or any(
        e is not None and isinstance(e.get("zerocopy"), Mapping) for e in extras
    )
    metrics = [m for m in all_metrics if m is not COPIED or zerocopy]
    columns = []
    for number, (by_mode, extra) in enumerate(zip(by_modes, extras, strict=True)):
        fastest = len(by_mode) > 1 and fastest_mode(by_mode) == mode
        columns.append(_cell(metrics, extra, mode, fastest))
        if number:
            columns.append([_change(m, extras[0], extra) for m in metrics])
    return _Group([f"{size} B", str(threads), mode], [m.label for m in metrics], columns)


def runs_table(
    runs: Sequence[tuple[str, Sequence[Extra]]],
    *,
    fmt: str = "simple_grid",
    counters: Counters = "auto",
    legend: bool = True,
) -> str:
    """Several runs side by side: one row per (size, threads, mode), a column per run,
    and after each run but the first its change against the first.

    ``runs`` are (label, results) pairs. The change is that of the reported
    (median-round) figures; ``netcopy compare`` judges significance.
    """
    if not runs:
        return "(no runs)"
    everything = [extra for _, results in runs for extra in results]
    all_metrics, notes = select_metrics(everything, counters)
    indexed = [index_results(results) for _, results in runs]
    keys = sorted(
        {
            (size, threads, mode)
            for idx in indexed
            for (size, threads), bm in idx.items()
            for mode in bm
        },
        key=lambda k: (k[0], k[1], mode_rank(k[2])),
    )
    groups = [_runs_group(key, indexed, all_metrics) for key in keys]
    table = _render(_runs_headers(len(runs)), ["right", "right", "left"], groups, fmt)
    compared = any(_compares_modes(idx) for idx in indexed)
    return "\n".join([table, *_legend(all_metrics, notes, True, compared)]) if legend else table
