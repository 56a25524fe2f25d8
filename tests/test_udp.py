"""The UDP modes end to end through pytester (issue 15): JSON keys, zero-copy accounting, a
corrupting mode caught, the size limit and the rate option's usage errors, across a peer."""

from __future__ import annotations

import json
from typing import Any

import impaired
import pytest
from _support import FAST, SWEEP
from netns import PEER_ADDRESS, TwoHosts
from test_peer_unit import SYSTEM_PYTHON

UDP_MODES = "udp_two_copy,udp_one_copy,udp_zero_copy,udp_gso"
UDP_KEYS = {"sent", "received", "lost", "reordered", "duplicated", "loss_fraction",
            "goodput_gbps", "rate", "sink_rcvbuf"}  # fmt: skip


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[Any, list[dict[str, Any]]]:
    result = pytester.runpytest_subprocess(*FAST, *args, "--benchmark-json=out.json")
    data = json.loads((pytester.path / "out.json").read_text())
    return result, [b["extra_info"] for b in data["benchmarks"]]


def check_udp(extra: dict[str, Any]) -> None:
    assert extra["transport"] == "udp"
    udp = extra["udp"]
    assert set(udp) == UDP_KEYS
    assert udp["sent"] == udp["received"] + udp["lost"] > 0
    assert udp["loss_fraction"] == pytest.approx(udp["lost"] / udp["sent"])
    assert udp["goodput_gbps"] > 0
    assert len(extra["rounds"]["udp_lost"]) == len(extra["rounds"]["seconds"])
    assert sum(extra["rounds"]["udp_received"]) == udp["received"]
    assert extra["integrity"]["ok"] is True
    assert extra["integrity"]["verified_bytes"] == udp["received"] * extra["size"]
    if extra["mode"] == "udp_zero_copy":
        zc = extra["zerocopy"]
        assert zc["completions"] == zc["sends"] > 0, zc  # every buffer's completion came back


def test_every_udp_mode_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result, extras = run_json(
        pytester, f"--netcopy-modes={UDP_MODES},two_copy", "--netcopy-sizes=1400",
        "--netcopy-threads=1,2",
    )  # fmt: skip
    result.assert_outcomes(passed=10)
    by_mode = {(e["mode"], e["threads"]): e for e in extras}
    for (mode, _), extra in by_mode.items():
        if mode == "two_copy":
            assert extra["transport"] == "tcp" and "udp" not in extra
            continue
        check_udp(extra)
        assert extra["udp"]["rate"]["how"] == "calibrated"
        assert extra["control"]["mode"] == "bare_send"  # on the same UDP flows
    result.stdout.fnmatch_lines(["*UDP goodput Gbps / loss %*"])


def test_a_given_rate_is_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result, extras = run_json(
        pytester, "--netcopy-modes=udp_one_copy", "--netcopy-sizes=512",
        "--netcopy-threads=1", "--netcopy-udp-rate=50kdps",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    check_udp(extras[0])
    assert extras[0]["udp"]["rate"] == {"datagrams_per_second": 50000.0, "how": "option"}


CORRUPTING = """
import socket
from pytest_netcopy.send.modes import Mode, Sender
from pytest_netcopy.sink import wire


class _Sender(Sender):
    def __init__(self, sock, conn_id, size):
        self.sock, self.buf = sock, bytearray(wire.message_template(conn_id, size))

    def send(self, first, count):
        for seq in range(first, first + count):
            buf = bytearray(self.buf)
            buf[0:4] = (seq & wire.STAMP_MASK).to_bytes(4, "little")
            if seq == 41:
                buf[1000] ^= 1
            self.sock.send(buf)


class Corrupting(Mode):
    name = "udp_corrupting"
    transport = "udp"

    def sender(self, sock, conn_id, size):
        return _Sender(sock, conn_id, size)


def pytest_netcopy_add_modes(registry):
    registry.add(Corrupting())
"""


def test_a_corrupting_udp_mode_fails_with_sequence_and_offset(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CORRUPTING)
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-modes=udp_corrupting", "--netcopy-sizes=1400", "--netcopy-threads=1",
        "--netcopy-udp-rate=20kdps",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*datagram corrupted (udp_corrupting, 1400 B, 1 threads): flow 0, datagram sequence "
         "number 41, offset 1000 (field 5, byte 125): expected 0x*, received 0x*"]
    )  # fmt: skip
    assert "Traceback" not in result.stdout.str()


