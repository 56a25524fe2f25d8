"""What a round of any pool yields and the words for what went wrong in it.

:class:`RoundResult` is a round's figures (:meth:`SenderPool.run_round`, and the UDP and
request/response pools' own); :func:`explain` and :func:`corruption` word a failed round
the same way whichever pool ran it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_netcopy.sink import wire
from pytest_netcopy.transport import tcpinfo
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.records import Ack, UdpRound


@dataclass
class RoundResult:
    seconds: float
    messages: int
    bytes: int
    acks: list[Ack]
    sender_stats: list[dict[str, int] | None] = field(default_factory=list)
    #: hypervisor steal on the benchmark's CPUs during the round (ms); None: not known
    steal_ms: float | None = None
    #: segments the senders retransmitted during the round (TCP_INFO); None: not known
    retransmits: int | None = None
    #: why ``retransmits`` is None
    retransmits_not_counted: str | None = None
    #: TCP_INFO over the connections (docs/tcp-info.md); None: not read (e.g. not TCP)
    tcp_info: tcpinfo.RoundTcpInfo | None = None
    #: the sink's datagram counts (UDP modes over a sink); None: TCP, or nothing receives
    udp: UdpRound | None = None

    @property
    def verified_bytes(self) -> int:
        return sum(a.verified_bytes for a in self.acks)


def explain(what: str, errors: Sequence[BaseException | None], timeout: float, sink: Peer) -> str:
    """``what`` failed: each connection's error, and the sink's death or its log's tail."""
    lines = [what + ":"]
    for i, err in enumerate(errors):
        if err is None:
            continue
        if isinstance(err, BlockingIOError):
            text = f"a socket call waited longer than the {timeout:g} s timeout"
        else:
            text = f"{type(err).__name__}: {err}"
        lines.append(f"  connection {i}: {text}")
    if len(lines) == 1:
        lines.append(f"  no thread reported back within {timeout:g} s")
    if not sink.alive():
        lines.append("  " + sink.describe_death())
    else:
        tail = sink.log_tail(600).splitlines()[-3:]
        if tail:
            lines.append("  the sink's log ends:")
            lines.extend("    " + line for line in tail)
    return "\n".join(lines)


def corruption(head: str, place: str, size: int, offset: int, expected: int, got: int) -> str:
    """``{head}: {place}, offset 70 (field 1, byte 6): expected 0x.., received 0x..`` for the
    first bad byte of a ``size``-byte message."""
    fs = size // wire.FIELDS
    return (
        f"{head}: {place}, offset {offset} (field {offset // fs}, byte {offset % fs}): "
        f"expected 0x{expected:02x}, received 0x{got:02x}"
    )
