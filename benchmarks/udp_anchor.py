"""udp_two_copy at 1400 B on loopback against ``iperf3 -u`` on the same CPUs (issue 15: >= 0.9x).

    python benchmarks/udp_anchor.py [--pairs 3] [--seconds 3] [--size 1400]

Runs, ``--pairs`` times back to back, alternating which goes first:

- iperf3: server ``iperf3 -s -1 -A 1 -B 127.0.0.1``, client ``iperf3 -u -b RATE -l 1400
  -c 127.0.0.1 -A 0 -t SECONDS -J``. RATE starts at 0 (unpaced); while the receiver lost
  more than the loss budget (1%, the same budget as netcopy's calibrated rate), it is
  halved from the rate the client achieved (at most 6 times), then bisected 3 times between
  the last rate over the budget and the first under it (netcopy's calibration searches the
  same way: halvings, then bisection). Goodput = bytes the server
  received / its seconds;
- ours: ``pytest benchmarks/ -p no:xdist --netcopy-modes=udp_two_copy --netcopy-sizes=1400
  --netcopy-threads=1 --netcopy-patterns=stream`` (the rate calibrated to under 1% loss,
  the senders on CPU 0 and the sink on CPU 1 as --netcopy-pin=auto places them). Goodput =
  ``udp.goodput_gbps`` (bytes the sink verified per second of round).

Prints each pair's goodput and loss for both, the ratio, and the median ratio. Needs iperf3
(Debian package iperf3) and two CPUs; uses loopback only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PORT = "5298"
LOSS_BUDGET = 0.01
HALVINGS = 6
BISECTIONS = 3


def _iperf3_once(size: int, seconds: int, rate: float) -> tuple[float, float, float]:
    """(goodput Gbps, loss fraction, the client's sent bits/s) of one iperf3 -u run."""
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-A", "1", "-B", "127.0.0.1", "-p", PORT],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        out = subprocess.run(
            ["iperf3", "-u", "-b", str(int(rate)), "-l", str(size), "-c", "127.0.0.1",
             "-p", PORT, "-A", "0", "-t", str(seconds), "-J"],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        ).stdout  # fmt: skip
    finally:
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    return _iperf3_figures(json.loads(out)["end"])


def _iperf3_figures(end: dict[str, Any]) -> tuple[float, float, float]:
    """iperf3 3.10+ reports the receiver's side as ``sum_received`` (bytes it got); older
    ones only ``sum`` (bytes sent, with the receiver's lost_packets of packets)."""
    received = end.get("sum_received") or end["sum"]
    sent = end.get("sum_sent") or end["sum"]
    packets, lost = received.get("packets"), received.get("lost_packets")
    loss = lost / packets if packets else received.get("lost_percent", 0.0) / 100
    got = received["bytes"] if "sum_received" in end else received["bytes"] * (1 - loss)
    return got * 8 / received["seconds"] / 1e9, loss, sent["bits_per_second"]


def iperf3(size: int, seconds: int) -> tuple[float, float, float]:
    """(goodput Gbps, loss fraction, the -b rate used; 0: unpaced) within the loss budget:
    unpaced, else halved until under the budget, then bisected between the last rate over
    it and the first under it (``BISECTIONS`` steps), keeping the best goodput under it."""
    rate = 0.0
    goodput, loss, sent = _iperf3_once(size, seconds, rate)
    over = sent
    for _ in range(HALVINGS):
        if loss <= LOSS_BUDGET:
            break
        over = rate or sent
        rate = over / 2
        goodput, loss, sent = _iperf3_once(size, seconds, rate)
    if not rate or loss > LOSS_BUDGET:
        return goodput, loss, rate
    best, under = (goodput, loss, rate), rate
    for _ in range(BISECTIONS):
        mid = (under + over) / 2
        got, lost, _ = _iperf3_once(size, seconds, mid)
        if lost <= LOSS_BUDGET:
            under = mid
            if got > best[0]:
                best = (got, lost, mid)
        else:
            over = mid
    return best


def ours(size: int, out: Path) -> tuple[float, float, dict[str, Any]]:
    subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", "--netcopy-modes=udp_two_copy", f"--netcopy-sizes={size}",
         "--netcopy-threads=1", "--netcopy-patterns=stream", f"--benchmark-json={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    udp = json.loads(out.read_text())["benchmarks"][0]["extra_info"]["udp"]
    return udp["goodput_gbps"], udp["loss_fraction"], udp["rate"]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1400)
    args = parser.parse_args()
    if shutil.which("iperf3") is None:
        print("udp_anchor: needs iperf3 (Debian package iperf3)", file=sys.stderr)
        return 2
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            out = Path(tmp) / f"ours-{i}.json"
            if i % 2:
                mine = ours(args.size, out)
                theirs = iperf3(args.size, args.seconds)
            else:
                theirs = iperf3(args.size, args.seconds)
                mine = ours(args.size, out)
            ratios.append(mine[0] / theirs[0])
            paced = f"-b {theirs[2] / 1e9:.2f}G" if theirs[2] else "-b 0"
            print(f"pair {i + 1}: iperf3 {theirs[0]:.3f} Gbps goodput, {theirs[1]:.2%} lost "
                  f"({paced}); udp_two_copy {mine[0]:.3f} Gbps goodput, {mine[1]:.2%} lost "
                  f"(rate {mine[2]}); ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip
    print(f"median ratio {statistics.median(ratios):.2f} over {len(ratios)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
