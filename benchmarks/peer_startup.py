"""What starting the sink over ssh adds to a session (issue 14: at most 1 s).

    sudo python benchmarks/peer_startup.py [--runs 5]

Builds two hosts from a network namespace (tests/netns.py: 198.18.0.1/.2) with a
throwaway sshd in it (the test suite's ``sshd`` fixture, the same keys and config)
and times, ``--runs`` times each, from the start of the peer to its start-up
report (``SinkProcess.start``, the sink listening and its report read):

- local: the local sink process (no peer option);
- netns: ``--netcopy-peer='ip netns exec NS env -C /'`` (the source down the pipe);
- ssh:   ``--netcopy-peer='ssh -T -i KEY ... root@198.18.0.2'`` (a new ssh session
  each time, no connection sharing), the address from SSH_CONNECTION.

Prints the median and the range per way, and ssh's median minus local's. Needs root
and openssh-server; removes the namespace and stops sshd at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import netns

from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pipe import PipePeer

PYTHON = "/usr/bin/python3 -I"


def timed(make: Callable[[], SinkProcess], runs: int) -> list[float]:
    """Seconds from start() to the start-up report read, ``runs`` times."""
    out = []
    for _ in range(runs):
        peer = make()
        t0 = time.perf_counter()
        try:
            peer.start()
            out.append(time.perf_counter() - t0)
        finally:
            peer.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reason = netns.why_not() or netns.sshd_why_not()
    if reason:
        print(f"peer_startup: {reason}", file=sys.stderr)
        return 2
    hosts = netns.build()
    try:
        with tempfile.TemporaryDirectory() as tmp, hosts.link():
            sshd = netns.start_sshd(hosts, tmp)
            try:
                ways: dict[str, Callable[[], SinkProcess]] = {
                    "local": lambda: SinkProcess(timeout=20),
                    "netns": lambda: PipePeer(
                        command=hosts.peer_command(),
                        python=PYTHON,
                        address=netns.PEER_ADDRESS,
                        timeout=20,
                    ),
                    "ssh": lambda: PipePeer(command=sshd.ssh(), python=PYTHON, timeout=20),
                }
                times = {name: timed(make, args.runs) for name, make in ways.items()}
            finally:
                netns.stop_sshd(sshd)
    finally:
        netns.remove(hosts.ns)
    for name, secs in times.items():
        print(
            f"{name:6} median {statistics.median(secs) * 1000:7.1f} ms  "
            f"range {min(secs) * 1000:.1f}-{max(secs) * 1000:.1f} ms  ({len(secs)} runs)"
        )
    added = statistics.median(times["ssh"]) - statistics.median(times["local"])
    print(f"ssh adds {added * 1000:.1f} ms to a session's start (goal: at most 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
