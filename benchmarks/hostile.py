"""Does a hostile neighbour change a sweep? 1,000 bad connections to the sink during one.

    python benchmarks/hostile.py [--connections 1000] [--concurrency 64] [--hold 0.5]
                                 [--max-seconds 120] [-- PYTEST ARGS]

It runs a small sweep in a fresh pytest process (by default ``pytest
benchmarks/test_sweep.py --netcopy-sizes=4096,65536 --netcopy-threads=1,2
--netcopy-round-time=0.02 --netcopy-rounds=5``, replaced by any PYTEST ARGS)
with a small plugin of this file that writes the sink's port and pid to a file
before every test. As soon as a port is known it opens ``--connections``
connections to 127.0.0.1:PORT, an equal share of each kind:

* garbage:     64 random bytes;
* wrong_token: a well-formed HELLO with a random token, then data;
* slow_drip:   a HELLO one byte every 0.1 s;
* silent:      connects and sends nothing;
* half_open:   half a HELLO, then the write side shut.

Each is held at most ``--hold`` seconds (or until the sink cuts it), at most
``--concurrency`` at a time; the attack stops when all are made, when the
sweep ends or after ``--max-seconds``. Then it reports: the sweep's outcome
(every benchmark passed, every payload intact from the JSON), whether the
sink stayed the same process (never died or was replaced), the strangers the
summary says were refused, and per kind how many connections were made and
cut by the sink. Exit status 0 when nothing changed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pytest_netcopy.sink import wire

ROOT = Path(__file__).resolve().parent.parent
SWEEP = [
    str(ROOT / "benchmarks" / "test_sweep.py"),
    "--netcopy-sizes=4096,65536", "--netcopy-threads=1,2",
    "--netcopy-round-time=0.02", "--netcopy-rounds=5",
]  # fmt: skip
KINDS = ("garbage", "wrong_token", "slow_drip", "silent", "half_open")


class SinkSpy:
    """The inner pytest's plugin: the sink's port and pid, written before every test."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def pytest_runtest_call(self, item: Any) -> None:
        if "netcopy_sink" not in getattr(item, "fixturenames", ()):
            return
        sink = item._request.getfixturevalue("netcopy_sink")
        sink.ensure_running()  # the test would start it anyway
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{sink.port} {sink.pid} {sink.starts}\n")
        tmp.replace(self.path)


def inner(spy: str, args: list[str]) -> int:
    """The sweep, in this (child) process."""
    import pytest

    return int(pytest.main(args, plugins=[SinkSpy(Path(spy))]))


def read_spy(path: Path) -> tuple[int, int, int] | None:
    try:
        port, pid, starts = path.read_text().split()
    except (OSError, ValueError):
        return None
    return int(port), int(pid), int(starts)


def hello(token: bytes) -> bytes:
    return wire.HELLO.pack(wire.HELLO_MAGIC, token, 1, 4096)


