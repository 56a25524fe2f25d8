"""TCP_INFO parsed by the length the kernel returns: the fields a length holds, None with
the reason for the rest (never 0), real sockets whose chrono times say what limited them,
the per-round figures and limited-by shares, and a run's JSON."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_netcopy.bench.figures import throughput
from pytest_netcopy.bench.tcpfigures import over_rounds
from pytest_netcopy.report.tables import modes_table
from pytest_netcopy.results.tcpinfo import FIGURE_KEYS, TcpInfoFigures, TcpInfoValues, limited_by
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


#: a value planted at each field's offset of a full struct (distinct, and large enough
#: that a field read from the wrong offset or width cannot match)
PLANTED = {
    "state": 1, "snd_mss": 1448, "rtt": 5123, "rttvar": 777, "snd_cwnd": 42,
    "total_retrans": 9, "notsent_bytes": 4096, "min_rtt": 3001,
    "delivery_rate": 1_250_000_000, "busy_time": 900_000, "rwnd_limited": 120_000,
    "sndbuf_limited": 300_000, "bytes_sent": 7_000_000_000, "bytes_retrans": 65_160,
}  # fmt: skip


def struct_of(length: int) -> bytes:
    """A ``struct tcp_info`` as a kernel that returns ``length`` bytes gives it."""
    raw = bytearray(280)
    for f in tcpinfo.FIELDS:
        struct.pack_into("=" + f.fmt, raw, f.offset, PLANTED[f.name])
    return bytes(raw[:length])


#: (bytes returned, the first field it lacks and the kernel that added it)
KERNELS = [
    (100, "tcpi_total_retrans", "2.6"),  # up to tcpi_rcv_space
    (104, "tcpi_notsent_bytes", "4.6"),  # 3.x: ends at tcpi_total_retrans
    (144, "tcpi_notsent_bytes", "4.6"),  # 4.2: ends at tcpi_segs_in
    (168, "tcpi_busy_time", "4.10"),  # 4.9: delivery_rate, no chrono times
    (192, "tcpi_bytes_sent", "4.19"),  # 4.10-4.17: chrono times
    (232, None, None),  # 5.4
    (280, None, None),  # 6.18
]


@pytest.mark.parametrize(("length", "first_missing", "since"), KERNELS)
def test_each_length_gives_exactly_the_fields_it_holds(
    length: int, first_missing: str | None, since: str | None
) -> None:
    info = tcpinfo.parse(struct_of(length))
    assert info.length == length
    for f in tcpinfo.FIELDS:
        if f.end <= length:
            assert info.value(f.name) == PLANTED[f.name], f.name
            assert f.name not in info.missing
        else:
            assert info.value(f.name) is None, f.name  # never a 0 standing in for it
            assert info.missing[f.name] == (
                f"kernel returned {length} bytes; {f.kernel_name} needs Linux {f.since}+"
            )
    lacking = [(f.kernel_name, f.since) for f in tcpinfo.FIELDS if f.end > length]
    assert (lacking[0] if lacking else (None, None)) == (first_missing, since)


def test_an_old_kernel_has_rtt_and_retransmits_but_no_delivery_rate_or_chrono_times() -> None:
    old = tcpinfo.parse(struct_of(104))
    assert (old.rtt, old.rttvar, old.snd_cwnd, old.total_retrans) == (5123, 777, 42, 9)
    assert old.delivery_rate is None and old.busy_time is None
    assert old.missing["delivery_rate"] == (
        "kernel returned 104 bytes; tcpi_delivery_rate needs Linux 4.9+"
    )
    assert old.missing["sndbuf_limited"].endswith("tcpi_sndbuf_limited needs Linux 4.10+")
    mid = tcpinfo.parse(struct_of(168))
    assert mid.delivery_rate == 1_250_000_000 and mid.busy_time is None


def header_offsets(text: str) -> dict[str, int]:
    """The offset of each field of ``struct tcp_info`` in a copy of linux/tcp.h (natural
    alignment; a line of bitfields is one field of its type)."""
    body = text[text.index("struct tcp_info {") :]
    body = body[: body.index("};")]
    offsets: dict[str, int] = {}
    at = 0
    for width, name in re.findall(r"__u(8|16|32|64)\s+(tcpi_\w+)", body):
        size = int(width) // 8
        at = (at + size - 1) // size * size
        offsets[name] = at
        at += size
    return offsets


def test_the_offsets_are_the_kernel_headers() -> None:
    header = Path("/usr/include/linux/tcp.h")
    if not header.exists():
        pytest.skip("no /usr/include/linux/tcp.h to compare with (Debian package linux-libc-dev)")
    offsets = header_offsets(header.read_text())
    assert offsets["tcpi_total_retrans"] == 100  # the parser of the header itself
    for f in tcpinfo.FIELDS:
        if f.kernel_name in offsets:  # an older header may end before a field
            assert offsets[f.kernel_name] == f.offset, f.kernel_name


def send_until(
    client: socket.socket, peer: socket.socket, field: str, *, seconds: float = 20.0
) -> tuple[tcpinfo.TcpInfo, tcpinfo.TcpInfo, int]:
    """Send 1 MiB at a time (a thread reads it all) until the client's ``field`` moved,
    or ``seconds`` passed: the chrono times count whole kernel ticks, so a short transfer
    may read 0. The readings before and after (once all was received), and the bytes sent."""
    chunk, sent, received = b"x" * (1 << 20), [0], [0]
    done = threading.Event()
    peer.settimeout(0.2)

    def drain() -> None:
        while not (done.is_set() and received[0] >= sent[0]):
            try:
                received[0] += len(peer.recv(1 << 16))
            except TimeoutError:
                continue

    before = tcpinfo.read(client)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + seconds
    try:
        while True:
            client.sendall(chunk)
            sent[0] += len(chunk)
            moved = (tcpinfo.read(client).value(field) or 0) - (before.value(field) or 0)
            if moved > 0 or time.monotonic() > deadline:
                break
    finally:
        done.set()
        reader.join(timeout=30)
    assert not reader.is_alive() and received[0] == sent[0]
    return before, tcpinfo.read(client), sent[0]


@contextlib.contextmanager
def pair(*, rcvbuf: int = 0, sndbuf: int = 0) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A loopback connection, the receive buffer set before listen (so the window scale
    fits it), the send buffer before connect."""
    with socket.socket() as server:
        if rcvbuf:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            if sndbuf:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            client.settimeout(20)
            client.connect(server.getsockname())
            peer, _ = server.accept()
            with peer:
                yield client, peer


