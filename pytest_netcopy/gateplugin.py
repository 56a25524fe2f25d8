"""The regression gate inside a pytest session (--netcopy-baseline, --netcopy-gate)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_netcopy.runner import NetcopySession


def add_options(parser: pytest.Parser) -> None:
    """Add the gate's options to the netcopy group."""


class GatePlugin:
    """Registered by plugin.py in pytest_configure; compares the run with a baseline."""

    def __init__(self, config: pytest.Config, session: NetcopySession) -> None:
        self.config = config
        self.session = session
