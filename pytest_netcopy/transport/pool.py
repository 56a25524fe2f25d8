"""T sender threads, one connection each to the peer, running rounds together."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

from pytest_netcopy.instruments.steal import StealClock
from pytest_netcopy.send.modes import Mode, Sender
from pytest_netcopy.sink import wire
from pytest_netcopy.transport import tcpinfo
from pytest_netcopy.transport.errors import IntegrityError, TransferError
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.placement import set_congestion
from pytest_netcopy.transport.records import Ack, End, UdpAck
from pytest_netcopy.transport.rounds import RoundResult as RoundResult
from pytest_netcopy.transport.rounds import corruption, explain

#: what a round's ``collect`` step returns
R = TypeVar("R")
#: the sink's per-connection record of a round
A = TypeVar("A", Ack, UdpAck)


class SenderPool:
    """T sender threads, one connection each, released together by a barrier.

    The threads exist for the whole benchmark and wait at the start barrier
    between rounds, so counters can be attached to them by thread id. The
    controller (the caller of :meth:`run_round`) releases them and then reads
    the sink's acks; a round ends when the sink has acked every byte of every
    connection and every thread has settled its sends.
    """

    #: mid-benchmark, any end of one of the pool's streams fails the round (False: only
    #: the end of a connection whose record the round still waits for)
    ends_any_time: ClassVar[bool] = True

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
        self._add_senders(sock, conn_id)

    def _add_senders(self, sock: socket.socket, conn_id: int) -> None:
        """The mode's sender on a new connection (and the control's, on the same one)."""
        self.mode.prepare(sock)
        self.senders.append(self._new_sender(self.mode, sock, conn_id))
        if self.control is not None:
            self.control_senders.append(self._new_sender(self.control, sock, conn_id))

    def _new_sender(self, mode: Mode, sock: socket.socket, conn_id: int) -> Sender:
        sender = mode.sender(sock, conn_id, self.size)
        sender.timeout = self.timeout
        return sender

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
        steal_before = self._begin_round(count, control)
        info_before = tcpinfo.read_all(self.socks)
        start = time.perf_counter_ns()
        acks, last_ack_ns = self._release(self._collect_acks)
        for i, ack in enumerate(acks):
            if ack is not None and not ack.ok:
                raise IntegrityError(self._describe_bad(i, ack))
        seconds = (max(last_ack_ns, *self._end_ns) - start) / 1e9
        result = self._round_result(seconds, [a for a in acks if a is not None], steal_before)
        info = tcpinfo.round_figures(info_before, tcpinfo.read_all(self.socks))
        result.retransmits, result.tcp_info = info.retrans, info
        result.retransmits_not_counted = info.missing.get("retrans")
        return result

    # the steps of a round, shared by every pool's run_round

    def _begin_round(self, count: int, control: bool) -> int | None:
        """Set up round ``count`` (sent by the control mode or not); the steal clock's reading."""
        if control and self.control is None:
            raise ValueError("this pool has no control mode")
        self._use_control, self._count = control, count
        self._round_no += 1
        self._sent_by.append(self._round_mode())
        self._errors = [None] * self.nthreads
        return self.steal.read()

    def _release(self, collect: Callable[[], R]) -> R:
        """Release the threads, ``collect`` the sink's records meanwhile, wait for the
        threads: what ``collect`` returned, once every thread has done its part."""
        try:
            self._start.wait(timeout=self.timeout)
            records = collect()
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
        self._seq += self._count
        self._check_errors()
        return records

    def _check_errors(self) -> None:
        """A thread's failure fails the round."""
        if any(self._errors):
            self._abort()
            raise TransferError(self._explain(f"{self._round_name()} failed"))

    def _round_result(
        self, seconds: float, acks: list[Ack], steal_before: int | None
    ) -> RoundResult:
        """The figures every round has; a pool adds those of its transport."""
        messages = self._count * self.nthreads
        return RoundResult(
            seconds=seconds,
            messages=messages,
            bytes=messages * self.size,
            acks=acks,
            sender_stats=[s.stats() for s in self.senders],
            steal_ms=self.steal.ms(steal_before, self.steal.read()),
        )

    def _collect_acks(self) -> tuple[list[Ack | None], int]:
        """The round's ack per connection (None: a sender failed first) and when the last came."""
        return self._collect(Ack, "ack from the sink for connection(s)")

    def _collect(self, kind: type[A], what: str) -> tuple[list[A | None], int]:
        """The round's ``kind`` record per connection (None: a sender failed first) and when
        the last came; none within the timeout: a TransferError saying no ``what`` came."""
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        got: list[A | None] = [None] * self.nthreads
        last_ns = 0
        deadline = time.monotonic() + self.timeout
        while waiting:
            record = self.sink.read_record(0.05)
            if record is None:
                if any(self._errors):
                    break  # a sender failed: its record will never come
                if time.monotonic() > deadline:
                    late = f"{sorted(waiting)} within {self.timeout:g} s"
                    raise TransferError(f"{self._round_name()}: no {what} {late}")
                continue
            if isinstance(record, End) and record.conn_id in (
                self.conn_ids if self.ends_any_time else waiting
            ):
                raise IntegrityError(
                    self._describe_end(self.conn_ids.index(record.conn_id), record)
                )
            if not isinstance(record, kind):
                continue
            if record.round_no != self._round_no or record.conn_id not in waiting:
                continue  # left over from an aborted benchmark
            last_ns = time.perf_counter_ns()
            got[waiting.pop(record.conn_id)] = record
        return got, last_ns

    def finish_stream(self) -> None:
        """After the last round: close the send side and wait for the sink's verdict.

        Catches what no round's ack can: bytes sent after the last message of the
        last round. Raises IntegrityError unless every connection ended cleanly.
        """
        self.close_threads()
        self._await_ends(self.socks, "connection(s)")

    def _await_ends(self, socks: Sequence[socket.socket], what: str) -> None:
        """Shut the send side of ``socks``; every connection must then end cleanly."""
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + min(self.timeout, 10.0)
        while waiting:
            left = deadline - time.monotonic()
            record = self.sink.read_record(max(left, 0.0)) if left > 0 else None
            if record is None:
                raise TransferError(f"the sink did not confirm the end of {what} {sorted(waiting)}")
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

    def _corrupted(self, what: str) -> str:
        """``payload corrupted (two_copy, 4096 B, 2 threads)``: the head of a corruption."""
        return f"{what} corrupted ({self._round_mode()}, {self.size} B, {self.nthreads} threads)"

    def _describe_bad(self, conn: int, ack: Ack) -> str:
        place = f"connection {conn}, message sequence number {ack.bad_seq}"
        head = self._corrupted("payload")
        return corruption(head, place, self.size, ack.bad_offset, ack.expected, ack.received)

    def _explain(self, what: str) -> str:
        return explain(what, self._errors, self.timeout, self.sink)

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
