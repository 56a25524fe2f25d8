"""The transmit-only target: UDP forwarded out of a namespace into a blackhole route.

On one host every datagram or segment delivered to a local socket is copied
(``MSG_ZEROCOPY`` completions come back ``SO_EE_CODE_ZEROCOPY_COPIED``). A
datagram *forwarded* out of another namespace is not, on kernels with the 2025
change "net: preserve MSG_ZEROCOPY with forwarding". :class:`Blackhole` builds
that path with the sender in the root namespace (docs/blackhole.md)::

    root ncbh-r-XXXXXX 198.18.64.1/30  --veth, MTU 65535--  ncbh-f-XXXXXX 198.18.64.2/30
    root: 198.19.64.0/24 via 198.18.64.2          namespace ncbh-PID-XXXXXX:
                                                  ip_forward=1, blackhole 198.19.64.0/24

A datagram to 198.19.64.2 crosses the veth, is forwarded and dropped: nothing
receives it, so the sender is measured alone. Root only (CAP_NET_ADMIN); one
topology per machine at a time (a lock file); torn down on exit, at interpreter
exit, and any ``ncbh-`` namespace a killed run left is removed by the next one.
:meth:`Blackhole.probe` asks the kernel whether it really skips the copy.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import secrets
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Any, Self

from pytest_netcopy.results.record import KERNEL_COPIES_NOTE
from pytest_netcopy.send.zerocopy import (
    MSG_ZEROCOPY,
    SO_ZEROCOPY,
    CompletionTracker,
    parse_errqueue_cmsgs,
)
from pytest_netcopy.transport.errors import TransferError

PREFIX = "ncbh-"
ROOT_ADDRESS, FORWARD_ADDRESS, LINK_PREFIX = "198.18.64.1", "198.18.64.2", 30
BLACKHOLE_NET = "198.19.64.0/24"
TARGET_ADDRESS = "198.19.64.2"
#: the veth's MTU: the largest a veth takes, above the largest datagram (65504 B) + headers
MTU = 65535
#: the discard port; nothing listens anywhere on this path
TARGET_PORT = 9
LOCK = "/run/ncbh.lock"
#: what a kernel that copies on forwarding gets told (issue 15)
COPIES = KERNEL_COPIES_NOTE
COMMAND_TIMEOUT = 30.0


class BlackholeError(TransferError):
    """The topology could not be built or torn down; one line naming the command."""


class BlackholeUnavailable(BlackholeError):
    """This process cannot build the topology at all (not root, no ``ip``); says why."""


def why_not() -> str | None:
    """Why the topology cannot be built here (None: it can)."""
    if os.geteuid() != 0 or not _has_net_admin():
        return "needs root (CAP_NET_ADMIN) to create a network namespace, a veth pair and routes"
    for tool, package in (("ip", "iproute2"), ("sysctl", "procps")):
        if shutil.which(tool) is None:
            return f"needs the {tool} command (Debian package {package})"
    return None


def _has_net_admin(status: str = "/proc/self/status") -> bool:
    try:
        with open(status, encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 12))  # CAP_NET_ADMIN
    except (OSError, ValueError):
        pass
    return False


def run(args: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Run one command; its failure is a one-line :class:`BlackholeError` with its stderr tail."""
    shown = " ".join(args)
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BlackholeError(f"blackhole: `{shown}` did not finish in {timeout:g} s") from None
    except OSError as exc:
        raise BlackholeError(f"blackhole: `{shown}` could not run: {exc.strerror}") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.split())[-200:] or f"exit status {done.returncode}"
        raise BlackholeError(f"blackhole: `{shown}` failed: {tail}")
    return done.stdout


def namespaces() -> list[str]:
    """The ``ncbh-`` namespaces on this machine."""
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        check=False,
    ).stdout  # fmt: skip
    return [
        w[0]
        for w in (line.split() for line in listed.splitlines())
        if w and w[0].startswith(PREFIX)
    ]


