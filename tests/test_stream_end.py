"""Bytes outside the rounds: the sink must see every byte the senders put on the wire."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pytest_netcopy.send.message import Message
from pytest_netcopy.send.modes import Mode, Sender
from pytest_netcopy.transport.errors import IntegrityError
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pool import SenderPool


class SurplusSender(Sender):
    """Sends its messages, then (when told) one message too many."""

    def __init__(self, sock: socket.socket, conn_id: int, size: int) -> None:
        self.sock = sock
        self.message = Message(conn_id, size)
        self.extra = False

    def send(self, first: int, count: int) -> None:
        for seq in range(first, first + count):
            self.message.stamp(seq)
            self.sock.sendall(self.message.tobytes())
        if self.extra:
            self.sock.sendall(self.message.tobytes())

    def close(self) -> None:
        self.message.release()


class Surplus(Mode):
    name = "surplus"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return SurplusSender(sock, conn_id, size)


@pytest.fixture(scope="module")
def sink_process() -> Iterator[SinkProcess]:
    s = SinkProcess(timeout=10)
    s.ensure_running()
    yield s
    s.close()


def test_clean_rounds_end_cleanly(sink_process: SinkProcess) -> None:
    with SenderPool(sink_process, Surplus(), 1024, 2, timeout=10) as pool:
        pool.run_round(50)
        pool.run_round(50)
        pool.finish_stream()  # raises unless the sink saw exactly the rounds


def test_bytes_after_the_last_round_are_caught(sink_process: SinkProcess) -> None:
    with SenderPool(sink_process, Surplus(), 1024, 2, timeout=10) as pool:
        pool.run_round(50)
        pool.senders[1].extra = True  # type: ignore[attr-defined]
        with pytest.raises(IntegrityError, match=r"connection 1: bytes arrived after the last"):
            # the sink acks the round's bytes; the extra message after them is
            # reported as soon as it is read: during the round or at the end
            pool.run_round(50)
            pool.finish_stream()


def test_bytes_between_rounds_fail_the_next_round_at_once(sink_process: SinkProcess) -> None:
    with SenderPool(sink_process, Surplus(), 1024, 1, timeout=10) as pool:
        pool.senders[0].extra = True  # type: ignore[attr-defined]
        pool.run_round(50)
        with pytest.raises(IntegrityError, match=r"connection 0: bytes arrived after the last"):
            pool.run_round(50)


def test_a_sender_thread_that_cannot_start_is_reported_at_once(
    sink_process: SinkProcess,
) -> None:
    from pytest_netcopy.transport.errors import TransferError

    pool = SenderPool(sink_process, Surplus(), 1024, 2, timeout=30, cpus=[100_000])
    with pytest.raises(TransferError, match=r"did not start:\n  connection 0: OSError"):
        pool.__enter__()  # pinning to a CPU that does not exist fails in the thread
    assert not pool.socks  # closed again


def test_message_copies_are_independent() -> None:
    m = Message(3, 256)
    c = m.copy()
    assert c.tobytes() == m.tobytes()
    c.stamp(7)
    assert c.tobytes() != m.tobytes()
    assert all(a is not b for a, b in zip(m.fields, c.fields, strict=True))
    m.release()
    c.release()


def test_bytes_before_a_control_round_name_both_rounds(sink_process: SinkProcess) -> None:
    """The surplus comes from the measured round; the sink notices it in the control
    round after it: the message must not pin it on the control alone."""
    from pytest_netcopy.send.builtin import BareSend

    with SenderPool(sink_process, Surplus(), 1024, 1, timeout=10, control=BareSend()) as pool:
        pool.senders[0].extra = True  # type: ignore[attr-defined]
        pool.run_round(50)
        with pytest.raises(IntegrityError) as info:
            pool.run_round(50, control=True)
    text = str(info.value)
    assert text.startswith("payload stream broken (surplus, 1024 B, 1 threads)")
    assert (
        "the last rounds were sent by round 1: surplus, round 2: bare_send, the control of surplus"
        in text
    )


class _Failing(Sender):
    def send(self, first: int, count: int) -> None:
        raise OSError("the control's sender broke")


class FailingControl(Mode):
    name = "failing"

    def sender(self, sock: socket.socket, conn_id: int, size: int) -> Sender:
        return _Failing()


def test_a_failed_control_round_says_it_was_the_control(sink_process: SinkProcess) -> None:
    from pytest_netcopy.transport.errors import TransferError

    with SenderPool(sink_process, Surplus(), 1024, 1, timeout=10, control=FailingControl()) as pool:
        pool.run_round(20)
        with pytest.raises(TransferError) as info:
            pool.run_round(20, control=True)
    text = str(info.value)
    assert text.startswith("round 2 (failing, the control of surplus) failed:")
    assert "OSError: the control's sender broke" in text
