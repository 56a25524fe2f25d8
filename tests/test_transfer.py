"""Sender-socket setup: congestion control and CPU placement."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_netcopy.transport.errors import CongestionRefused, TransferError
from pytest_netcopy.transport.placement import plan_placement, set_congestion


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        yield s


def system_default() -> str:
    return Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()


def test_system_keeps_the_kernel_default(sock: socket.socket) -> None:
    assert set_congestion(sock, "system") == system_default()


def test_auto_is_cubic_where_allowed_else_the_default(sock: socket.socket) -> None:
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    used = set_congestion(sock, "auto")
    if "cubic" in available:
        # root may pick any available algorithm; others only the allowed ones
        allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read_text().split()
        assert used == "cubic" or ("cubic" not in allowed and used == system_default())
    else:
        assert used == system_default()


def test_an_unknown_algorithm_is_a_clear_error(sock: socket.socket) -> None:
    with pytest.raises(TransferError, match=r"nosuchcc: the kernel refused") as info:
        set_congestion(sock, "nosuchcc")
    assert isinstance(info.value, CongestionRefused)
    assert info.value.choice == "nosuchcc"
    assert "--netcopy" not in str(info.value)  # the transport does not know the option
    # the caller that knows the option phrases it, as the user has always read it
    text = info.value.describe(option="--netcopy-congestion")
    assert re.match(r"--netcopy-congestion=nosuchcc: the kernel refused it \(.+\); see ", text)
    assert text == (
        f"--netcopy-congestion=nosuchcc: the kernel refused it ({info.value.reason}); see "
        "net.ipv4.tcp_available_congestion_control and tcp_allowed_congestion_control, "
        "or use auto or system"
    )


@pytest.mark.parametrize(
    ("pin", "cpus", "senders", "sink", "pinned"),
    [
        (True, [0, 1], [0], [1], True),
        (True, [0, 1, 2, 3], [0, 1, 2], [3], True),
        (True, [5], [5], [5], False),  # one CPU: nothing to separate
        (False, [0, 1], [0, 1], [0, 1], False),
    ],
)
def test_placement(
    pin: bool, cpus: list[int], senders: list[int], sink: list[int], pinned: bool
) -> None:
    p = plan_placement(pin, cpus)
    assert (p.sender_cpus, p.sink_cpus, p.pinned) == (senders, sink, pinned)