def test_a_real_socket_parses(connected: tuple[socket.socket, socket.socket]) -> None:
    client, peer = connected
    before, after, sent = send_until(client, peer, "busy_time")
    raw = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, tcpinfo.BUFFER)
    # the layout, checked against what the kernel says another way
    assert tcpinfo.parse(raw).state == 1  # TCP_ESTABLISHED
    assert after.snd_mss == client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    assert after.length == len(raw) >= 104
    assert after.rtt is not None and after.rtt > 0
    assert after.snd_cwnd is not None and after.snd_cwnd > 0
    # loopback loses nothing, but a loaded machine can fire a tail loss probe: counted
    assert after.total_retrans is not None and after.total_retrans >= 0
    if after.length >= 192:  # this machine has the chrono times (Linux 4.10+)
        assert after.busy_time is not None and before.busy_time is not None
        assert after.busy_time > before.busy_time
    if after.length >= 216:
        assert after.bytes_retrans is not None  # every byte sent, once or again
        assert after.bytes_sent == sent + after.bytes_retrans


def test_a_small_receive_buffer_shows_receive_window_limited_time() -> None:
    with pair(rcvbuf=65536) as (client, peer):
        before, after, _ = send_until(client, peer, "rwnd_limited")
    if after.rwnd_limited is None:
        pytest.skip(f"this kernel has no chrono times: {after.missing['rwnd_limited']}")
    figures = tcpinfo.round_figures([before], [after])
    assert figures.rwnd_limited_us is not None and figures.rwnd_limited_us > 0
    assert figures.busy_us is not None and figures.busy_us >= figures.rwnd_limited_us


