"""Two hosts on one machine: a network namespace ``ncpeer-<pid>-<hex>`` and a veth pair.

198.18.0.1/24 on the root side, 198.18.0.2/24 inside the namespace (RFC 2544
addresses); no other address is ever used. The namespace side keeps its
address; the root side gets 198.18.0.1 only while a test holds the link
(a lock file), so pytest-xdist workers, each with their own pair, never have
the same subnet on two interfaces at once. Removed by a finalizer, at exit,
and by a sweep of the prefix at the next session (names carry the creator's
pid: a namespace whose creator is gone is stale).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

PREFIX = "ncpeer-"
ROOT_ADDRESS, PEER_ADDRESS = "198.18.0.1", "198.18.0.2"
LOCK = "/run/ncpeer-link.lock"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def why_not() -> str | None:
    """Why two hosts cannot be built here (None: they can)."""
    if os.geteuid() != 0:
        return "needs root: network namespaces and veth pairs (run as root)"
    if shutil.which("ip") is None:
        return "needs the ip command (Debian package iproute2)"
    return None


def sweep() -> None:
    """Delete the namespaces of sessions that are gone (their veth pairs go with them)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            remove(name)


def remove(ns: str) -> None:
    for pid in ip("netns", "pids", ns, check=False).stdout.split():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid), 9)
    ip("netns", "delete", ns, check=False)


@dataclass
class TwoHosts:
    ns: str
    root_if: str
    peer_if: str

    def pids(self) -> list[int]:
        """The processes running inside the namespace."""
        return [int(p) for p in ip("netns", "pids", self.ns, check=False).stdout.split()]

    def peer_command(self) -> str:
        """The peer prefix: into the namespace, cwd / (the package is not importable there)."""
        return f"ip netns exec {self.ns} env -C /"

    @contextlib.contextmanager
    def link(self) -> Iterator[TwoHosts]:
        """Hold the link: 198.18.0.1/24 on the root side for the duration (one holder at a time)."""
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ip("addr", "add", f"{ROOT_ADDRESS}/24", "dev", self.root_if)
            try:
                yield self
            finally:
                ip("addr", "del", f"{ROOT_ADDRESS}/24", "dev", self.root_if, check=False)
                ip("-n", self.ns, "link", "set", self.peer_if, "up", check=False)
                ip("link", "set", self.root_if, "up", check=False)
                subprocess.run(
                    ["ip", "netns", "exec", self.ns, "tc", "qdisc", "del", "dev", self.peer_if,
                     "root"], capture_output=True, timeout=30, check=False,
                )  # fmt: skip


def build() -> TwoHosts:
    sweep()
    tag = secrets.token_hex(3)
    hosts = TwoHosts(f"{PREFIX}{os.getpid()}-{tag}", f"ncv{tag}", f"ncw{tag}")
    atexit.register(remove, hosts.ns)
    ip("netns", "add", hosts.ns)
    try:
        ip("link", "add", hosts.root_if, "type", "veth", "peer", "name", hosts.peer_if,
           "netns", hosts.ns)  # fmt: skip
        ip("-n", hosts.ns, "addr", "add", f"{PEER_ADDRESS}/24", "dev", hosts.peer_if)
        ip("-n", hosts.ns, "link", "set", "lo", "up")
        ip("-n", hosts.ns, "link", "set", hosts.peer_if, "up")
        ip("link", "set", hosts.root_if, "up")
    except BaseException:
        remove(hosts.ns)
        raise
    return hosts
