"""Request/response against a real sink process: verified both ways, corruption caught."""

from __future__ import annotations

import socket

import pytest
from hdrh.histogram import HdrHistogram

from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.send.modes import FunctionMode
from pytest_netcopy.sink import PARTS
from pytest_netcopy.sink.rr import CORRUPT_ENV, RESPONSE_MARK, response_template
from pytest_netcopy.sink.wire import FIELDS, message_template
from pytest_netcopy.transport.errors import IntegrityError
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.rr import RrPool

REGISTRY = builtin_registry()


def test_the_rr_part_is_shipped_before_main() -> None:
    assert PARTS.index("rr") < PARTS.index("main")
    assert PARTS.index("tcp") < PARTS.index("rr")


def test_a_response_is_never_an_echoed_request() -> None:
    template = response_template(3, 128)
    request = message_template(3, 128)
    assert template != request
    assert [template[i * 16 + 7] for i in range(FIELDS)] == [RESPONSE_MARK] * FIELDS
    assert template[:4] == bytes(4)  # the stamp's place


@pytest.mark.parametrize("mode", ["two_copy", "one_copy", "zero_copy"])
@pytest.mark.parametrize(("size", "response"), [(64, 64), (4096, 64), (65536, 4096)])
def test_rounds_of_transactions_are_verified_and_timed(
    sink: SinkProcess, mode: str, size: int, response: int
) -> None:
    with RrPool(sink, REGISTRY.get(mode), size, 2, response_size=response, timeout=10) as pool:
        for round_no in range(3):
            result = pool.run_round(40 + round_no)
            assert all(ack.ok for ack in result.acks)
            assert result.verified_bytes == 2 * (40 + round_no) * size
            last = pool.last
            assert last is not None
            assert last.transactions == 2 * (40 + round_no)
            assert last.histogram.get_total_count() == last.transactions
            assert last.histogram.get_min_value() > 0
        pool.finish_stream()  # a clean END from every connection


def test_nodelay_is_on_by_default_and_nagle_can_come_back(sink: SinkProcess) -> None:
    two_copy = REGISTRY.get("two_copy")
    for nodelay in (True, False):
        with RrPool(sink, two_copy, 4096, 1, response_size=64, timeout=10, nodelay=nodelay) as pool:
            flag = pool.socks[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert bool(flag) is nodelay
            pool.run_round(5)
            pool.finish_stream()


def test_a_corrupted_response_is_caught_at_the_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CORRUPT_ENV, "17:9")  # the sink inherits it: request 17, byte 9
    peer = SinkProcess(timeout=10)
    peer.ensure_running()
    try:
        with RrPool(peer, REGISTRY.get("two_copy"), 256, 1, response_size=64, timeout=10) as pool:
            pool.run_round(10)  # requests 0..9: intact
            with pytest.raises(IntegrityError) as caught:
                pool.run_round(10)
    finally:
        peer.close()
    text = str(caught.value)
    assert "response corrupted: connection 0, sequence number 17, offset 9" in text
    assert "(field 1, byte 1)" in text


def test_a_corrupted_request_is_caught_at_the_sink(sink: SinkProcess) -> None:
    def bad_send(sock: socket.socket, fields: list[memoryview]) -> None:
        data = bytearray(b"".join(fields))
        if data[:4] == (6).to_bytes(4, "little"):  # request 6: one byte wrong
            data[70] ^= 0x01
        sock.sendall(data)

    mode = FunctionMode("bad_send", bad_send)
    with (
        RrPool(sink, mode, 128, 1, response_size=64, timeout=10) as pool,
        pytest.raises(IntegrityError) as caught,
    ):
        pool.run_round(10)
    text = str(caught.value)
    assert "request payload corrupted (bad_send, 128 B, 1 threads)" in text
    assert "connection 0, message sequence number 6, offset 70" in text


def test_the_histogram_survives_its_encoding(sink: SinkProcess) -> None:
    with RrPool(sink, REGISTRY.get("two_copy"), 1024, 1, response_size=64, timeout=10) as pool:
        pool.run_round(300)
        histogram = pool.last.histogram if pool.last else None
        pool.finish_stream()
    assert histogram is not None
    decoded = HdrHistogram.decode(histogram.encode())
    for p in (50.0, 99.0, 99.9, 100.0):
        assert decoded.get_value_at_percentile(p) == histogram.get_value_at_percentile(p)
    assert decoded.get_total_count() == 300
