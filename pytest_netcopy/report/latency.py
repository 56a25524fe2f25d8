"""Request/response results: their figures and the latency table (modes side by side).

A request/response benchmark (``extra_info["pattern"] == "rr"``, docs/results-schema.md)
records its round-trip percentiles in ``extra_info["rr"]``. The latency table has one row
per (size, threads, load) with the modes side by side, like ``report.tables.modes_table``
and drawn by the same engine. Results without a ``pattern`` are streams (runs made before
request/response existed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_netcopy.report.figures import Extra
from pytest_netcopy.report.metrics import NA, fmt_ns, fmt_rate
from pytest_netcopy.report.ranking import mode_rank, order_modes
from pytest_netcopy.report.tables import FASTEST_MARK, Group, render_groups
from pytest_netcopy.results.rr import MIN_BEYOND
from pytest_netcopy.results.schema import as_float

STREAM = "stream"
RR = "rr"
#: a percentile resting on fewer samples beyond it than this is flagged
FEW_BEYOND = MIN_BEYOND
FEW_MARK = "†"
#: the percentiles the table shows: (label, key in ``rr``, key in ``rr.beyond``, p)
TABLE_PERCENTILES = (
    ("p50 µs", "p50_us", None, 0.5),
    ("p99 µs", "p99_us", "p99", 0.99),
    ("p99.9 µs", "p999_us", "p999", 0.999),
)
#: (size, threads, offered rate per connection or None for closed loop)
LatencyKey = tuple[int, int, float | None]


def pattern_of(extra: Extra) -> str:
    """``"stream"`` or ``"rr"``; a result without the key is a stream."""
    return str(extra.get("pattern") or STREAM)


def stream_results(results: Sequence[Extra]) -> list[Extra]:
    return [r for r in results if pattern_of(r) == STREAM]


def rr_results(results: Sequence[Extra]) -> list[Extra]:
    """The request/response results that carry their ``rr`` figures."""
    return [r for r in results if pattern_of(r) == RR and isinstance(r.get("rr"), Mapping)]


def rr_figures(extra: Extra) -> Mapping[str, Any]:
    rr = extra.get("rr")
    return rr if isinstance(rr, Mapping) else {}


def rr_rate(extra: Extra) -> Mapping[str, Any] | None:
    """The open-loop schedule's figures, or None for a closed loop."""
    rate = rr_figures(extra).get("rate")
    return rate if isinstance(rate, Mapping) else None


def offered_rate(extra: Extra) -> float | None:
    rate = rr_rate(extra)
    return None if rate is None else as_float(rate.get("offered_per_connection"))


def beyond(extra: Extra, key: str | None, p: float) -> float | None:
    """How many transactions lie above a percentile: recorded for the tail percentiles,
    else from the transaction count (the median has half of them beyond it)."""
    rr = rr_figures(extra)
    counts = rr.get("beyond")
    if key is not None and isinstance(counts, Mapping):
        recorded = as_float(counts.get(key))
        if recorded is not None:
            return recorded
    transactions = as_float(rr.get("transactions"))
    return None if transactions is None else transactions * (1.0 - p)


def few_beyond(extra: Extra, key: str | None, p: float) -> bool:
    count = beyond(extra, key, p)
    return count is not None and count < FEW_BEYOND


def latency_key(extra: Extra) -> LatencyKey:
    return (int(extra["size"]), int(extra["threads"]), offered_rate(extra))


def fastest_latency(by_mode: Mapping[str, Extra]) -> str | None:
    """The mode with the lowest p50 (ties: the first in display order)."""
    best: tuple[float, str] | None = None
    for mode in order_modes(by_mode):
        p50 = as_float(rr_figures(by_mode[mode]).get("p50_us"))
        if p50 is not None and (best is None or p50 < best[0]):
            best = (p50, mode)
    return None if best is None else best[1]


def kept_schedule(extra: Extra) -> bool | None:
    rate = rr_rate(extra)
    kept = None if rate is None else rate.get("kept_schedule")
    return kept if isinstance(kept, bool) else None


# ---------------------------------------------------------------------------
# the table


def _percentile_line(extra: Extra, key: str, beyond_key: str | None, p: float) -> str:
    value = as_float(rr_figures(extra).get(key))
    if value is None:
        return NA
    text = fmt_ns(value)
    return f"{text} {FEW_MARK}" if few_beyond(extra, beyond_key, p) else text


def _schedule_line(extra: Extra) -> str:
    rate = rr_rate(extra) or {}
    kept = kept_schedule(extra)
    if kept is None:
        return NA
    if kept:
        return "kept"
    late = as_float(rate.get("late_fraction"))
    return "MISSED" if late is None else f"MISSED ({100.0 * late:.0f}% late)"


def _rate_line(extra: Extra, key: str) -> str:
    value = as_float((rr_rate(extra) or {}).get(key))
    return NA if value is None else fmt_rate(value)


def _lines(extra: Extra | None, open_loop: bool, fastest: bool) -> list[str]:
    if extra is None:
        return ["not run", *([""] * (len(TABLE_PERCENTILES) + (3 if open_loop else 0)))]
    lines = [_percentile_line(extra, key, b, p) for _, key, b, p in TABLE_PERCENTILES]
    tps = as_float(rr_figures(extra).get("transactions_per_second"))
    lines.append(NA if tps is None else fmt_rate(tps))
    if open_loop:
        lines += [
            _rate_line(extra, "offered_per_connection"),
            _rate_line(extra, "achieved_per_connection"),
            _schedule_line(extra),
        ]
    if fastest:
        lines[0] = f"{FASTEST_MARK} {lines[0]}"
    return lines