def stale_links() -> list[str]:
    """The root namespace's ``ncbh-`` links (a veth end outlives its namespace for a moment)."""
    listed = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        check=False,
    ).stdout  # fmt: skip
    names = (
        line.split(":")[1].strip().split("@")[0] for line in listed.splitlines() if ":" in line
    )
    return [name for name in names if name.startswith(PREFIX)]


def remove_link(name: str) -> None:
    """Delete a veth pair by one end: both ends and the routes through it go at once
    (deleting the namespace alone removes them later, in the kernel's own time)."""
    with contextlib.suppress(BlackholeError):
        run(["ip", "link", "delete", name])


def remove_namespace(name: str) -> None:
    """Delete a namespace (its veth end, the peer end and the routes through it go with it)."""
    with contextlib.suppress(BlackholeError):
        for pid in run(["ip", "netns", "pids", name]).split():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), 9)
    with contextlib.suppress(BlackholeError):
        run(["ip", "netns", "delete", name])


@dataclass(frozen=True)
class ProbeResult:
    """What :meth:`Blackhole.probe` saw: datagrams sent and how their completions came back."""

    size: int
    sends: int
    completions: int
    copied: int

    @property
    def copied_fraction(self) -> float | None:
        return self.copied / self.completions if self.completions else None

    @property
    def effective(self) -> bool:
        """Zero-copy took effect: completions came back, none of them copied."""
        return self.completions > 0 and self.copied == 0

    @property
    def reason(self) -> str | None:
        """Why zero-copy does not take effect here (None: it does)."""
        if self.effective:
            return None
        if not self.completions:
            return f"no zero-copy completion came back for {self.sends} datagrams"
        if self.copied == self.completions:
            return COPIES
        return (
            f"{COPIES} ({self.copied} of {self.completions} completions of {self.size} B "
            "datagrams were copied)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "sends": self.sends,
            "completions": self.completions,
            "copied": self.copied,
            "copied_fraction": self.copied_fraction,
            "zerocopy_effective": self.effective,
        }


