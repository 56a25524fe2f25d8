"""Derive rr_run.json (HAND-MADE) from real_run.json: streams with TCP_INFO, and
request/response results (closed and open loop) with real encoded HdrHistograms.

Kept: real_run.json's machine, commit and stream results at 1 thread (their keys
untouched), plus ``pattern: "stream"``. Invented: every ``tcp_info`` (one result's
``limited_by`` null with its reason, as on a kernel without the chrono fields) and every
request/response result; their latencies are drawn from a seeded log-normal, recorded in
an HdrHistogram whose encoded text is stored, and every percentile is read back from that
histogram, so the file is consistent with itself. Keys and order follow the contract
(docs/results-schema.md, "Request/response"; results/rr.py, results/tcpinfo.py).
Regenerate: /work/main/.venv/bin/python tests/data/runs/make_rr_run.py
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

HERE = Path(__file__).parent
SIZES = (256, 4096, 65536)
MODES = ("two_copy", "one_copy", "zero_copy")
#: median round trip (µs) by mode at 4 KiB; grows with size
BASE_US = {"two_copy": 32.0, "one_copy": 30.0, "zero_copy": 41.0}
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99}


def histogram_of(rng: random.Random, median_us: float, count: int) -> HdrHistogram:
    histogram = HdrHistogram(1000, 60_000_000_000, 3)  # ns, 1 µs .. 60 s
    for _ in range(count):
        histogram.record_value(int(median_us * 1000 * rng.lognormvariate(0.0, 0.35)))
    return histogram


def rr_object(
    histogram: HdrHistogram, tps: float, rate: dict[str, Any] | None, response: int = 64
) -> dict[str, Any]:
    total = histogram.get_total_count()
    rr: dict[str, Any] = {
        "response_size": response,
        "tcp_nodelay": True,
        "transactions": total,
        "transactions_per_second": tps,
    }
    for stem, p in PERCENTILES.items():
        rr[f"{stem}_us"] = histogram.get_value_at_percentile(p) / 1000
    rr["max_us"] = histogram.get_max_value() / 1000
    rr["mean_us"] = round(histogram.get_mean_value() / 1000, 3)
    rr["stddev_us"] = round(histogram.get_stddev() / 1000, 3)
    rr["beyond"] = {}
    for stem in ("p99", "p999", "p9999"):  # samples above each, from the histogram
        limit = histogram.get_value_at_percentile(PERCENTILES[stem])
        rr["beyond"][stem] = sum(
            item.count_at_value_iterated_to
            for item in histogram.get_recorded_iterator()
            if item.value_iterated_to > limit
        )
    rr["histogram"] = histogram.encode().decode("ascii")
    rr["histogram_unit"] = "ns"
    rr["rate"] = rate
    rr["counted_transactions"] = 1000  # the counters' own round (bench/rr.py)
    return rr


def tcp_info(rng: random.Random, known: bool) -> dict[str, Any]:
    busy = 250_000
    rwnd = int(busy * rng.uniform(0.0, 0.3)) if known else None
    sndbuf = int(busy * rng.uniform(0.0, 0.2)) if known else None
    info: dict[str, Any] = {
        "rtt_us": round(rng.uniform(20, 80), 1),
        "rttvar_us": round(rng.uniform(2, 20), 1),
        "snd_cwnd": 10.0,
        "delivery_rate_bps": round(rng.uniform(5e9, 4e10)),
        "retrans": 0,
        "busy_us": busy if known else None,
        "rwnd_limited_us": rwnd,
        "sndbuf_limited_us": sndbuf,
        "min_rtt_us": 9.0,
        "bytes_sent": 10_000_000,
        "bytes_retrans": 0,
        "busy_fraction": 0.9 if known else None,
    }
    if known and rwnd is not None and sndbuf is not None:
        shares = {"receive_window": rwnd / busy, "send_buffer": sndbuf / busy}
        shares["sender"] = max(0.0, 1.0 - shares["receive_window"] - shares["send_buffer"])
        info["limited_by"] = shares
        info["missing"] = {}
    else:
        why = "kernel returned 160 bytes; tcpi_busy_time needs Linux 4.10+"
        info["limited_by"] = None
        info["missing"] = {
            "busy_us": why,
            "rwnd_limited_us": why,
            "sndbuf_limited_us": why,
            "limited_by": why,
            "busy_fraction": why,
        }
    return info


def rr_bench(
    template: dict[str, Any],
    rng: random.Random,
    mode: str,
    size: int,
    count: int,
    rate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    bench = copy.deepcopy(template)
    extra = bench["extra_info"]
    median = BASE_US[mode] * (1 + size / 16384)
    histogram = histogram_of(rng, median, count)
    tps = (
        1e6 / histogram.get_mean_value() * 1000 if rate is None else rate["achieved_per_connection"]
    )
    extra["pattern"] = "rr"
    extra["mode"], extra["size"], extra["threads"] = mode, size, 1
    extra["messages_per_round"] = count // 5
    extra["messages_per_connection"] = count // 5
    extra["bytes_per_round"] = count // 5 * size
    extra["messages_per_second"] = tps
    extra["throughput_gbps"] = tps * size * 8 / 1e9
    extra["throughput_gbps_per_connection"] = extra["throughput_gbps"]
    extra["ns_per_message"] = 1e9 / tps
    extra["tcp_nodelay"] = True
    extra["rr"] = rr_object(histogram, round(tps, 1), rate)
    medians = [round(extra["rr"]["p50_us"] * rng.uniform(0.97, 1.03), 3) for _ in range(5)]
    p99s = [round(extra["rr"]["p99_us"] * rng.uniform(0.9, 1.1), 3) for _ in range(5)]
    extra["rounds"] = {
        "seconds": [count / 5 / tps] * 5,
        "throughput_gbps": [extra["throughput_gbps"]] * 5,
        "rr_p50_us": medians,
        "rr_p99_us": p99s,
        "rr_transactions": [count // 5] * 5,
        "rr_transactions_per_second": [round(tps, 1)] * 5,
    }
    extra["tcp_info"] = tcp_info(rng, True)
    for key in ("control", "throughput_vs_control", "cpu_vs_control", "syscalls_per_message"):
        extra.pop(key, None)
    rate_id = "" if rate is None else f"-{rate['offered_per_connection']:g}tps"
    point = f"{mode}-{size}B-1t{rate_id}"
    bench["name"] = f"test_send_path[rr-{point}]"
    bench["fullname"] = f"benchmarks/test_sweep.py::{bench['name']}"
    bench["group"] = f"rr-{size}B-1t{rate_id}"
    bench["param"] = f"rr-{point}"
    return bench


def main() -> None:
    data = json.loads((HERE / "real_run.json").read_text(encoding="utf-8"))
    rng = random.Random(16)
    streams = [b for b in data["benchmarks"] if b["extra_info"]["threads"] == 1]
    for bench in streams:
        extra = bench["extra_info"]
        extra["pattern"] = "stream"
        known = not (extra["mode"] == "zero_copy" and extra["size"] == 256)
        extra["tcp_info"] = tcp_info(rng, known)
    template = streams[0]
    rr = []
    for size in SIZES:
        for mode in MODES:
            count = 120_000 if (mode, size) == ("two_copy", 4096) else 20_000
            rr.append(rr_bench(template, rng, mode, size, count))
    for mode, kept in (("two_copy", True), ("one_copy", False)):
        achieved = 1000.0 if kept else 730.0
        late = 0.0 if kept else 0.31
        rate = {
            "offered_per_connection": 1000.0,
            "achieved_per_connection": achieved,
            "kept_schedule": kept,
            "late_fraction": late,
        }
        rr.append(rr_bench(template, rng, mode, 4096, 20_000 if kept else 14_600, rate))
    data["benchmarks"] = streams + rr
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    (HERE / "rr_run.json").write_text(text, encoding="utf-8")
    print(f"wrote rr_run.json: {len(streams)} streams, {len(rr)} request/response")


if __name__ == "__main__":
    main()