def _labels(open_loop: bool) -> list[str]:
    labels = [label for label, _, _, _ in TABLE_PERCENTILES] + ["transactions/s"]
    if open_loop:
        labels += ["offered/s per conn", "achieved/s per conn", "schedule"]
    return labels


def _load(rate: float | None) -> str:
    return "closed loop" if rate is None else f"{rate:,g}/s per conn"


def _index(results: Sequence[Extra]) -> dict[LatencyKey, dict[str, Extra]]:
    table: dict[LatencyKey, dict[str, Extra]] = {}
    for extra in results:
        table.setdefault(latency_key(extra), {})[str(extra["mode"])] = extra
    return dict(sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0.0)))


def latency_table(results: Sequence[Extra], *, fmt: str = "simple_grid") -> str:
    """One row per (size, threads, load) of the request/response results, the modes side
    by side: p50 / p99 / p99.9 (µs) and transactions/s, open loop also the offered and
    achieved rates and whether the schedule was kept; the lowest p50 of a row marked."""
    rr = rr_results(results)
    if not rr:
        return "(no request/response results)"
    indexed = _index(rr)
    modes = sorted({str(e["mode"]) for e in rr}, key=mode_rank)
    groups = []
    for (size, threads, rate), by_mode in indexed.items():
        fastest = fastest_latency(by_mode) if len(by_mode) > 1 else None
        columns = [_lines(by_mode.get(m), rate is not None, m == fastest) for m in modes]
        keys = [f"{size} B", str(threads), _load(rate)]
        groups.append(Group(keys, _labels(rate is not None), columns))
    headers = ["size", "threads", "load", "", *modes]
    return render_groups(headers, ["right", "right", "left"], groups, fmt)


def latency_legend(results: Sequence[Extra]) -> list[str]:
    """The legend lines under :func:`latency_table`."""
    rr = rr_results(results)
    lines = [
        "round trip of one request and its response per transaction (µs), all transactions "
        "of the measured rounds in one histogram; transactions/s: all connections together.",
    ]
    indexed = _index(rr)
    if any(len(by_mode) > 1 for by_mode in indexed.values()):
        lines.append(f"{FASTEST_MARK} lowest p50 of the row.")
    flagged = any(
        few_beyond(e, b, p) for e in rr for _, key, b, p in TABLE_PERCENTILES if b is not None
    )
    if flagged:
        lines.append(
            f"{FEW_MARK} fewer than {FEW_BEYOND:,} transactions lie beyond this percentile: "
            "its value rests on few samples and moves from run to run."
        )
    if any(offered_rate(e) is not None for e in rr):
        lines.append(
            "open loop: requests sent on a fixed schedule, each time counted from when it was "
            "due (no coordinated omission); schedule MISSED: the sender fell behind, so it "
            "offered less than asked and the tail is that of a lighter load."
        )
    lines.append(describe_rr(rr))
    return lines


def describe_rr(rr: Sequence[Extra]) -> str:
    """Response size and Nagle of the request/response results."""
    sizes = {rr_figures(e).get("response_size") for e in rr}
    nodelay = {rr_figures(e).get("tcp_nodelay") for e in rr}
    response = f"{next(iter(sizes))} B responses" if len(sizes) == 1 else "response sizes differ"
    if nodelay == {True}:
        nagle = "TCP_NODELAY on (Nagle off)"
    elif nodelay == {False}:
        nagle = "Nagle ON (TCP_NODELAY off: expect 40 ms delayed-ACK stalls)"
    else:
        nagle = "TCP_NODELAY differs between benchmarks"
    return f"request/response: {response} · {nagle}."


# ---------------------------------------------------------------------------
# CSV

#: CSV column -> key of ``rr`` it shows as is (``Pattern`` first; then the schedule's)
LATENCY_COLUMNS = {
    "Pattern": None,
    "ResponseSize": "response_size",
    "Transactions": "transactions",
    "TransactionsPerSecond": "transactions_per_second",
    "p50_us": "p50_us",
    "p90_us": "p90_us",
    "p99_us": "p99_us",
    "p999_us": "p999_us",
    "p9999_us": "p9999_us",
    "max_us": "max_us",
    "mean_us": "mean_us",
    "stddev_us": "stddev_us",
    "OfferedRate_per_connection": None,
    "AchievedRate_per_connection": None,
    "KeptSchedule": None,
}


def latency_columns(extra: Extra) -> dict[str, Any]:
    """The CSV's latency cells of one result (empty for a stream: None, never 0)."""
    rr = rr_figures(extra)
    rate = rr_rate(extra) or {}
    cells: dict[str, Any] = {
        column: as_float(rr.get(key)) for column, key in LATENCY_COLUMNS.items() if key
    }
    cells["Pattern"] = pattern_of(extra)
    for column in ("ResponseSize", "Transactions"):
        value = cells[column]
        cells[column] = None if value is None else int(value)
    cells["OfferedRate_per_connection"] = as_float(rate.get("offered_per_connection"))
    cells["AchievedRate_per_connection"] = as_float(rate.get("achieved_per_connection"))
    cells["KeptSchedule"] = kept_schedule(extra)
    return cells
