"""Text tables and crossover sizes from netcopy results.

Pure functions over plain mappings shaped like one benchmark's ``extra_info``
(see docs/results-schema.md), so the live pytest session (terminal summary)
and saved runs (``netcopy report``) share one code path.

* :func:`modes_table`: one row per (size, threads), the modes side by side.
* :func:`runs_table`: several runs side by side with the change.
* :func:`crossovers` / :func:`render_crossovers`: where one_copy overtakes
  two_copy and zero_copy overtakes the copying modes (measured sizes only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import tabulate as _tabulate

from pytest_netcopy.results.schema import as_float

#: The reference modes in the order they are shown; other modes follow alphabetically.
MODE_ORDER = ("two_copy", "one_copy", "zero_copy")
COPYING_MODES = ("two_copy", "one_copy")

Extra = Mapping[str, Any]
Counters = bool | Literal["auto"]

FASTEST_MARK = "*"
NA = "n/a"

#: tabulate formats that draw no line between rows: a blank/ruled line separates the groups.
_SEPARATED_FORMATS = frozenset(
    {
        "plain",
        "simple",
        "psql",
        "presto",
        "orgtbl",
        "simple_outline",
        "rounded_outline",
        "heavy_outline",
        "mixed_outline",
        "double_outline",
        "fancy_outline",
    }
)


# ---------------------------------------------------------------------------
# small helpers shared with csvout / plots / report


def mode_rank(mode: str) -> tuple[int, str]:
    """Sort key: two_copy, one_copy, zero_copy, then other modes alphabetically."""
    try:
        return (MODE_ORDER.index(mode), mode)
    except ValueError:
        return (len(MODE_ORDER), mode)


def order_modes(modes: Iterable[str]) -> list[str]:
    return sorted(set(modes), key=mode_rank)


def syscalls_total(extra: Extra, key: str = "syscalls_per_message") -> float | None:
    """The ``total`` of a ``{syscall: per message, ..., "total": ...}`` object, or None."""
    per_message = extra.get(key)
    if not isinstance(per_message, Mapping):
        return None
    return as_float(per_message.get("total"))


def copied_fraction(extra: Extra) -> float | None:
    """zero-copy completions the kernel served by copying (0..1), None if not zero-copy."""
    zc = extra.get("zerocopy")
    if not isinstance(zc, Mapping):
        return None
    completions = as_float(zc.get("completions"))
    copied = as_float(zc.get("copied"))
    if completions is None or copied is None or completions <= 0:
        return None
    return copied / completions


def integrity_ok(extra: Extra) -> bool | None:
    integrity = extra.get("integrity")
    if not isinstance(integrity, Mapping) or not isinstance(integrity.get("ok"), bool):
        return None
    return bool(integrity["ok"])


def index_results(results: Iterable[Extra]) -> dict[tuple[int, int], dict[str, Extra]]:
    """{(size, threads): {mode: extra}}; a later duplicate of (mode, size, threads) wins."""
    table: dict[tuple[int, int], dict[str, Extra]] = {}
    for extra in results:
        key = (int(extra["size"]), int(extra["threads"]))
        table.setdefault(key, {})[str(extra["mode"])] = extra
    return dict(sorted(table.items()))


def speed_key(by_mode: Mapping[str, Extra]) -> str:
    """Which figure ranks the modes of one size and thread count.

    ``throughput_vs_control`` where every mode with a throughput has it: each
    mode ran against the same control send at its own time, so a change of the
    machine's speed between two benchmarks cancels out (one_copy measured in a
    fast spell and two_copy in a slow one would otherwise look 40% apart).
    Else ``throughput_gbps``.
    """
    measured = [e for e in by_mode.values() if as_float(e.get("throughput_gbps")) is not None]
    if measured and all(as_float(e.get("throughput_vs_control")) is not None for e in measured):
        return "throughput_vs_control"
    return "throughput_gbps"


def comparable_speeds(by_mode: Mapping[str, Extra]) -> dict[str, float]:
    """Per mode of one size and thread count, the figure to rank by (:func:`speed_key`)."""
    key = speed_key(by_mode)
    speeds = {mode: as_float(extra.get(key)) for mode, extra in by_mode.items()}
    return {mode: value for mode, value in speeds.items() if value is not None}


def fastest_mode(by_mode: Mapping[str, Extra]) -> str | None:
    """The fastest mode by :func:`comparable_speeds` (ties: the first in display order)."""
    speeds = comparable_speeds(by_mode)
    best: tuple[float, str] | None = None
    for mode in order_modes(speeds):
        if best is None or speeds[mode] > best[0]:
            best = (speeds[mode], mode)
    return None if best is None else best[1]


def describe_machine(machine_info: Mapping[str, Any]) -> str:
    """``CPU model · N CPUs · kernel X`` from machine_info["netcopy"], pytest-benchmark fallback.

    ``N CPUs (M usable)`` when the run's CPU affinity (``cpus_allowed``) was narrower.
    """
    netcopy = machine_info.get("netcopy")
    nc: Mapping[str, Any] = netcopy if isinstance(netcopy, Mapping) else {}
    cpu_info = machine_info.get("cpu")
    cpu: Mapping[str, Any] = cpu_info if isinstance(cpu_info, Mapping) else {}
    model = nc.get("cpu_model") or cpu.get("brand_raw") or "unknown CPU"
    count = nc.get("cpu_count") or cpu.get("count")
    kernel = nc.get("kernel_release") or machine_info.get("release") or "unknown"
    allowed = nc.get("cpus_allowed")
    parts = [str(model)]
    if count:
        usable = f" ({allowed} usable)" if allowed and allowed != count else ""
        parts.append(f"{count} CPUs{usable}")
    parts.append(f"kernel {kernel}")
    return " · ".join(parts)


# ---------------------------------------------------------------------------
# number formatting


def _sig(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, never in exponent form."""
    if value == 0:
        return "0"
    value = float(f"{value:.{digits}g}")  # round first: 99.96 -> 100, not "100.0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"


