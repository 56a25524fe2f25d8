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
import time
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


SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    """An sshd inside the namespace on 198.18.0.2:22 with a throwaway host key and client key."""

    proc: subprocess.Popen[bytes]
    key: str
    wrong_key: str
    log: str

    def ssh(self, key: str | None = None, host: str = PEER_ADDRESS) -> str:
        """The peer prefix: ``ssh -T`` with the client key, no host key checks, no prompts."""
        return (
            f"ssh -T -i {key or self.key} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=5 "
            f"root@{host}"
        )


def sshd_why_not() -> str | None:
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        return "needs openssh-server (Debian package openssh-server)"
    return None


def keygen(path: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
                   capture_output=True, timeout=30, check=True)  # fmt: skip


def start_sshd(hosts: TwoHosts, tmp: str) -> Sshd:
    """sshd -D -e in the namespace, listening on 198.18.0.2 only; waits (<= 10 s) for its port."""
    for name in ("host_key", "client_key", "wrong_key"):
        keygen(os.path.join(tmp, name))
    with open(os.path.join(tmp, "client_key.pub")) as pub:
        authorized = pub.read()
    with open(os.path.join(tmp, "authorized_keys"), "w") as out:
        out.write(authorized)
    config = os.path.join(tmp, "sshd_config")
    with open(config, "w") as out:
        out.write(
            f"Port 22\nListenAddress {PEER_ADDRESS}\nHostKey {tmp}/host_key\n"
            f"AuthorizedKeysFile {tmp}/authorized_keys\nPidFile {tmp}/sshd.pid\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n"
        )
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    log = os.path.join(tmp, "sshd.log")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", hosts.ns, SSHD, "-D", "-e", "-f", config],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err,
        )  # fmt: skip
    sshd = Sshd(proc, os.path.join(tmp, "client_key"), os.path.join(tmp, "wrong_key"), log)
    deadline = time.monotonic() + 10
    while f"{PEER_ADDRESS}:22 " not in _listening(hosts):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_sshd(sshd)
            with open(log) as text:
                raise RuntimeError(f"sshd did not start in {hosts.ns}: {text.read().strip()}")
        time.sleep(0.05)
    return sshd


def _listening(hosts: TwoHosts) -> str:
    return subprocess.run(["ip", "netns", "exec", hosts.ns, "ss", "-Hltn"], capture_output=True,
                          text=True, timeout=30, check=False).stdout  # fmt: skip


def stop_sshd(sshd: Sshd) -> None:
    sshd.proc.terminate()
    try:
        sshd.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sshd.proc.kill()
        sshd.proc.wait(timeout=10)
