"""Short writes: one_copy resumes at the right field and offset, whatever the kernel takes."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_netcopy.send.builtin import OneCopy, advance_iov, send_rest
from pytest_netcopy.send.message import Message


class PartialSocket:
    """Accepts a random number of bytes per sendmsg/send call, as a full socket may."""

    def __init__(self, takes: list[int]) -> None:
        self.takes = takes
        self.calls = 0
        self.data = bytearray()

    def _take(self, available: int) -> int:
        want = self.takes[self.calls % len(self.takes)] if self.takes else available
        self.calls += 1
        return max(1, min(available, want))

    def sendmsg(self, buffers: list[memoryview], ancdata: Any = (), flags: int = 0) -> int:
        joined = b"".join(bytes(b) for b in buffers)
        n = self._take(len(joined))
        self.data += joined[:n]
        return n


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(8, 512).map(lambda n: n * 8),
    takes=st.lists(st.integers(1, 5000), min_size=1, max_size=20),
    count=st.integers(1, 5),
)
def test_one_copy_sends_every_byte_in_order(size: int, takes: list[int], count: int) -> None:
    fake = PartialSocket(takes)
    sender = OneCopy().sender(fake, 3, size)  # type: ignore[arg-type]
    sender.send(40, count)
    sender.close()
    expected = bytearray()
    m = Message(3, size)
    for seq in range(40, 40 + count):
        m.stamp(seq)
        expected += m.tobytes()
    assert fake.data == expected


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 64), min_size=1, max_size=8),
    data=st.data(),
)
def test_advance_iov_skips_exactly_what_was_sent(lengths: list[int], data: st.DataObject) -> None:
    bufs = [bytes([i]) * n for i, n in enumerate(lengths)]
    whole = b"".join(bufs)
    sent = data.draw(st.integers(0, len(whole)))
    rest = advance_iov([memoryview(b) for b in bufs], sent)
    assert b"".join(bytes(v) for v in rest) == whole[sent:]
    assert all(len(v) for v in rest[:1]) or not whole[sent:]


def test_advance_iov_refuses_more_than_was_there() -> None:
    with pytest.raises(ValueError, match="beyond the end"):
        advance_iov([memoryview(b"abc")], 4)


def test_send_rest_on_a_real_socketpair() -> None:
    a, b = socket.socketpair()
    with a, b:
        views = [memoryview(bytes([i]) * 10) for i in range(8)]
        calls = send_rest(a.sendmsg, views, 25)  # as if the first call took 25 bytes
        assert calls >= 1
        a.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := b.recv(4096):
            got += chunk
    assert got == b"".join(bytes(v) for v in views)[25:]


def test_registry_replace_swaps_a_mode_under_its_name() -> None:
    from pytest_netcopy.send.builtin import builtin_registry
    from pytest_netcopy.send.modes import FunctionMode

    registry = builtin_registry()
    slower = FunctionMode("two_copy", lambda sock, fields: sock.sendall(b"".join(fields)))
    registry.replace(slower)
    assert registry.get("two_copy") is slower
    with pytest.raises(KeyError, match="no mode named 'three_copy' to replace; known modes"):
        registry.replace(FunctionMode("three_copy", lambda sock, fields: None))


def test_zero_copy_stops_waiting_when_the_socket_is_shut(monkeypatch: pytest.MonkeyPatch) -> None:
    """No busy wait until the deadline: POLLHUP with sends outstanding is an error at once."""
    import select

    from pytest_netcopy.send.builtin import ZeroCopy
    from pytest_netcopy.sink.wire import set_socket_timeouts

    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname(), timeout=5)
        b, _ = server.accept()
    a.settimeout(None)  # blocking, as the pool's sockets are; bounded by the kernel below
    set_socket_timeouts(a, 2.0)
    with a, b:
        sender = ZeroCopy().sender(a, 1, 1024)
        try:
            sender.tracker.issue()  # one send the kernel will never complete now

            class Hup:
                def poll(self, timeout: float) -> list[tuple[int, int]]:
                    return [(a.fileno(), select.POLLHUP)]

                def unregister(self, fd: int) -> None:
                    pass

            monkeypatch.setattr(sender, "poller", Hup())
            with pytest.raises(ConnectionError, match="1 zero-copy sends outstanding"):
                sender.finish(5.0)
        finally:
            sender.close()