def attack(kind: str, port: int, hold: float) -> bool:
    """One hostile connection of ``kind``; True when the sink cut it within ``hold``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        deadline = time.monotonic() + hold
        if kind == "garbage":
            sock.sendall(secrets.token_bytes(64))
        elif kind == "wrong_token":
            sock.sendall(hello(secrets.token_bytes(16)) + bytes(4096))
        elif kind == "half_open":
            sock.sendall(hello(secrets.token_bytes(16))[:14])
            sock.shutdown(socket.SHUT_WR)
        data = hello(secrets.token_bytes(16)) if kind == "slow_drip" else b""
        sent = 0
        while time.monotonic() < deadline:
            if sent < len(data):
                try:
                    sock.sendall(data[sent : sent + 1])
                except OSError:
                    return True
                sent += 1
            wait = min(0.1, max(0.0, deadline - time.monotonic()))
            if select.select([sock], [], [], wait)[0]:
                try:
                    if sock.recv(65536) == b"":
                        return True
                except OSError:
                    return True
        return False


class Attack:
    """``count`` connections by ``concurrency`` threads, stopped by :attr:`stop` or the count."""

    def __init__(self, count: int, concurrency: int, hold: float, spy: Path) -> None:
        self.jobs: queue.Queue[str] = queue.Queue()
        for i in range(count):
            self.jobs.put(KINDS[i % len(KINDS)])
        self.hold, self.spy = hold, spy
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.made: Counter[str] = Counter()
        self.cut: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.threads = [
            threading.Thread(target=self._work, daemon=True) for _ in range(concurrency)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))

    def _work(self) -> None:
        while not self.stop.is_set():
            try:
                kind = self.jobs.get_nowait()
            except queue.Empty:
                return
            spied = read_spy(self.spy)
            if spied is None:
                return
            try:
                cut = attack(kind, spied[0], self.hold)
            except OSError:
                with self.lock:
                    self.failed[kind] += 1
                continue
            with self.lock:
                self.made[kind] += 1
                self.cut[kind] += int(cut)


def run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    work = Path(tempfile.mkdtemp(prefix="netcopy-hostile-"))
    spy, report = work / "sink.txt", work / "sweep.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--inner", str(spy), "--"]
    cmd += [*pytest_args, "-p", "no:cacheprovider", f"--benchmark-json={report}"]
    started = time.monotonic()
    attack_ = Attack(args.connections, args.concurrency, args.hold, spy)
    with (work / "pytest.out").open("w+") as out:
        sweep = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            first = wait_for_spy(spy, sweep, args.max_seconds)
            if first is not None:
                attack_.start()
            while sweep.poll() is None and time.monotonic() - started < args.max_seconds:
                if attack_.jobs.empty() and not any(t.is_alive() for t in attack_.threads):
                    break
                time.sleep(0.05)
            attack_done = time.monotonic() - started
            during = sweep.poll() is None
            sweep.wait(timeout=max(1.0, args.max_seconds - (time.monotonic() - started)))
        finally:
            attack_.stop.set()
            if sweep.poll() is None:
                sweep.kill()
                sweep.wait(timeout=10)
        attack_.join(args.hold + 6)
        out.seek(0)
        text = out.read()
    last = read_spy(spy)
    return summarize(
        args, text, report, first, last, attack_, sweep.returncode, during, attack_done
    )


def wait_for_spy(spy: Path, sweep: subprocess.Popen[bytes], limit: float) -> Any:
    end = time.monotonic() + limit
    while time.monotonic() < end and sweep.poll() is None:
        spied = read_spy(spy)
        if spied is not None:
            return spied
        time.sleep(0.01)
    return None


def summarize(
    args: argparse.Namespace, text: str, report: Path, first: Any, last: Any,
    attack_: Attack, code: int | None, during: bool, attack_done: float,
) -> int:  # fmt: skip
    benchmarks = json.loads(report.read_text())["benchmarks"] if report.exists() else []
    intact = [bool(b["extra_info"].get("integrity", {}).get("ok")) for b in benchmarks]
    outcome = re.findall(r"=+ (.*) in [\d.]+s", text)
    refused = re.search(r"netcopy: refused (\d+) connections without the session token", text)
    same_sink = first is not None and last is not None and first[1:] == last[1:]
    made = sum(attack_.made.values())
    print(f"sweep: {outcome[-1] if outcome else '?'} (pytest exit {code})")
    print(f"benchmarks recorded: {len(intact)}, intact: {sum(intact)}")
    print(f"sink: pid {first and first[1]} -> {last and last[1]}, starts {last and last[2]}")
    print(f"summary: refused {refused.group(1) if refused else 'no line'}")
    print(
        f"hostile connections made: {made} of {args.connections} in {attack_done:.1f} s"
        f" ({'all while the sweep ran' if during else 'the sweep ended first'})"
    )
    for kind in KINDS:
        print(
            f"  {kind:12} made {attack_.made[kind]:4}, cut by the sink {attack_.cut[kind]:4}, "
            f"connect failed {attack_.failed[kind]:3}"
        )
    ok = code == 0 and intact and all(intact) and same_sink and made == args.connections
    print("unchanged: yes" if ok else "unchanged: NO")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv[:1] == ["--inner"]:
        return inner(argv[1], pytest_args)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--hold", type=float, default=0.5, help="seconds a connection is held")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    os.environ.pop("PYTEST_XDIST_WORKER", None)
    return run(args, pytest_args or SWEEP)


if __name__ == "__main__":
    sys.exit(main())
