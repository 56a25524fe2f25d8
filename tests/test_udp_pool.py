"""DatagramPool with real sockets: over a sink (loss, corruption), transmit only, pacing."""

from __future__ import annotations

import socket

import pytest

from pytest_netcopy.bench.passes import InstructionCounter
from pytest_netcopy.bench.udprate import datagrams_per_second, parse_udp_rate
from pytest_netcopy.instruments.cachegrind import find_valgrind
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.send.modes import Mode, Sender
from pytest_netcopy.send.udp import UDP_MODES, UdpBareSend, UdpTwoCopy, gso_batch
from pytest_netcopy.sink import wire
from pytest_netcopy.transport.errors import IntegrityError
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.udp import DatagramPool, paced_send

UDP_NAMES = [cls.name for cls in UDP_MODES]


class TinyBufferSink(SinkProcess):
    """A sink whose datagram sockets get the smallest SO_RCVBUF the kernel allows."""

    def command(self) -> list[str]:
        return [*super().command(), "--udp-rcvbuf", "1"]


def test_every_udp_mode_is_registered_as_udp() -> None:
    registry = builtin_registry()
    for name in UDP_NAMES:
        assert registry.get(name).transport == "udp"
    assert registry.get("two_copy").transport == "tcp"
    assert UdpBareSend.transport == "udp"


@pytest.mark.parametrize("name", UDP_NAMES)
def test_each_mode_over_the_sink(sink: SinkProcess, name: str) -> None:
    mode = builtin_registry().get(name)
    with DatagramPool(sink, mode, 1024, 2, timeout=10, control=UdpBareSend(), rate=20000) as pool:
        result = pool.run_round(300)
        control = pool.run_round(100, control=True)
        stats = [s.stats() for s in pool.senders]
        pool.finish_stream()
    assert result.udp is not None and control.udp is not None
    assert result.udp.sent == 600 and control.udp.sent == 200
    assert result.udp.received + result.udp.lost == 600
    assert result.verified_bytes == result.udp.received * 1024
    assert len(result.acks) == 2 and all(a.ok for a in result.acks)
    assert result.retransmits is None and "UDP" in (result.retransmits_not_counted or "")
    if name == "udp_zero_copy":
        for s in stats:
            assert (
                s is not None and s["completions"] == s["sends"] == 300
            )  # the control sent the rest


def test_a_sender_that_outruns_the_sink_loses_datagrams_and_stays_intact() -> None:
    peer = TinyBufferSink(timeout=10)
    peer.start()
    try:
        with DatagramPool(peer, UdpTwoCopy(), 1400, 1, timeout=10) as pool:
            results = [pool.run_round(5000) for _ in range(3)]
            pool.finish_stream()
        assert pool.sink_rcvbufs and max(pool.sink_rcvbufs) < 64 * 1024
    finally:
        peer.close()
    lost = sum(r.udp.lost for r in results if r.udp is not None)
    assert lost > 0  # 5000 unpaced datagrams into a few KiB of receive buffer
    assert all(a.ok for r in results for a in r.acks)  # loss is not corruption


class _Corrupting(Sender):
    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        self.template = bytearray(wire.message_template(conn_id, size))

    def send(self, first: int, count: int) -> None:
        for seq in range(first, first + count):
            buf = bytearray(self.template)
            buf[0:4] = (seq & wire.STAMP_MASK).to_bytes(4, "little")
            if seq == 7:
                buf[300] ^= 0xFF  # field 2 of a 1024 B message, byte 44
            self.sock.send(buf)


class Corrupting(Mode):
    name = "udp_corrupting"
    transport = "udp"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _Corrupting(sock, conn_id, size)


def test_a_corrupted_datagram_fails_with_its_sequence_and_offset(sink: SinkProcess) -> None:
    with (
        DatagramPool(sink, Corrupting(), 1024, 1, timeout=10, rate=20000) as pool,
        pytest.raises(IntegrityError) as info,
    ):
        pool.run_round(20)
    text = str(info.value)
    assert "datagram sequence number 7, offset 300 (field 2, byte 44)" in text, text


