"""Request/response rounds: each connection sends one message, waits for the sink's answer.

:class:`RrPool` is a :class:`~pytest_netcopy.transport.pool.SenderPool` whose connections
open the sink's request/response flow (``sink/rr.py``). In a round each sender thread sends
``count`` requests one at a time with its mode's ``Sender.send(seq, 1)``, receives each
response, verifies every byte of it (the connection's response template carrying the
request's stamp) and records the round trip in ns; after the loop, still in the sender
thread, the round trips go into the connection's HdrHistogram. A corrupted response fails
the round with an IntegrityError naming the connection, sequence number and offset. With a
:class:`~pytest_netcopy.transport.schedule.Schedule` (open loop) each round trip is timed
from the transaction's due time instead (docs/latency.md).
"""

from __future__ import annotations

import socket
import struct
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from pytest_netcopy.instruments.steal import StealClock
from pytest_netcopy.send.modes import Mode, ModeUnsupported, Sender
from pytest_netcopy.sink import wire
from pytest_netcopy.sink.rr import RR_MAGIC, RR_NAGLE, RR_SETUP, response_template
from pytest_netcopy.transport.errors import IntegrityError, TransferError
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.placement import set_congestion
from pytest_netcopy.transport.pool import RoundResult, SenderPool
from pytest_netcopy.transport.records import Ack
from pytest_netcopy.transport.rounds import corruption
from pytest_netcopy.transport.schedule import Schedule, ScheduleRun

#: the histograms' range (ns) and precision: 1 µs .. 60 s, 3 significant digits
LOWEST_NS = 1_000
HIGHEST_NS = 60_000_000_000
DIGITS = 3
_stamp_into = struct.Struct("<I").pack_into


def new_histogram() -> Any:
    """An empty HdrHistogram of round trips in ns (1 µs .. 60 s, 3 significant digits)."""
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, DIGITS)


def record_all(histogram: Any, values: Sequence[int]) -> None:
    """Record ``values`` (ns) into ``histogram``; beyond its range they count at its top."""
    record = histogram.record_value
    for value in values:
        if not record(value):
            record(HIGHEST_NS)


@dataclass
class RrRound:
    """One round's transactions over all connections."""

    #: the round trips of the round (ns), all connections merged
    histogram: Any
    transactions: int
    #: from the first connection's first request to the last one's last response
    seconds: float
    #: open loop: transactions that started late, and the connections' spans on the schedule
    late: int = 0
    span_ns: int = 0


class Exchange:
    """One connection's requests and responses: the loops, the check, the round trips."""

    def __init__(self, sock: socket.socket, index: int, conn_id: int, response_size: int):
        self.sock, self.index, self.size = sock, index, response_size
        self.expected = bytearray(response_template(conn_id, response_size))
        self.buf = bytearray(response_size)
        self.view = memoryview(self.buf)
        self.latencies = array("q")
        self.histogram = new_histogram()
        self.loop_ns = (0, 0)
        self.scheduled: ScheduleRun | None = None

    def prepare(self, count: int) -> None:
        """Room for ``count`` round trips (allocated before the round, not in it)."""
        if len(self.latencies) < count:
            self.latencies = array("q", bytes(8 * count))

    def closed_loop(self, sender: Sender, first: int, count: int) -> None:
        """Requests ``first..first+count-1``, each sent when the last response is in."""
        lat, clock, send = self.latencies, time.perf_counter_ns, sender.send
        recv_into, view, size = self.sock.recv_into, self.view, self.size
        buf, expected, stamp, mask = self.buf, self.expected, _stamp_into, wire.STAMP_MASK
        begin = clock()
        for k in range(count):
            seq = first + k
            t0 = clock()
            send(seq, 1)
            got = recv_into(view, size)
            if got != size:
                self._rest(got, seq)
            lat[k] = clock() - t0
            stamp(expected, 0, seq & mask)
            if buf != expected:
                raise self._bad(seq)
        self.loop_ns = (begin, clock())

    def open_loop(self, sender: Sender, first: int, count: int, schedule: Schedule) -> None:
        """The same on ``schedule``: each round trip timed from the request's due time."""
        send, recv_into, view, size = sender.send, self.sock.recv_into, self.view, self.size
        buf, expected, stamp, mask = self.buf, self.expected, _stamp_into, wire.STAMP_MASK

        def transact(k: int) -> None:
            send(first + k, 1)
            got = recv_into(view, size)
            if got != size:
                self._rest(got, first + k)

        def check(k: int) -> None:
            stamp(expected, 0, (first + k) & mask)
            if buf != expected:
                raise self._bad(first + k)

        begin = schedule.clock()
        self.scheduled = schedule.run(count, transact, self.latencies, check)
        self.loop_ns = (begin, begin + self.scheduled.span_ns)

    def record(self, count: int) -> None:
        """This round's round trips into the (reset) histogram."""
        self.histogram.reset()
        record_all(self.histogram, self.latencies[:count])

    def _rest(self, got: int, seq: int) -> None:
        """The rest of a response that came in pieces (EOF: ConnectionError)."""
        while 0 < got < self.size:
            r = self.sock.recv_into(self.view[got:], self.size - got)
            got = got + r if r else 0
        if got < self.size:
            raise ConnectionError(
                f"connection {self.index}: the sink closed the connection during the "
                f"response to request {seq}"
            )

    def _bad(self, seq: int) -> IntegrityError:
        buf, exp = self.buf, self.expected
        j = next(j for j in range(self.size) if buf[j] != exp[j])
        place = f"connection {self.index}, sequence number {seq}"
        return IntegrityError(corruption("response corrupted", place, self.size, j, exp[j], buf[j]))