class Blackhole:
    """The transmit-only topology as a context manager (root only; see the module doc)."""

    def __init__(self, *, timeout: float = 60.0, port: int = TARGET_PORT) -> None:
        self.timeout = timeout
        self.port = port
        tag = secrets.token_hex(3)
        self.namespace = f"{PREFIX}{os.getpid()}-{tag}"
        self.root_if, self.forward_if = f"{PREFIX}r-{tag}", f"{PREFIX}f-{tag}"
        self._lock: IO[str] | None = None
        self._built = False

    @property
    def target(self) -> tuple[str, int]:
        """Where the senders send: (host, port), reached through the forwarding namespace."""
        return TARGET_ADDRESS, self.port

    def __enter__(self) -> Self:
        return self.open()

    def open(self) -> Self:
        """Build the topology (``with`` does it); :meth:`close` tears it down."""
        reason = why_not()
        if reason:
            raise BlackholeUnavailable(f"blackhole target: {reason}")
        self._take_lock()
        try:
            for link in stale_links():  # under the lock, every other one is a killed run's
                remove_link(link)
            for stale in namespaces():
                remove_namespace(stale)
            atexit.register(self.close)
            self._built = True
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take_lock(self) -> None:
        lock = open(LOCK, "w")  # noqa: SIM115 - held until close()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise BlackholeError(
                        f"blackhole: another blackhole topology held {LOCK} for "
                        f"{self.timeout:g} s (one per machine at a time)"
                    ) from None
                time.sleep(0.1)
        self._lock = lock

    def _build(self) -> None:
        ns, root_if, fwd_if = self.namespace, self.root_if, self.forward_if
        fwd_mac = "02:6e:62:68:00:02"
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", root_if, "mtu", str(MTU), "type", "veth", "peer", "name",
             fwd_if, "netns", ns, "mtu", str(MTU), "address", fwd_mac])  # fmt: skip
        run(["ip", "-n", ns, "addr", "add", f"{FORWARD_ADDRESS}/{LINK_PREFIX}", "dev", fwd_if])
        run(["ip", "-n", ns, "link", "set", fwd_if, "up"])
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        run(["ip", "-n", ns, "route", "add", "blackhole", BLACKHOLE_NET])
        run(["ip", "addr", "add", f"{ROOT_ADDRESS}/{LINK_PREFIX}", "dev", root_if])
        run(["ip", "link", "set", root_if, "up"])
        # a permanent neighbour: no datagram waits for (or is dropped by) address resolution
        run(["ip", "neigh", "replace", FORWARD_ADDRESS, "lladdr", fwd_mac, "dev", root_if,
             "nud", "permanent"])  # fmt: skip
        run(["ip", "route", "add", BLACKHOLE_NET, "via", FORWARD_ADDRESS, "dev", root_if])

    def close(self) -> None:
        """Tear the topology down (idempotent; also at interpreter exit)."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._built:
            self._built = False
            remove_link(self.root_if)  # now: the veth pair and the route through it
            remove_namespace(self.namespace)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def facts(self) -> dict[str, Any]:
        """How the topology was built, for ``machine_info``."""
        return {
            "namespace": self.namespace,
            "root_address": f"{ROOT_ADDRESS}/{LINK_PREFIX}",
            "forward_address": f"{FORWARD_ADDRESS}/{LINK_PREFIX}",
            "route": f"{BLACKHOLE_NET} via {FORWARD_ADDRESS} (blackhole there)",
            "target": f"{TARGET_ADDRESS}:{self.port}",
            "mtu": MTU,
        }

    def probe(self, count: int = 2000, size: int = 4096) -> ProbeResult:
        """Send ``count`` MSG_ZEROCOPY datagrams of ``size`` bytes to the target and count
        their completions and how many the kernel copied (waits at most ``timeout``)."""
        if not self._built:
            raise BlackholeError("blackhole: probe() outside the with block (nothing built)")
        return probe_path(self.target, count, size, self.timeout)


def probe_path(target: tuple[str, int], count: int, size: int, timeout: float) -> ProbeResult:
    """:meth:`Blackhole.probe` on any connected UDP path (tests probe loopback with it too)."""
    tracker = CompletionTracker()
    payload = memoryview(bytearray(size))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
        except OSError as exc:
            raise BlackholeError(f"blackhole: setsockopt(SO_ZEROCOPY) failed: {exc}") from None
        sock.connect(target)
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        sent = 0
        while sent < count:
            try:
                sock.sendmsg([payload], (), MSG_ZEROCOPY)
            except (BlockingIOError, OSError) as exc:
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise BlackholeError(f"blackhole: probe send failed: {exc}") from None
                if not _reap(sock, tracker, deadline, block=True) and time.monotonic() > deadline:
                    break  # nothing completes: the result says so
                continue
            tracker.issue()
            sent += 1
            _reap(sock, tracker, deadline, block=False)
        while not tracker.all_complete():
            if not _reap(sock, tracker, deadline, block=True):
                break
    return ProbeResult(size, sent, tracker.completions, tracker.copied)


def _reap(sock: socket.socket, tracker: CompletionTracker, deadline: float, block: bool) -> int:
    """Read the queued completions; with ``block`` wait (until ``deadline``) for one."""
    got = 0
    while True:
        try:
            _, ancdata, _, _ = sock.recvmsg(0, socket.CMSG_SPACE(64), socket.MSG_ERRQUEUE)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if got or not block or left <= 0:
                return got
            poller = select.poll()
            poller.register(sock.fileno(), 0)  # POLLERR (the error queue) is always reported
            poller.poll(min(left, 0.5) * 1000)
            continue
        for note in parse_errqueue_cmsgs(ancdata):
            got += tracker.add(note)
