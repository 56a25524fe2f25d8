"""T sender threads, one connection each to the peer, running rounds together."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_netcopy.instruments.steal import StealClock
from pytest_netcopy.send.modes import Mode, Sender
from pytest_netcopy.sink import wire
from pytest_netcopy.transport import tcpinfo
from pytest_netcopy.transport.errors import IntegrityError, TransferError
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.placement import set_congestion
from pytest_netcopy.transport.records import Ack, End, UdpRound


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


class SenderPool:
    """T sender threads, one connection each, released together by a barrier.

    The threads exist for the whole benchmark and wait at the start barrier
    between rounds, so counters can be attached to them by thread id. The
    controller (the caller of :meth:`run_round`) releases them and then reads
    the sink's acks; a round ends when the sink has acked every byte of every
    connection and every thread has settled its sends.
    """

    def __init__(
        self,
        sink: Peer,
        mode: Mode,
        size: int,
        threads: int,
        *,
        timeout: float,
        nodelay: bool = False,
        congestion: str = "system",
        cpus: Sequence[int] = (),
        control: Mode | None = None,
        steal: StealClock | None = None,
    ) -> None:
        self.sink = sink
        self.control = control
        self.congestion = congestion
        self.congestion_used = ""
        self.mode = mode
        self.size = size
        self.nthreads = threads
        self.timeout = timeout
        self.nodelay = nodelay
        self.cpus = set(cpus)
        if steal is None:
            # the senders' and the sink's CPUs where both are pinned, else every CPU
            steal = StealClock(self.cpus | set(sink.cpus) if self.cpus and sink.cpus else ())
        self.steal = steal
        self.socks: list[socket.socket] = []
        self.conn_ids: list[int] = []
        self.sink_tids: list[int] = []
        self.senders: list[Sender] = []
        #: the control mode's senders, on the same connections (same wire format)
        self.control_senders: list[Sender] = []
        self._use_control = False
        #: which mode sent each round (a broken stream may come from the round before)
        self._sent_by: list[str] = []
        self.tids: list[int] = [0] * threads
        self._threads: list[threading.Thread] = []
        self._start = threading.Barrier(threads + 1)
        self._done = threading.Barrier(threads + 1)
        self._stop = False
        self._count = 0
        self._round_no = 0
        self._seq = 0
        self._end_ns = [0] * threads
        self._errors: list[BaseException | None] = [None] * threads

    def __enter__(self) -> SenderPool:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            # e.g. Ctrl-C mid-round: the threads are not at the start barrier, and
            # would not get there; unblock them now rather than after a timeout
            self._abort()
        self.close()

    def open(self) -> None:
        for _ in range(self.nthreads):
            self._connect_one()
        ready = threading.Barrier(self.nthreads + 1)
        for i in range(self.nthreads):
            t = threading.Thread(
                target=self._worker, args=(i, ready), name=f"netcopy-sender-{i}", daemon=True
            )
            t.start()
            self._threads.append(t)
        try:
            ready.wait(timeout=self.timeout)
        except threading.BrokenBarrierError:
            self._abort()
            raise TransferError(self._explain("the sender threads did not start")) from None

    def _connect_one(self) -> None:
        """One more connection, set up, with its sender (and the control's)."""
        sock, conn_id, tid = self.sink.connect(self.size)
        self.socks.append(sock)
        self.conn_ids.append(conn_id)
        self.sink_tids.append(tid)
        if self.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.congestion_used = set_congestion(sock, self.congestion)
        self.mode.prepare(sock)
        sender = self.mode.sender(sock, conn_id, self.size)
        sender.timeout = self.timeout
        self.senders.append(sender)
        if self.control is not None:
            other = self.control.sender(sock, conn_id, self.size)
            other.timeout = self.timeout
            self.control_senders.append(other)

    def _worker(self, i: int, ready: threading.Barrier) -> None:
        try:
            if self.cpus:
                os.sched_setaffinity(0, self.cpus)  # this thread only
            self.tids[i] = threading.get_native_id()
        except BaseException as exc:
            self._errors[i] = exc
            ready.abort()  # open() reports it at once instead of timing out
            return
        try:
            ready.wait(timeout=self.timeout)
        except threading.BrokenBarrierError:
            return
        while True:
            try:
                self._start.wait()
            except threading.BrokenBarrierError:
                return
            if self._stop:
                return
            self._send_round(i)
            try:
                self._done.wait(timeout=self.timeout)
            except threading.BrokenBarrierError:
                return

    def _send_round(self, i: int) -> None:
        """Thread ``i``'s part of a round: the header, the messages, settle them."""
        sock = self.socks[i]
        sender = self.control_senders[i] if self._use_control else self.senders[i]
        try:
            count = self._count
            sock.sendall(wire.ROUND.pack(wire.ROUND_MAGIC, self._round_no, count))
            sender.send(self._seq, count)
            if not self.nodelay:
                # push the tail Nagle holds back, so the round does not wait
                # for a delayed ACK; within the round Nagle acts as configured
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            sender.finish(self.timeout)
            self._end_ns[i] = time.perf_counter_ns()
        except BaseException as exc:
            self._errors[i] = exc

    def run_round(self, count: int, *, control: bool = False) -> RoundResult:
        """One round: every thread sends ``count`` messages; ends when all are acked.

        ``control=True``: the pool's control mode sends them instead, on the
        same connections and threads, continuing the same sequence numbers.
        """
        if control and self.control is None:
            raise ValueError("this pool has no control mode")
        self._use_control = control
        self._count = count
        self._round_no += 1
        self._sent_by.append(self._round_mode())
        self._errors = [None] * self.nthreads
        steal_before = self.steal.read()
        info_before = tcpinfo.read_all(self.socks)
        start = time.perf_counter_ns()
        try:
            self._start.wait(timeout=self.timeout)
            acks, last_ack_ns = self._collect_acks()
            self._done.wait(timeout=self.timeout)
        except threading.BrokenBarrierError:
            self._abort()
            raise TransferError(self._explain(f"{self._round_name()} did not finish")) from None
        except IntegrityError:
            self._abort()
            raise
        except TransferError as exc:
            self._abort()
            raise TransferError(self._explain(str(exc))) from None
        self._seq += count
        if any(self._errors):
            self._abort()
            raise TransferError(self._explain(f"{self._round_name()} failed"))
        for i, ack in enumerate(acks):
            if ack is not None and not ack.ok:
                raise IntegrityError(self._describe_bad(i, ack))
        seconds = (max(last_ack_ns, *self._end_ns) - start) / 1e9
        steal_ms = self.steal.ms(steal_before, self.steal.read())
        info = tcpinfo.round_figures(info_before, tcpinfo.read_all(self.socks))
        return RoundResult(
            seconds=seconds,
            messages=count * self.nthreads,
            bytes=count * self.nthreads * self.size,
            acks=[a for a in acks if a is not None],
            sender_stats=[s.stats() for s in self.senders],
            steal_ms=steal_ms,
            retransmits=info.retrans,
            retransmits_not_counted=info.missing.get("retrans"),
            tcp_info=info,
        )

    def _collect_acks(self) -> tuple[list[Ack | None], int]:
        """The round's ack per connection (None: a sender failed first) and when the last came."""
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        acks: list[Ack | None] = [None] * self.nthreads
        last_ack_ns = 0
        deadline = time.monotonic() + self.timeout
        while waiting:
            record = self.sink.read_record(0.05)
            if record is None:
                if any(self._errors):
                    break  # a sender failed: its ack will never come
                if time.monotonic() > deadline:
                    raise TransferError(
                        f"{self._round_name()}: no ack from the sink for connection(s) "
                        f"{sorted(waiting)} within {self.timeout:g} s"
                    )
                continue
            if isinstance(record, End) and record.conn_id in self.conn_ids:
                # mid-benchmark, any end of one of our streams is an error
                raise IntegrityError(
                    self._describe_end(self.conn_ids.index(record.conn_id), record)
                )
            if not isinstance(record, Ack):
                continue
            if record.round_no != self._round_no or record.conn_id not in waiting:
                continue  # left over from an aborted benchmark
            last_ack_ns = time.perf_counter_ns()
            acks[waiting.pop(record.conn_id)] = record
        return acks, last_ack_ns

    def finish_stream(self) -> None:
        """After the last round: close the send side and wait for the sink's verdict.

        Catches what no round's ack can: bytes sent after the last message of the
        last round. Raises IntegrityError unless every connection ended cleanly.
        """
        self.close_threads()
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + min(self.timeout, 10.0)
        while waiting:
            left = deadline - time.monotonic()
            record = self.sink.read_record(max(left, 0.0)) if left > 0 else None
            if record is None:
                raise TransferError(
                    f"the sink did not confirm the end of connection(s) {sorted(waiting)}"
                )
            if not isinstance(record, End) or record.conn_id not in waiting:
                continue
            conn = waiting.pop(record.conn_id)
            if not record.clean:
                raise IntegrityError(self._describe_end(conn, record))

    def _describe_end(self, conn: int, end: End) -> str:
        text = (
            f"payload stream broken ({self.mode.name}, {self.size} B, {self.nthreads} threads): "
            f"connection {conn}: {end.text} ({end.extra} bytes)"
        )
        if self.control is not None and self._sent_by:
            # the bytes at fault may be the previous round's: say who sent both
            last = self._sent_by[-2:]
            rounds = range(self._round_no - len(last) + 1, self._round_no + 1)
            text += "; the last rounds were sent by " + ", ".join(
                f"round {n}: {name}" for n, name in zip(rounds, last, strict=True)
            )
        return text

    def _round_mode(self) -> str:
        """The name of the mode that sends this round (the control's, in a control round)."""
        if self._use_control and self.control is not None:
            return f"{self.control.name}, the control of {self.mode.name}"
        return self.mode.name

    def _round_name(self) -> str:
        """``round 3`` or ``round 3 (bare_send, the control of two_copy)``."""
        if self._use_control and self.control is not None:
            return f"round {self._round_no} ({self._round_mode()})"
        return f"round {self._round_no}"

    def _describe_bad(self, conn: int, ack: Ack) -> str:
        fs = self.size // wire.FIELDS
        return (
            f"payload corrupted ({self._round_mode()}, {self.size} B, {self.nthreads} threads): "
            f"connection {conn}, message sequence number {ack.bad_seq}, offset {ack.bad_offset} "
            f"(field {ack.bad_offset // fs}, byte {ack.bad_offset % fs}): "
            f"expected 0x{ack.expected:02x}, received 0x{ack.received:02x}"
        )

    def _explain(self, what: str) -> str:
        lines = [what + ":"]
        for i, err in enumerate(self._errors):
            if err is None:
                continue
            if isinstance(err, BlockingIOError):
                text = f"a socket call waited longer than the {self.timeout:g} s timeout"
            else:
                text = f"{type(err).__name__}: {err}"
            lines.append(f"  connection {i}: {text}")
        if len(lines) == 1:
            lines.append(f"  no thread reported back within {self.timeout:g} s")
        if not self.sink.alive():
            lines.append("  " + self.sink.describe_death())
        else:
            tail = self.sink.log_tail(600).splitlines()[-3:]
            if tail:
                lines.append("  the sink's log ends:")
                lines.extend("    " + line for line in tail)
        return "\n".join(lines)

    def _abort(self) -> None:
        """Unblock every thread (shut the sockets) so close() can join them."""
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._start.abort()
        self._done.abort()

    def close_threads(self) -> None:
        """Stop and join the sender threads (idempotent)."""
        if not self._threads:
            return
        self._stop = True
        try:
            self._start.wait(timeout=min(self.timeout, 5.0))
        except threading.BrokenBarrierError:
            self._abort()
        for t in self._threads:
            t.join(timeout=self.timeout)
        if any(t.is_alive() for t in self._threads):
            self._abort()
            for t in self._threads:
                t.join(timeout=5.0)
        self._threads = []

    def close(self) -> None:
        self.close_threads()
        for sender in [*self.senders, *self.control_senders]:
            sender.close()
        self.senders = []
        self.control_senders = []
        for sock in self.socks:
            sock.close()
        self.socks = []