@pytest.mark.parametrize("name", UDP_NAMES)
def test_transmit_only_to_a_socket_nobody_reads(name: str) -> None:
    """Loopback drops what a bound but unread socket cannot queue: nothing answers, nothing
    fails, and no sink is involved."""
    mode = builtin_registry().get(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:
        target.bind(("127.0.0.1", 0))
        address = target.getsockname()
        with DatagramPool(None, mode, 1024, 2, timeout=10, transmit_only=address) as pool:
            first = pool.run_round(500)
            second = pool.run_round(500)
            stats = [s.stats() for s in pool.senders]
            pool.finish_stream()
    for result in (first, second):
        assert result.udp is None and result.acks == [] and result.messages == 1000
        assert result.seconds > 0
    if name == "udp_zero_copy":
        for s in stats:  # every buffer's completion came back before the pool let it go
            assert s is not None and s["completions"] == s["sends"] == 1000


def test_a_pool_needs_a_sink_or_a_target() -> None:
    with pytest.raises(ValueError, match="either a sink or transmit_only"):
        DatagramPool(None, UdpTwoCopy(), 1024, 1, timeout=1)
    with pytest.raises(ValueError, match="at most 65504"):
        DatagramPool(None, UdpTwoCopy(), 65536, 1, timeout=1, transmit_only=("127.0.0.1", 9))


class _Recorder(Sender):
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def send(self, first: int, count: int) -> None:
        self.calls.append((first, count))


def test_pacing_sends_in_batches_on_an_absolute_schedule() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    sender = _Recorder()
    paced_send(sender, 50, 10_000, 1_000_000, clock=lambda: now[0], sleep=sleep)
    assert sender.calls[0] == (50, 1000)  # 1 ms of datagrams per batch
    assert sum(c for _, c in sender.calls) == 10_000
    assert [f for f, _ in sender.calls] == list(range(50, 10_050, 1000))
    # instant sends: it sleeps until each batch is due, none after the last
    assert now[0] - 100.0 == pytest.approx(0.009)
    assert len(slept) == 9


def test_pacing_does_not_sleep_when_behind() -> None:
    now = [0.0]

    def slow_send_clock() -> float:
        now[0] += 0.01  # each batch takes 10 ms: far behind a 1 ms schedule
        return now[0]

    slept: list[float] = []
    paced_send(_Recorder(), 0, 5000, 1_000_000, clock=slow_send_clock, sleep=slept.append)
    assert slept == []


def test_unpaced_is_one_call() -> None:
    sender = _Recorder()
    paced_send(sender, 3, 77, None)
    assert sender.calls == [(3, 77)]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("calibrate", None),
        ("2G", ("bits_per_second", 2e9)),
        ("500M", ("bits_per_second", 5e8)),
        ("1.5Gbps", ("bits_per_second", 1.5e9)),
        ("100000dps", ("datagrams_per_second", 1e5)),
        ("100kdps", ("datagrams_per_second", 1e5)),
    ],
)
def test_rate_values(text: str, parsed: tuple[str, float] | None) -> None:
    assert parse_udp_rate(text) == parsed


@pytest.mark.parametrize("text", ["fast", "-1G", "0", "2T", "1e9", "\uff12G"])
def test_bad_rate_values(text: str) -> None:
    with pytest.raises(ValueError, match="expected calibrate, a rate in bits per second"):
        parse_udp_rate(text)


def test_bits_per_second_count_the_payload() -> None:
    assert datagrams_per_second(("bits_per_second", 1400 * 8 * 1000.0), 1400) == 1000
    assert datagrams_per_second(("datagrams_per_second", 5.0), 1400) == 5


def test_gso_batches_fit_in_64_kib() -> None:
    assert gso_batch(1400) == 46 and 46 * 1400 <= 65507
    assert gso_batch(64) == 64  # capped at UDP_MAX_SEGMENTS
    assert gso_batch(65504) == 1


def test_instruction_count_of_a_udp_mode_sends_datagrams() -> None:
    """The valgrind counting child sends a UDP mode's messages as datagrams (to a socket of
    its own that nobody reads), not down a TCP connection."""
    if find_valgrind() is None:
        pytest.skip("needs valgrind (Debian package valgrind)")
    counter = InstructionCounter(20)
    try:
        figures = counter.count(UdpTwoCopy(), 1400)
    finally:
        counter.close()
    assert figures.status == "ok", figures.reason
    assert figures.user_instructions_per_message is not None
    assert figures.user_instructions_per_message > 0
