"""What goes wrong between the senders and the sink, as typed errors."""

from __future__ import annotations


class TransferError(Exception):
    """A round could not complete: sink died, timed out, refused, or protocol broke."""


class IntegrityError(TransferError):
    """The sink received a byte that differs from what was sent."""


class CongestionRefused(TransferError):
    """The kernel would not set the TCP congestion control that was asked for.

    Carries the facts (``choice``, ``reason``: the errno text); the layer that
    knows where the choice came from phrases it with :meth:`describe`.
    """

    def __init__(self, choice: str, reason: str) -> None:
        self.choice = choice
        self.reason = reason
        super().__init__(self.describe())

    def describe(self, option: str | None = None) -> str:
        """The message; with ``option`` (the setting's name) it reads ``OPTION=CHOICE: ...``."""
        what = f"{option}={self.choice}" if option else f"TCP congestion control {self.choice}"
        return (
            f"{what}: the kernel refused it ({self.reason}); see "
            "net.ipv4.tcp_available_congestion_control and "
            "tcp_allowed_congestion_control, or use auto or system"
        )
