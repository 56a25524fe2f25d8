"""two_copy across a veth pair against iperf3 on the same pair and CPUs (issue 14: >= 0.9x).

    sudo python benchmarks/peer_anchor.py [--pairs 3] [--seconds 3] [--size 64K]

Builds two hosts from a network namespace (tests/netns.py: 198.18.0.1/.2) and runs,
``--pairs`` times back to back, alternating which goes first:

- iperf3: server ``ip netns exec NS iperf3 -s -1 -A 1 -B 198.18.0.2``, client
  ``iperf3 -c 198.18.0.2 -l 64K -t SECONDS -A 0 -C cubic -J`` (received bits/s);
- ours:   ``pytest benchmarks/ -p no:xdist --netcopy-peer='ip netns exec NS env -C /'
  --netcopy-peer-address=198.18.0.2 --netcopy-peer-cpus=1 --netcopy-sizes=64K
  --netcopy-threads=1 --netcopy-modes=two_copy --netcopy-congestion=cubic``.

Prints each pair's Gbps, retransmits and ratio, and the median ratio. Needs root,
iperf3 (Debian package iperf3) and iproute2; removes the namespace at the end.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import netns

ROOT = Path(__file__).resolve().parent.parent
PORT = "5299"


def iperf3(hosts: netns.TwoHosts, size: str, seconds: int) -> tuple[float, int | None]:
    server = subprocess.Popen(
        ["ip", "netns", "exec", hosts.ns, "iperf3", "-s", "-1", "-A", "1",
         "-B", netns.PEER_ADDRESS, "-p", PORT],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        out = subprocess.run(
            ["iperf3", "-c", netns.PEER_ADDRESS, "-p", PORT, "-l", size, "-t", str(seconds),
             "-A", "0", "-C", "cubic", "-J"],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        ).stdout  # fmt: skip
    finally:
        server.wait(timeout=30)
    end = json.loads(out)["end"]
    return end["sum_received"]["bits_per_second"] / 1e9, end["sum_sent"].get("retransmits")


def ours(hosts: netns.TwoHosts, size: str, out: Path) -> tuple[float, int | None]:
    subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", f"--netcopy-peer={hosts.peer_command()}",
         f"--netcopy-peer-address={netns.PEER_ADDRESS}", "--netcopy-peer-cpus=1",
         f"--netcopy-sizes={size}", "--netcopy-threads=1", "--netcopy-modes=two_copy",
         "--netcopy-patterns=stream", "--netcopy-congestion=cubic", f"--benchmark-json={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    extra = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    return extra["throughput_gbps"], extra.get("retransmits")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--size", default="64K")
    args = parser.parse_args()
    reason = netns.why_not() or (
        None if shutil.which("iperf3") else "needs iperf3 (Debian package iperf3)"
    )
    if reason:
        print(f"peer_anchor: {reason}", file=sys.stderr)
        return 2
    hosts = netns.build()
    ratios = []
    try:
        with tempfile.TemporaryDirectory() as tmp, hosts.link():
            for i in range(args.pairs):
                out = Path(tmp) / f"ours-{i}.json"
                if i % 2:
                    mine = ours(hosts, args.size, out)
                    theirs = iperf3(hosts, args.size, args.seconds)
                else:
                    theirs = iperf3(hosts, args.size, args.seconds)
                    mine = ours(hosts, args.size, out)
                ratios.append(mine[0] / theirs[0])
                print(f"pair {i + 1}: iperf3 {theirs[0]:.2f} Gbps ({theirs[1]} retransmits), "
                      f"two_copy {mine[0]:.2f} Gbps ({mine[1]} retransmits), "
                      f"ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip
    finally:
        netns.remove(hosts.ns)
    print(f"median ratio {statistics.median(ratios):.2f} over {len(ratios)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
