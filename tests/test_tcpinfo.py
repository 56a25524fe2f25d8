"""TCP_INFO's tcpi_total_retrans: parsed from a real socket, null with a reason from an old
kernel's short struct (never 0), and the per-round delta a lossy link records."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_netcopy.bench.figures import throughput
from pytest_netcopy.report.tables import modes_table
from pytest_netcopy.transport import tcpinfo
from pytest_netcopy.transport.pool import RoundResult


@pytest.fixture
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=5)
        peer, _ = server.accept()
        try:
            yield client, peer
        finally:
            client.close()
            peer.close()


def test_a_real_socket_parses(connected: tuple[socket.socket, socket.socket]) -> None:
    client, peer = connected
    client.sendall(b"x" * 100_000)
    got = 0
    while got < 100_000:
        got += len(peer.recv(65536))
    raw = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, tcpinfo.BUFFER)
    # the layout around the field, checked against what the kernel says another way
    assert raw[0] == 1  # tcpi_state: TCP_ESTABLISHED
    mss = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    assert struct.unpack_from("=I", raw, 16)[0] == mss  # tcpi_snd_mss: tp->mss_cache
    reading = tcpinfo.total_retrans(client)
    assert reading.reason == "" and reading.value == 0  # loopback loses nothing
    assert tcpinfo.parse(raw) == reading


def test_an_old_kernels_short_struct_is_null_with_a_reason() -> None:
    short = bytes(100)  # up to tcpi_rcv_space: before tcpi_total_retrans existed
    reading = tcpinfo.parse(short)
    assert reading.value is None
    assert "100 bytes" in reading.reason and "tcpi_total_retrans" in reading.reason
    whole = bytes(100) + struct.pack("=I", 7) + bytes(20)
    assert tcpinfo.parse(whole) == tcpinfo.Reading(7, "")


def test_the_delta_is_null_unless_every_socket_was_read() -> None:
    a, b = tcpinfo.Reading(3, ""), tcpinfo.Reading(None, "old kernel")
    assert tcpinfo.delta([a, a], [tcpinfo.Reading(5, ""), tcpinfo.Reading(4, "")]) == (3, "")
    assert tcpinfo.delta([a, b], [a, a]) == (None, "old kernel")
    # u32 wrap: 2**32 - 2 -> 1 is 3 retransmissions, not a negative count
    assert tcpinfo.delta([tcpinfo.Reading(2**32 - 2, "")], [tcpinfo.Reading(1, "")]) == (3, "")


def test_a_closed_socket_is_null_with_the_error() -> None:
    sock = socket.socket()
    sock.close()
    reading = tcpinfo.total_retrans(sock)
    assert reading.value is None and "TCP_INFO" in reading.reason


def test_each_round_of_a_real_pool_carries_its_retransmits() -> None:
    from pytest_netcopy.send.builtin import builtin_registry
    from pytest_netcopy.transport.local import SinkProcess
    from pytest_netcopy.transport.pool import SenderPool

    sink = SinkProcess(timeout=20)
    sink.ensure_running()
    try:
        with SenderPool(sink, builtin_registry().get("two_copy"), 4096, 2, timeout=20) as pool:
            first = pool.run_round(20)
            assert (first.retransmits, first.retransmits_not_counted) == (0, None)
            pool.finish_stream()
    finally:
        sink.close()


def rounds_with(counts: list[int | None]) -> list[RoundResult]:
    return [
        RoundResult(seconds=0.05, messages=1, bytes=8, acks=[], retransmits=n,
                    retransmits_not_counted=None if n is not None else "TCP_INFO gave 100 bytes")
        for n in counts
    ]  # fmt: skip


def test_the_record_has_rounds_retransmits_and_a_total_or_null_with_the_reason() -> None:
    known = throughput("two_copy", 8, 1, 1, rounds_with([0, 3, 2]))
    assert (known.round_retransmits, known.retransmits) == ([0, 3, 2], 5)
    assert known.retransmits_not_counted is None
    unknown = throughput("two_copy", 8, 1, 1, rounds_with([0, None]))
    assert (unknown.round_retransmits, unknown.retransmits) == ([0, None], None)
    assert unknown.retransmits_not_counted == "TCP_INFO gave 100 bytes"


def result(mode: str, retransmits: int | None) -> dict[str, object]:
    return {
        "mode": mode, "size": 65536, "threads": 1, "throughput_gbps": 40.0,
        "messages_per_second": 76294.0, "ns_per_message": 13107.0,
        "integrity": {"ok": True, "verified_bytes": 1}, "retransmits": retransmits,
    }  # fmt: skip


def test_the_table_says_retransmits_only_where_there_were_some() -> None:
    assert "retransmits" not in modes_table([result("two_copy", 0), result("one_copy", None)])
    table = modes_table([result("two_copy", 12), result("one_copy", 0)], fmt="plain")
    line = next(row for row in table.splitlines() if "retransmits" in row)
    assert line.split()[-2:] == ["12", "0"]


LOSSY = ("--netcopy-sizes=65536", "--netcopy-threads=1", "--netcopy-modes=two_copy",
         "--netcopy-control=none", "--netcopy-user-rounds=0", "--netcopy-rounds=3",
         "--netcopy-round-time=0.05")  # fmt: skip


def test_a_lossy_link_records_its_retransmits(pytester: pytest.Pytester, two_hosts: Any) -> None:
    import netns
    from _support import FAST, SWEEP
    from test_peer_unit import SYSTEM_PYTHON

    pytester.makepyfile(test_sweep=SWEEP)
    peer = (f"--netcopy-peer={two_hosts.peer_command()}",
            f"--netcopy-peer-python={SYSTEM_PYTHON} -I",
            f"--netcopy-peer-address={netns.PEER_ADDRESS}")  # fmt: skip
    with two_hosts.link():
        added = subprocess.run(
            ["ip", "netns", "exec", two_hosts.ns, "tc", "qdisc", "add", "dev", two_hosts.peer_if,
             "root", "netem", "loss", "2%"], capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if "unknown" in added.stderr:
            pytest.skip(f"this kernel has no netem qdisc (sch_netem): {added.stderr.strip()}")
        assert added.returncode == 0, added.stderr
        run = pytester.runpytest_subprocess(*FAST, *LOSSY, *peer, "--benchmark-json=out.json")
    run.assert_outcomes(passed=1)
    extra = json.loads((pytester.path / "out.json").read_text())["benchmarks"][0]["extra_info"]
    per_round = extra["rounds"]["retransmits"]
    assert len(per_round) == 3 and all(isinstance(n, int) for n in per_round), per_round
    assert extra["retransmits"] == sum(per_round) > 0, extra["retransmits"]
    assert "retransmits_not_counted" not in extra
    line = next(row for row in modes_table([extra], fmt="plain").splitlines() if "retr" in row)
    assert line.split()[-1] == str(extra["retransmits"])