class RrPool(SenderPool):
    """T connections doing request/response rounds (closed loop, or open on ``rate``).

    :attr:`last` holds the figures of the latest round (its histogram merged over the
    connections). ``nodelay`` (default on) sets TCP_NODELAY on both ends of every connection.
    """

    def __init__(
        self,
        sink: Peer,
        mode: Mode,
        size: int,
        threads: int,
        *,
        response_size: int,
        timeout: float,
        rate: float | None = None,
        nodelay: bool = True,
        congestion: str = "system",
        cpus: Sequence[int] = (),
        steal: StealClock | None = None,
    ) -> None:
        if getattr(mode, "transport", "tcp") != "tcp":
            raise ModeUnsupported(f"{mode.name}: request/response runs over TCP only")
        super().__init__(
            sink, mode, size, threads, timeout=timeout, nodelay=nodelay,
            congestion=congestion, cpus=cpus, steal=steal,
        )  # fmt: skip
        self.response_size = response_size
        self.schedule = Schedule(rate) if rate else None
        self.exchanges: list[Exchange] = []
        self.last: RrRound | None = None

    def _connect_one(self) -> None:
        flags = 0 if self.nodelay else RR_NAGLE
        setup = RR_SETUP.pack(self.response_size, flags)
        sock, conn_id, tid = self.sink.connect(self.size, RR_MAGIC, setup=setup)
        self.socks.append(sock)
        self.conn_ids.append(conn_id)
        self.sink_tids.append(tid)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if self.nodelay else 0)
        self.congestion_used = set_congestion(sock, self.congestion)
        self._add_senders(sock, conn_id)  # the mode's only: no control here
        self.exchanges.append(Exchange(sock, len(self.exchanges), conn_id, self.response_size))

    def _send_round(self, i: int) -> None:
        """Thread ``i``'s part of a round: the header, the transactions, their histogram."""
        sock, sender, exchange = self.socks[i], self.senders[i], self.exchanges[i]
        try:
            count = self._count
            sock.sendall(wire.ROUND.pack(wire.ROUND_MAGIC, self._round_no, count))
            if self.schedule is None:
                exchange.closed_loop(sender, self._seq, count)
            else:
                exchange.open_loop(sender, self._seq, count, self.schedule)
            sender.finish(self.timeout)
            self._end_ns[i] = time.perf_counter_ns()
            exchange.record(count)
        except BaseException as exc:
            self._errors[i] = exc

    def run_round(self, count: int, *, control: bool = False) -> RoundResult:
        """One round of ``count`` transactions per connection; its figures in :attr:`last`."""
        if control:
            raise ValueError("request/response rounds have no control")
        for exchange in self.exchanges:
            exchange.prepare(count)
        try:
            result = super().run_round(count)
        except TransferError:
            bad = next((e for e in self._errors if isinstance(e, IntegrityError)), None)
            if bad is not None:
                raise bad from None
            raise
        self.last = self._round_figures(count)
        return result

    def _round_figures(self, count: int) -> RrRound:
        merged = new_histogram()
        for exchange in self.exchanges:
            merged.add(exchange.histogram)
        begin = min(e.loop_ns[0] for e in self.exchanges)
        end = max(e.loop_ns[1] for e in self.exchanges)
        runs = [e.scheduled for e in self.exchanges if e.scheduled is not None]
        return RrRound(
            histogram=merged,
            transactions=count * self.nthreads,
            seconds=max(end - begin, 1) / 1e9,
            late=sum(r.late for r in runs),
            span_ns=sum(r.span_ns for r in runs),
        )

    def _describe_bad(self, conn: int, ack: Ack) -> str:
        return "request " + super()._describe_bad(conn, ack)
