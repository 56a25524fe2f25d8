"""pytest-netcopy: benchmark how Linux sends network data, and tell the truth about it.

Kept import-light: ``python -m pytest_netcopy.sink`` imports this package
first, and the sink must not pull in pytest or the rest of the plugin. The
public names below are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["FunctionMode", "Mode", "ModeRegistry", "ModeUnsupported", "Sender", "__version__"]

if TYPE_CHECKING:
    from pytest_netcopy.send.modes import FunctionMode, Mode, ModeRegistry, ModeUnsupported, Sender


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pytest_netcopy.send import modes

        return getattr(modes, name)
    raise AttributeError(f"module 'pytest_netcopy' has no attribute {name!r}")
