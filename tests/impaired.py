"""An impaired link between two hosts on one machine, without netem.

This kernel has no ``sch_netem`` (nor ``fq``), so ``tc qdisc ... netem delay 2ms`` cannot
delay a veth here. Instead two TUN devices, one in the root namespace (198.18.9.1) and one
moved into a namespace ``ncpeer-<pid>-dl<hex>`` (198.18.9.2), are joined by a forwarder
process (this file run as a script) that copies every IP packet from one to the other and
can delay, drop or reorder the packets going towards the namespace (the sender's data):

- ``delay_ms``: each such packet leaves that many milliseconds after it arrived (as netem
  delay on the root side's egress; the returning ACKs are not delayed);
- ``loss_every``: every N-th such packet is dropped (deterministic, unlike netem's random loss);
- ``reorder_every``: every N-th such packet is held back and sent after the next one.

A real link as far as TCP and UDP can tell (its own MTU, its own RTT), removed afterwards:
the forwarder holds the only descriptors of the TUN devices, so they go with it, and the
namespace is deleted (also by ``netns.sweep`` at the next session if this one was killed).
The root side's address is held under a lock, one impaired link at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import os
import secrets
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import netns

ROOT_ADDRESS, PEER_ADDRESS = "198.18.9.1", "198.18.9.2"
LOCK = "/run/ncpeer-impaired.lock"
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def why_not() -> str | None:
    """Why an impaired link cannot be built here (None: it can)."""
    reason = netns.why_not()
    if reason is None and not os.path.exists("/dev/net/tun"):
        reason = "needs /dev/net/tun (the tun driver) for the impaired link"
    return reason


def _tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


@dataclass
class ImpairedLink:
    ns: str
    root_if: str
    peer_if: str
    forwarder: subprocess.Popen[bytes]

    def peer_command(self) -> str:
        """The peer prefix: into the namespace, cwd / (the package is not importable there)."""
        return f"ip netns exec {self.ns} env -C /"

    def pids(self) -> list[int]:
        return [int(p) for p in netns.ip("netns", "pids", self.ns, check=False).stdout.split()]


@contextlib.contextmanager
def impaired_link(
    *, delay_ms: float = 0.0, loss_every: int = 0, reorder_every: int = 0, mtu: int = 9000
) -> Iterator[ImpairedLink]:
    """Build the link, yield it, remove it (also when the body raises)."""
    netns.sweep()
    tag = secrets.token_hex(3)
    ns, root_if, peer_if = f"{netns.PREFIX}{os.getpid()}-dl{tag}", f"ncta{tag}", f"nctb{tag}"
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fds: list[int] = []
        forwarder = None
        netns.ip("netns", "add", ns)
        try:
            fds = [_tun(root_if), _tun(peer_if)]
            netns.ip("link", "set", peer_if, "netns", ns)
            for where, dev, local, remote in (
                ((), root_if, ROOT_ADDRESS, PEER_ADDRESS),
                (("-n", ns), peer_if, PEER_ADDRESS, ROOT_ADDRESS),
            ):
                netns.ip(*where, "addr", "add", local, "peer", remote, "dev", dev)
                netns.ip(*where, "link", "set", dev, "mtu", str(mtu), "up")
            netns.ip("-n", ns, "link", "set", "lo", "up")
            forwarder = subprocess.Popen(
                [sys.executable, __file__, "--delay-ms", str(delay_ms),
                 "--loss-every", str(loss_every), "--reorder-every", str(reorder_every),
                 str(fds[0]), str(fds[1])],
                pass_fds=fds, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            for fd in fds:
                os.close(fd)
            fds = []
            yield ImpairedLink(ns, root_if, peer_if, forwarder)
        finally:
            for fd in fds:
                os.close(fd)
            if forwarder is not None:
                forwarder.terminate()
                try:
                    forwarder.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    forwarder.kill()
                    forwarder.wait(timeout=10)
            netns.remove(ns)


class _Forwarder:
    """Packets from ``a`` to ``b`` impaired, from ``b`` to ``a`` as they come."""

    def __init__(self, a: int, b: int, args: argparse.Namespace) -> None:
        self.a, self.b = a, b
        self.delay = args.delay_ms / 1000.0
        self.loss_every, self.reorder_every = args.loss_every, args.reorder_every
        self.count = 0
        self.held: bytes | None = None
        self.due: list[tuple[float, int, bytes]] = []  # (when, order, packet) towards b

    def towards_b(self, packet: bytes, now: float) -> None:
        self.count += 1
        if self.loss_every and self.count % self.loss_every == 0:
            return
        if self.reorder_every and self.count % self.reorder_every == 0 and self.held is None:
            self.held = packet  # goes out right after the next packet
            return
        self._queue(packet, now)
        if self.held is not None:
            self._queue(self.held, now)
            self.held = None

    def _queue(self, packet: bytes, now: float) -> None:
        if self.delay <= 0:
            self._write(self.b, packet)
        else:
            heapq.heappush(self.due, (now + self.delay, self.count, packet))

    @staticmethod
    def _write(fd: int, packet: bytes) -> None:
        with contextlib.suppress(OSError):  # a device going away, a full queue: a lost packet
            os.write(fd, packet)

    def run(self) -> None:
        for fd in (self.a, self.b):
            os.set_blocking(fd, False)
        while True:
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                self._write(self.b, heapq.heappop(self.due)[2])
            wait = max(0.0, self.due[0][0] - now) if self.due else 1.0
            ready, _, _ = select.select([self.a, self.b], [], [], wait)
            for fd in ready:
                for _ in range(64):  # a burst, then look at the clock again
                    try:
                        packet = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if fd == self.a:
                        self.towards_b(packet, time.monotonic())
                    else:
                        self._write(self.a, packet)


def main() -> None:
    parser = argparse.ArgumentParser(description="forward IP packets between two TUN devices")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--loss-every", type=int, default=0)
    parser.add_argument("--reorder-every", type=int, default=0)
    parser.add_argument("a", type=int)
    parser.add_argument("b", type=int)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _Forwarder(args.a, args.b, args).run()


if __name__ == "__main__":
    main()
