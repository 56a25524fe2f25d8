"""A send mode of your own: the worked example the README shows.

pytest loads this root conftest at start-up, so from a clone

    pytest benchmarks/ --netcopy-modes=two_copy,joined

benchmarks ``joined`` next to the built-in modes, with the same integrity
check, counters and control send. Copy these lines into your own conftest.py
(the root one, or one in a directory named on the command line) and change
the function: it gets the connected blocking socket and the message's 8
fields as memoryviews (field 0 already stamped), and must send all their
bytes, in order, before it returns, without keeping the views.

Registering a mode changes nothing else: the default ``--netcopy-modes``
stays two_copy,one_copy,zero_copy. tests/test_joined_example.py runs it.
"""

from __future__ import annotations

import socket

from pytest_netcopy import FunctionMode, ModeRegistry


def send_joined(sock: socket.socket, fields: list[memoryview]) -> None:
    """b"".join of the 8 fields into a new bytes object, then sendall."""
    sock.sendall(b"".join(fields))


def pytest_netcopy_add_modes(registry: ModeRegistry) -> None:
    registry.add(FunctionMode("joined", send_joined))
