"""The impaired link (tests/impaired.py) that stands in for netem on kernels without it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

import impaired
import netns
import pytest

ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    f"s.bind(('{impaired.PEER_ADDRESS}', 7))\n"
    "while True:\n"
    "    d, a = s.recvfrom(100)\n"
    "    s.sendto(d, a)\n"
)


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    reason = impaired.why_not()
    if reason:
        pytest.skip(reason)


def _echoes(link: impaired.ImpairedLink, n: int) -> tuple[list[float], list[int]]:
    """Round trips (ms) of n numbered datagrams, and the numbers that came back, in order."""
    server = subprocess.Popen(["ip", "netns", "exec", link.ns, sys.executable, "-c", ECHO])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(0.5)
            deadline = time.monotonic() + 10
            while True:  # the echo server is up when it answers
                c.sendto(b"\xff\xff", (impaired.PEER_ADDRESS, 7))
                with contextlib.suppress(TimeoutError):
                    if c.recv(100) == b"\xff\xff":
                        break
                assert time.monotonic() < deadline, "the echo server never answered"
            rtts, seen = [], []
            for i in range(n):
                t = time.perf_counter()
                c.sendto(i.to_bytes(2, "big"), (impaired.PEER_ADDRESS, 7))
                try:
                    seen.append(int.from_bytes(c.recv(100), "big"))
                    rtts.append((time.perf_counter() - t) * 1000)
                except TimeoutError:
                    pass
            return rtts, seen
    finally:
        server.kill()
        server.wait(timeout=10)


def test_the_delay_is_the_round_trip_and_nothing_is_left() -> None:
    with impaired.impaired_link() as link:
        quick, _ = _echoes(link, 20)
    with impaired.impaired_link(delay_ms=5) as link:
        slow, _ = _echoes(link, 20)
        ns, devices = link.ns, (link.root_if, link.peer_if)
    # The delay is a floor under every echo; the undelayed link's fastest echo shows the
    # floor is the forwarder's sleep (its median waits on three Python processes' wake-ups,
    # which a busy machine can stretch past 5 ms).
    assert min(slow) >= 5.0 > min(quick), (quick, slow)
    assert ns not in netns.ip("netns", "list").stdout
    # this link's own devices: another test may hold the (locked) link by now
    left = netns.ip("link").stdout
    assert not [d for d in devices if d in left], left


def test_every_nth_packet_is_lost() -> None:
    with impaired.impaired_link(loss_every=4) as link:
        _, seen = _echoes(link, 12)
    missing = [i for i in range(12) if i not in seen]  # the readiness probes counted too
    assert len(missing) == 3 and missing[1] - missing[0] == missing[2] - missing[1] == 4, seen


def test_a_failure_inside_removes_the_link() -> None:
    with pytest.raises(RuntimeError), impaired.impaired_link(delay_ms=1) as link:
        ns = link.ns
        raise RuntimeError("a test failed")
    assert ns not in netns.ip("netns", "list").stdout
    assert link.forwarder.poll() is not None