def fmt_gbps(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else _sig(value, 2)


def fmt_rate(value: float) -> str:
    """Messages per second with an SI prefix: ``1.23 M``, ``45.7 k``, ``512``."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{_sig(value / factor)} {prefix}"
    return _sig(value)


def fmt_ns(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else _sig(value)


# ---------------------------------------------------------------------------
# the metric lines of a cell


@dataclass(frozen=True)
class Metric:
    label: str
    get: Callable[[Extra], Any]
    show: Callable[[Any], str]
    #: kind of change shown between runs: relative (%), points (pt) or text
    change: Literal["relative", "points", "text"] = "relative"
    #: the counter event (in ``counters`` or ``sink_counters``) behind a counter line
    event: tuple[str, str] | None = None


def _key(name: str) -> Callable[[Extra], Any]:
    return lambda extra: as_float(extra.get(name))


def _show_integrity(value: Any) -> str:
    return NA if value is None else ("intact" if value else "CORRUPT")


def _copied_pct(extra: Extra) -> float | None:
    fraction = copied_fraction(extra)
    return None if fraction is None else 100.0 * fraction


#: round spread (stddev / mean of the rounds' Gbps, %) above which a cell is marked
SPREAD_LIMIT = 5.0
SPREAD_MARK = "!"


def round_spread(extra: Extra) -> float | None:
    """Stddev / mean of the measured rounds' Gbps, in %; None with fewer than two rounds."""
    rounds = extra.get("rounds")
    values = rounds.get("throughput_gbps") if isinstance(rounds, Mapping) else None
    gbps = [v for v in (as_float(x) for x in values or []) if v is not None]
    if len(gbps) < 2 or len(gbps) != len(values or []):
        return None
    mean = math.fsum(gbps) / len(gbps)
    if mean <= 0:
        return None
    variance = math.fsum((g - mean) ** 2 for g in gbps) / len(gbps)
    return 100.0 * math.sqrt(variance) / mean


def _show_spread(value: float) -> str:
    return f"{SPREAD_MARK} {value:.1f}" if value > SPREAD_LIMIT else f"{value:.1f}"


def _show_steal(value: float) -> str:
    return f"{value:.0f}"


GBPS = Metric("Gbps", _key("throughput_gbps"), fmt_gbps)
#: hypervisor steal on the benchmark's CPUs during its measured rounds (ms)
STEAL = Metric("host steal ms", _key("steal_ms"), _show_steal, change="text")
SPREAD = Metric("round spread %", round_spread, _show_spread, change="points")
BASE_METRICS = (
    GBPS,
    Metric("messages/s", _key("messages_per_second"), fmt_rate),
    Metric("ns per message", _key("ns_per_message"), fmt_ns),
)
COPIED = Metric("zero-copy copied %", _copied_pct, lambda v: f"{v:.1f}", change="points")
VS_CONTROL = Metric("Gbps vs control", _key("throughput_vs_control"), lambda v: f"{v:.2f}")
INTEGRITY = Metric("integrity", integrity_ok, _show_integrity, change="text")
COUNTER_METRICS = (
    Metric(
        "sender CPU ns/byte",
        _key("cpu_ns_per_byte"),
        _sig,
        event=("counters", "task-clock"),
    ),
    Metric(
        "sink CPU ns/byte",
        _key("sink_cpu_ns_per_byte"),
        _sig,
        event=("sink_counters", "task-clock"),
    ),
    Metric("syscalls/message", syscalls_total, _sig),
    Metric("cycles/byte", _key("cycles_per_byte"), _sig, event=("counters", "cycles")),
)
#: from the untimed user-time pass (usertime.py), not a perf count of the measured rounds
USER_CPU = Metric("sender user CPU ns/byte", _key("user_cpu_ns_per_byte"), _sig)
COUNTER_KEYS = (
    "cpu_ns_per_byte",
    "sink_cpu_ns_per_byte",
    "syscalls_per_message",
    "cycles_per_byte",
)


def _cell_line(metric: Metric, extra: Extra | None, mode: str) -> str:
    if extra is None:
        return ""
    if metric is COPIED and mode != "zero_copy" and not isinstance(extra.get("zerocopy"), Mapping):
        return ""  # not applicable: leave blank rather than n/a
    value = metric.get(extra)
    if metric is INTEGRITY:
        return metric.show(value)
    return NA if value is None else metric.show(value)


def _counter_status(results: Sequence[Extra], metric: Metric) -> str | None:
    """Why a counter line has no value anywhere, from the counters' statuses."""
    if metric.event is None:
        return None
    section, event = metric.event
    statuses = set()
    for extra in results:
        counters = extra.get(section)
        if isinstance(counters, Mapping) and isinstance(counters.get(event), Mapping):
            statuses.add(str(counters[event].get("status")))
    return f"{event}: {', '.join(sorted(statuses))}" if statuses else None


def _after_sender_cpu(metrics: list[Metric], metric: Metric) -> None:
    anchor = COUNTER_METRICS[0]
    metrics.insert(metrics.index(anchor) + 1 if anchor in metrics else len(metrics), metric)


def _user_time_status(results: Sequence[Extra]) -> str:
    """Why the user-time line has no value anywhere, from the passes' statuses."""
    found = {
        str(r["user_time"].get("status"))
        for r in results
        if isinstance(r.get("user_time"), Mapping)
    }
    return ", ".join(sorted(found)) or "no pass"


def select_metrics(
    results: Sequence[Extra], counters: Counters = "auto"
) -> tuple[list[Metric], list[str]]:
    """The metric lines to show, and notes about counter lines left out (auto mode)."""
    metrics = list(BASE_METRICS)
    if any(SPREAD.get(r) is not None for r in results):
        metrics.append(SPREAD)
    if any((STEAL.get(r) or 0) > 0 for r in results):
        metrics.append(STEAL)  # only on a machine whose host took CPU time: bare metal never
    if any(VS_CONTROL.get(r) is not None for r in results):
        metrics.append(VS_CONTROL)
    if any(isinstance(r.get("zerocopy"), Mapping) or r.get("mode") == "zero_copy" for r in results):
        metrics.append(COPIED)
    metrics.append(INTEGRITY)
    notes: list[str] = []
    if counters is True:
        metrics.extend(COUNTER_METRICS)
        _after_sender_cpu(metrics, USER_CPU)
    elif counters == "auto":
        left_out = []
        for metric in COUNTER_METRICS:
            if any(metric.get(r) is not None for r in results):
                metrics.append(metric)
            elif any(key in r for r in results for key in COUNTER_KEYS):
                status = _counter_status(results, metric)
                left_out.append(f"{metric.label} ({status})" if status else metric.label)
        if any(USER_CPU.get(r) is not None for r in results):
            _after_sender_cpu(metrics, USER_CPU)
        elif any("user_cpu_ns_per_byte" in r for r in results):
            left_out.append(f"{USER_CPU.label} ({_user_time_status(results)})")
        if left_out:
            notes.append("not counted in this run: " + "; ".join(left_out))
    return metrics, notes


# ---------------------------------------------------------------------------
# rendering


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
    if fmt not in _tabulate.tabulate_formats:
        raise ValueError(
            f"unknown table format {fmt!r}; choose one of {', '.join(_tabulate.tabulate_formats)}"
        )
    n_values = len(headers) - len(key_align) - 1
    colalign = [*key_align, "left", *(["right"] * n_values)]
    rows: list[Any] = []
    multiline = fmt in _tabulate.multiline_formats
    for index, group in enumerate(groups):
        if index and fmt in _SEPARATED_FORMATS:
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


def _legend(metrics: Sequence[Metric], notes: Sequence[str], several_runs: bool) -> list[str]:
    if several_runs:
        lines = [
            f"{FASTEST_MARK} fastest mode at that size and thread count within the run.",
            "change: of the median-round figures against run 1 "
            "(netcopy compare judges significance).",
        ]
    else:
        lines = [
            f"{FASTEST_MARK} fastest mode of the row (highest Gbps vs control where every mode "
            "has it, else highest Gbps; all connections together)."
            if VS_CONTROL in metrics
            else f"{FASTEST_MARK} fastest mode of the row (highest Gbps, all connections together)."
        ]
    lines.append("ns per message = median round time / messages: inverse throughput, not latency.")
    if SPREAD in metrics:
        lines.append(
            f"round spread % = stddev / mean of the measured rounds' Gbps; {SPREAD_MARK} over "
            f"{SPREAD_LIMIT:g}%: a round stalled or the machine changed speed inside the "
            "benchmark, so its figures hold less still (rerun it, or see Gbps vs control)."
        )
    if STEAL in metrics:
        lines.append(
            "host steal ms = time the hypervisor kept this benchmark's CPUs from running during "
            "its measured rounds (/proc/stat steal, in whole clock ticks: 10 ms on common "
            "kernels): rounds slowed from outside this machine."
        )
    if VS_CONTROL in metrics:
        lines.append(
            "Gbps vs control = Gbps / the control send's (bare_send: one prepared buffer, "
            "sendall) in the rounds around it, same connections (median of the rounds)."
        )
    if USER_CPU in metrics:
        lines.append(
            "sender user CPU ns/byte = the sender threads' user-mode CPU time per byte (their own "
            "code, not the kernel's), sampled at 10 kHz in untimed rounds after the measured ones."
        )
    if COPIED in metrics:
        lines.append(
            "zero-copy copied % = completions the kernel served by copying "
            "(loopback and veth always copy)."
        )
    lines.extend(notes)
    return lines


def table_legend(
    results: Sequence[Extra], *, counters: Counters = "auto", several_runs: bool = False
) -> list[str]:
    """The legend lines :func:`modes_table` (or, with ``several_runs``, :func:`runs_table`)
    appends; for callers that render the table with ``legend=False`` and place it themselves."""
    metrics, notes = select_metrics(results, counters)
    return _legend(metrics, notes, several_runs)


def modes_table(
    results: Sequence[Extra],
    *,
    fmt: str = "simple_grid",
    counters: Counters = "auto",
    legend: bool = True,
) -> str:
    """One row per (size, threads), the modes side by side, each cell one line per metric.

    ``counters``: True shows every counter line (``n/a`` where not counted),
    False none, ``"auto"`` those with a value somewhere (a note names the rest).
    In tabulate formats without multi-line cells (html, latex, tsv, ...)
    each metric gets its own row. The text ends with a short legend
    (:func:`table_legend`) unless ``legend`` is False.
    """
    if not results:
        return "(no netcopy results)"
    metrics, notes = select_metrics(results, counters)
    labels = [m.label for m in metrics]
    indexed = index_results(results)
    modes = order_modes(m for by_mode in indexed.values() for m in by_mode)
    groups = []
    for (size, threads), by_mode in indexed.items():
        fastest = fastest_mode(by_mode) if len(by_mode) > 1 else None
        columns = []
        for mode in modes:
            extra = by_mode.get(mode)
            lines = [_cell_line(m, extra, mode) for m in metrics]
            if extra is None:
                lines[0] = "not run"
            elif mode == fastest:
                lines[0] = f"{FASTEST_MARK} {lines[0]}"
            columns.append(lines)
        groups.append(_Group([f"{size} B", str(threads)], labels, columns))
    table = _render(["size", "threads", "", *modes], ["right", "right"], groups, fmt)
    return "\n".join([table, *_legend(metrics, notes, False)]) if legend else table


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
    fastest = [{key: fastest_mode(by_mode) for key, by_mode in idx.items()} for idx in indexed]
    keys = sorted(
        {
            (size, threads, mode)
            for idx in indexed
            for (size, threads), bm in idx.items()
            for mode in bm
        },
        key=lambda k: (k[0], k[1], mode_rank(k[2])),
    )
    headers = ["size", "threads", "mode", ""]
    for number in range(1, len(runs) + 1):
        headers.append(f"run {number}")
        if number > 1:
            headers.append(f"{number} vs 1")
    groups = []
    for size, threads, mode in keys:
        extras = [idx.get((size, threads), {}).get(mode) for idx in indexed]
        zerocopy = mode == "zero_copy" or any(
            e is not None and isinstance(e.get("zerocopy"), Mapping) for e in extras
        )
        metrics = [m for m in all_metrics if m is not COPIED or zerocopy]
        columns = []
        for number, extra in enumerate(extras):
            lines = [_cell_line(m, extra, mode) for m in metrics]
            if extra is None:
                lines[0] = "not run"
            elif (
                fastest[number].get((size, threads)) == mode
                and len(indexed[number][(size, threads)]) > 1
            ):
                lines[0] = f"{FASTEST_MARK} {lines[0]}"
            columns.append(lines)
            if number:
                columns.append([_change(m, extras[0], extra) for m in metrics])
        groups.append(
            _Group([f"{size} B", str(threads), mode], [m.label for m in metrics], columns)
        )
    table = _render(headers, ["right", "right", "left"], groups, fmt)
    return "\n".join([table, *_legend(all_metrics, notes, True)]) if legend else table


# ---------------------------------------------------------------------------
# crossovers


@dataclass(frozen=True)
class Crossover:
    """Where ``challenger`` overtakes ``incumbent`` at one thread count (measured sizes only).

    ``incumbent`` is ``two_copy`` for one_copy, and for zero_copy ``copying``:
    at each size the better of two_copy and one_copy (or the one that ran).
    """

    threads: int
    challenger: str
    incumbent: str
    sizes: tuple[int, ...]  #: sizes both were measured at, ascending
    ahead: tuple[bool, ...]  #: challenger strictly faster (comparable_speeds) at each size

    @property
    def first_ahead(self) -> int | None:
        """The smallest size at which the challenger is ahead at all."""
        return next((s for s, a in zip(self.sizes, self.ahead, strict=True) if a), None)

    @property
    def size(self) -> int | None:
        """The smallest size from which the challenger stays ahead up to the largest size
        measured; None when it is behind at the largest size (or never ahead)."""
        if not self.ahead or not self.ahead[-1]:
            return None
        index = len(self.ahead) - 1
        while index > 0 and self.ahead[index - 1]:
            index -= 1
        return self.sizes[index]

    @property
    def overtakes(self) -> bool:
        """Behind at some smaller size and ahead from :attr:`size` on."""
        return self.size is not None and self.size != self.sizes[0]

    def describe(self) -> str:
        ch, inc = self.challenger, self.incumbent
        largest = self.sizes[-1]
        stays = self.size
        first = self.first_ahead
        if first is None:
            return f"{ch} never overtakes {inc} (up to {largest} B)"
        if stays == self.sizes[0]:
            if len(self.sizes) == 1:
                return f"{ch} ahead of {inc} at {largest} B (the only size measured)"
            return f"{ch} ahead of {inc} at every size ({self.sizes[0]}..{largest} B)"
        if stays is None:
            where = ", ".join(str(s) for s, a in zip(self.sizes, self.ahead, strict=True) if a)
            return (
                f"{ch} ahead of {inc} at {where} B but does not stay ahead (behind at {largest} B)"
            )
        if first == stays:
            return f"{ch} overtakes {inc} at {stays} B"
        earlier = ", ".join(
            str(s) for s, a in zip(self.sizes, self.ahead, strict=True) if a and s < stays
        )
        return f"{ch} overtakes {inc} at {stays} B (also ahead at {earlier} B, behind in between)"


def _crossover(
    threads: int, challenger: str, incumbent: str, points: list[tuple[int, bool]]
) -> Crossover:
    sizes = tuple(size for size, _ in points)
    ahead = tuple(is_ahead for _, is_ahead in points)
    return Crossover(threads, challenger, incumbent, sizes, ahead)


def crossovers(results: Sequence[Extra]) -> list[Crossover]:
    """Per thread count: one_copy vs two_copy, then zero_copy vs the better copying mode.

    A comparison is left out when a side was not measured at any common size.
    """
    by_threads: dict[int, dict[int, dict[str, Extra]]] = {}
    for (size, threads), by_mode in index_results(results).items():
        by_threads.setdefault(threads, {})[size] = by_mode
    found: list[Crossover] = []
    for threads, by_size in sorted(by_threads.items()):
        one: list[tuple[int, bool]] = []
        zero: list[tuple[int, bool]] = []
        copying_modes: set[str] = set()
        for size, by_mode in sorted(by_size.items()):
            speeds = comparable_speeds(by_mode)
            two_copy, one_copy = speeds.get("two_copy"), speeds.get("one_copy")
            if two_copy is not None and one_copy is not None:
                one.append((size, one_copy > two_copy))
            copying = [
                (g, m) for m, g in (("two_copy", two_copy), ("one_copy", one_copy)) if g is not None
            ]
            zero_copy = speeds.get("zero_copy")
            if copying and zero_copy is not None:
                copying_modes.update(m for _, m in copying)
                zero.append((size, zero_copy > max(g for g, _ in copying)))
        if one:
            found.append(_crossover(threads, "one_copy", "two_copy", one))
        if zero:
            incumbent = "copying" if len(copying_modes) > 1 else copying_modes.pop()
            found.append(_crossover(threads, "zero_copy", incumbent, zero))
    return found


def render_crossovers(found: Sequence[Crossover]) -> str:
    """One line per thread count, e.g. ``threads=1: one_copy overtakes two_copy at 16384 B;
    zero_copy never overtakes copying (up to 65536 B)``; empty when nothing to compare."""
    lines: dict[int, list[str]] = {}
    for crossover in found:
        lines.setdefault(crossover.threads, []).append(crossover.describe())
    return "\n".join(f"threads={t}: {'; '.join(parts)}" for t, parts in sorted(lines.items()))
