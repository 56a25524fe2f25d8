"""Hooks that conftest files and plugins may implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_netcopy.send.modes import ModeRegistry


def pytest_netcopy_add_modes(registry: ModeRegistry) -> None:
    """Add send modes to the session's registry.

    Called once at configure time, so implement it in a conftest.py that pytest
    loads at start-up (the root one, or one in a directory named on the
    command line) or in a plugin::

        from pytest_netcopy import FunctionMode

        def send_frame(sock, fields):
            sock.sendall(b"".join(fields))

        def pytest_netcopy_add_modes(registry):
            registry.add(FunctionMode("joined", send_frame))
    """
