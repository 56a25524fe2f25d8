"""``--netcopy-target``: where the senders send, in the user's terms (docs/blackhole.md).

``sink`` (the default) is a receiver that verifies every byte. ``blackhole`` is the
transmit-only topology of :mod:`pytest_netcopy.transport.blackhole`: only root can
build it, so a session that asks for it without root stops at once with a usage
error (a run whose every benchmark skipped would look green and measure nothing);
TCP modes skip on it, each with the reason (TCP needs a receiver).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from pytest_netcopy.bench.runner import NetcopySession
from pytest_netcopy.bench.settings import Settings
from pytest_netcopy.plugin.options import OPTIONS
from pytest_netcopy.send.modes import Mode
from pytest_netcopy.transport.blackhole import why_not


def check_target(settings: Settings, sources: Mapping[str, str]) -> None:
    """A blackhole target this session cannot have is a one-line usage error naming the option."""
    if settings.target != "blackhole":
        return
    where = f"{sources.get('target', OPTIONS['target'].cli)}=blackhole"
    reason = why_not()
    if reason:
        raise pytest.UsageError(
            f"{where}: the blackhole target {reason}; run as root, or use the default target sink"
        )
    if settings.peer:
        raise pytest.UsageError(
            f"{where}: the blackhole target sends to no receiver, so it cannot be combined with "
            f"{OPTIONS['peer'].cli} (a sink on another host); use one or the other"
        )


def skip_reason(settings: Settings, mode: Mode, pattern: str = "stream") -> str | None:
    """Why ``mode`` (in ``pattern``) does not run on this session's target (None: it runs)."""
    if settings.target != "blackhole":
        return None
    if pattern != "stream":
        return (
            f"{pattern}-{mode.name}: {OPTIONS['target'].cli}=blackhole is transmit only and "
            "request/response needs a receiver to answer"
        )
    if getattr(mode, "transport", "tcp") == "udp":
        return None
    return (
        f"{mode.name}: {OPTIONS['target'].cli}=blackhole is transmit only and TCP needs a "
        "receiver (its handshake and ACKs); the blackhole target runs the UDP modes"
    )


def target_lines(session: NetcopySession) -> list[str]:
    """The terminal summary's lines about a blackhole target: its probe's verdict."""
    probe = session.probe
    if session.settings.target != "blackhole" or probe is None:
        return []
    if probe.reason is not None:
        return [f"blackhole target: {probe.reason}"]
    return [
        f"blackhole target: the zero-copy probe's {probe.completions} completions of "
        f"{probe.size} B datagrams came back uncopied: zero-copy takes effect on this path"
    ]