def test_send_buffer_limited_time_is_read_within_busy_time() -> None:
    """A sender with a 512 KiB send buffer: send-buffer-limited time is read (not null) and
    lies within the busy time. Whether loopback shows any depends on the moment: the kernel
    counts whole 4 ms ticks and, with the same code, chose receive-window-limited or
    send-buffer-limited or neither in repeated 3 s trials here (0, 4,000, 8,000, 12,000
    µs), so asserting > 0 failed 1 run in 5; the offsets are checked by the structs above."""
    with pair(sndbuf=1 << 19) as (client, peer):
        before, after, _ = send_until(client, peer, "sndbuf_limited", seconds=3.0)
    if after.sndbuf_limited is None:
        pytest.skip(f"this kernel has no chrono times: {after.missing['sndbuf_limited']}")
    figures = tcpinfo.round_figures([before], [after])
    assert figures.sndbuf_limited_us is not None and figures.busy_us is not None
    assert 0 <= figures.sndbuf_limited_us <= figures.busy_us
    assert figures.busy_us > 0


def info(**values: int) -> tcpinfo.TcpInfo:
    """A reading of a current kernel with these fields (the rest 0)."""
    fields: dict[str, Any] = {f.name: values.get(f.name, 0) for f in tcpinfo.FIELDS}
    return tcpinfo.TcpInfo(280, **fields)


def test_a_round_averages_the_instantaneous_fields_and_sums_the_changes() -> None:
    before = [info(busy_time=1000, total_retrans=2**32 - 1, bytes_sent=10), info(busy_time=0)]
    after = [
        info(rtt=100, rttvar=10, snd_cwnd=10, delivery_rate=1000, busy_time=5000,
             rwnd_limited=1000, total_retrans=2, bytes_sent=110, min_rtt=20),
        info(rtt=300, rttvar=30, snd_cwnd=30, delivery_rate=3000, busy_time=2000,
             sndbuf_limited=500, bytes_sent=50, min_rtt=40),
    ]  # fmt: skip
    got = tcpinfo.round_figures(before, after)
    assert (got.rtt_us, got.rttvar_us, got.snd_cwnd, got.min_rtt_us) == (200, 20, 20, 30)
    assert got.delivery_rate_bps == 4000 * 8  # the kernel's bytes/s, summed, in bits/s
    assert (got.busy_us, got.rwnd_limited_us, got.sndbuf_limited_us) == (6000, 1000, 500)
    assert got.retrans == 3  # u32 wrap: 2**32 - 1 -> 2 is 3 retransmissions
    assert (got.bytes_sent, got.bytes_retrans, got.missing) == (150, 0, {})
    with pytest.raises(ValueError, match="2 readings before the round, 1 after"):
        tcpinfo.round_figures(before, after[:1])


def test_a_round_is_null_with_the_reason_where_any_reading_lacks_a_field() -> None:
    old = tcpinfo.parse(struct_of(104))
    new = tcpinfo.parse(struct_of(280))
    got = tcpinfo.round_figures([new, old], [new, old])
    assert got.rtt_us == 5123 and got.retrans == 0
    for key in ("delivery_rate_bps", "busy_us", "rwnd_limited_us", "sndbuf_limited_us"):
        assert got.as_dict()[key] is None and "kernel returned 104 bytes" in got.missing[key]
    closed = socket.socket()
    closed.close()
    unread = tcpinfo.round_figures(tcpinfo.read_all([closed]), [new])
    assert unread.rtt_us == 5123  # instantaneous: only the reading after counts
    assert unread.retrans is None and "getsockopt TCP_INFO failed" in unread.missing["retrans"]
    assert tcpinfo.round_figures([], []).missing["rtt_us"] == "no connections"


def test_limited_by_is_the_share_of_busy_time() -> None:
    shares = limited_by(1000, 250, 500)
    assert shares is not None
    assert (shares.receive_window, shares.send_buffer, shares.sender) == (0.25, 0.5, 0.25)
    clamped = limited_by(1000, 700, 600)  # counted in ticks, the two can pass busy time
    assert clamped is not None and clamped.sender == 0.0
    assert limited_by(0, 0, 0) is None  # nothing was busy: no shares, not 0%
    assert limited_by(1000, None, 0) is None