def test_a_size_beyond_a_datagram_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-modes=two_copy,udp_gso", "--netcopy-sizes=4096,65536"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--netcopy-sizes='4096,65536': 65536 B does not fit in one UDP datagram (the UDP "
         "mode(s) udp_gso send one message per datagram): expected sizes up to 65504 B"]
    )  # fmt: skip
    assert "Traceback" not in result.stderr.str()
    tcp_only = pytester.runpytest_subprocess(
        *FAST, "--netcopy-modes=two_copy", "--netcopy-sizes=65536", "--co", "-q"
    )
    assert tcp_only.ret == pytest.ExitCode.OK  # TCP keeps its larger sizes


def test_a_bad_rate_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(*FAST, "--netcopy-udp-rate=quick")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--netcopy-udp-rate='quick': expected calibrate, a rate in bits per second such as "
         "2G or 500M*"]
    )  # fmt: skip
    assert "Traceback" not in result.stderr.str()


def test_udp_across_the_namespace_peer(pytester: pytest.Pytester, two_hosts: TwoHosts) -> None:
    """The peer's datagram socket binds the peer's address; udp_gso at 4096 B does not fit the
    veth's MTU of 1500, so the kernel refuses it and the test is skipped saying so."""
    pytester.makepyfile(test_sweep=SWEEP)
    peer = (
        f"--netcopy-peer={two_hosts.peer_command()}",
        f"--netcopy-peer-python={SYSTEM_PYTHON} -I",
        f"--netcopy-peer-address={PEER_ADDRESS}",
    )
    with two_hosts.link():
        result, extras = run_json(
            pytester, *peer, "--netcopy-modes=udp_two_copy,udp_zero_copy,udp_gso",
            "--netcopy-sizes=1400", "--netcopy-threads=1",
        )  # fmt: skip
        refused = pytester.runpytest_subprocess(
            *FAST, *peer, "--netcopy-modes=udp_gso", "--netcopy-sizes=4096",
            "--netcopy-threads=1", "-rs",
        )  # fmt: skip
    result.assert_outcomes(passed=3)
    for extra in extras:
        assert extra["peer"] is True
        check_udp(extra)
    refused.assert_outcomes(skipped=1)
    refused.stdout.fnmatch_lines(["*udp_gso: the kernel refused UDP_SEGMENT for 4096 B*"])
    assert two_hosts.pids() == []  # nothing left running on the peer


def test_reordering_and_loss_on_an_impaired_link(pytester: pytest.Pytester) -> None:
    """A real link that reorders every 7th packet and drops every 23rd towards the peer
    (tests/impaired.py stands in for netem, which this kernel lacks): the sink counts the
    datagrams that came late and the ones that never came, and the payload is intact."""
    reason = impaired.why_not()
    if reason:
        pytest.skip(reason)
    pytester.makepyfile(test_sweep=SWEEP)
    with impaired.impaired_link(reorder_every=7, loss_every=23) as link:
        result, extras = run_json(
            pytester, f"--netcopy-peer={link.peer_command()}",
            f"--netcopy-peer-python={SYSTEM_PYTHON} -I",
            f"--netcopy-peer-address={impaired.PEER_ADDRESS}", "--netcopy-modes=udp_one_copy",
            "--netcopy-sizes=1400", "--netcopy-threads=1", "--netcopy-udp-rate=5kdps",
            "--netcopy-round-time=0.05", "--netcopy-control=none", "--netcopy-user-rounds=0",
        )  # fmt: skip
        assert link.pids() == []  # the peer's sink is gone
    result.assert_outcomes(passed=1)
    check_udp(extras[0])
    udp = extras[0]["udp"]
    assert udp["reordered"] > 0 and udp["lost"] > 0, udp