def values(**known: float | None) -> TcpInfoValues:
    base: dict[str, Any] = dict.fromkeys(FIGURE_KEYS, 0)
    base.update(known)
    missing = {k: "kernel returned 168 bytes" for k, v in base.items() if v is None}
    return TcpInfoValues(**base, missing=missing)


def test_a_benchmark_averages_instantaneous_figures_sums_changes_and_says_what_limited() -> None:
    rounds = [
        values(rtt_us=100, delivery_rate_bps=8e9, busy_us=4000, rwnd_limited_us=1000,
               sndbuf_limited_us=0, retrans=1),
        values(rtt_us=300, delivery_rate_bps=4e9, busy_us=4000, rwnd_limited_us=0,
               sndbuf_limited_us=2000, retrans=0),
    ]  # fmt: skip
    totals = over_rounds(rounds)
    assert (totals.rtt_us, totals.delivery_rate_bps, totals.retrans) == (200, 6e9, 1)
    assert (totals.busy_us, totals.rwnd_limited_us, totals.sndbuf_limited_us) == (8000, 1000, 2000)
    extra = TcpInfoFigures(totals, rounds, busy_fraction=0.5).to_extra_info()
    assert extra["limited_by"] == {"receive_window": 0.125, "send_buffer": 0.25, "sender": 0.625}
    assert extra["missing"] == {} and extra["busy_fraction"] == 0.5


def test_a_benchmark_on_an_old_kernel_is_null_with_reasons_never_zero() -> None:
    rounds = [values(busy_us=None, rwnd_limited_us=None, sndbuf_limited_us=None)] * 2
    extra = TcpInfoFigures(over_rounds(rounds), rounds).to_extra_info()
    assert extra["busy_us"] is None and extra["limited_by"] is None
    assert extra["missing"]["busy_us"] == "kernel returned 168 bytes"
    assert extra["missing"]["limited_by"] == "kernel returned 168 bytes"
    assert extra["missing"]["busy_fraction"] == "kernel returned 168 bytes"
    idle = TcpInfoFigures(over_rounds([values()]), [values()], 0.0).to_extra_info()
    assert idle["limited_by"] is None and "no busy time" in idle["missing"]["limited_by"]


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


def test_a_lossy_link_records_its_retransmits(pytester: pytest.Pytester) -> None:
    """Every 50th packet towards the peer dropped (2%): retransmits counted per round.

    The loss comes from tests/impaired.py (a forwarder between two TUN devices), not from
    ``tc ... netem loss 2%``: this kernel has no sch_netem, and the forwarder works on any.
    """
    import impaired
    from _support import FAST, SWEEP
    from test_peer_unit import SYSTEM_PYTHON

    reason = impaired.why_not()
    if reason:
        pytest.skip(reason)
    pytester.makepyfile(test_sweep=SWEEP)
    with impaired.impaired_link(loss_every=50) as link:
        peer = (f"--netcopy-peer={link.peer_command()}",
                f"--netcopy-peer-python={SYSTEM_PYTHON} -I",
                f"--netcopy-peer-address={impaired.PEER_ADDRESS}")  # fmt: skip
        run = pytester.runpytest_subprocess(*FAST, *LOSSY, *peer, "--benchmark-json=out.json")
    run.assert_outcomes(passed=1)
    extra = json.loads((pytester.path / "out.json").read_text())["benchmarks"][0]["extra_info"]
    per_round = extra["rounds"]["retransmits"]
    assert len(per_round) == 3 and all(isinstance(n, int) for n in per_round), per_round
    assert extra["retransmits"] == sum(per_round) > 0, extra["retransmits"]
    assert "retransmits_not_counted" not in extra
    assert extra["tcp_info"]["retrans"] == extra["retransmits"]  # one reading behind both
    line = next(row for row in modes_table([extra], fmt="plain").splitlines() if "retr" in row)
    assert line.split()[-1] == str(extra["retransmits"])
