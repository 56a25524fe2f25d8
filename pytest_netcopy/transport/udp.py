"""T sender threads, one UDP flow each: the datagram counterpart of :class:`SenderPool`.

A flow over a sink is a TCP control connection (HELLO with ``wire.UDP_MAGIC``; the sink
answers with the port of a datagram socket it bound for the flow) and a connected
SOCK_DGRAM socket to that port. Per round each thread announces ``ROUND`` on its control,
sends its datagrams (paced when a rate is set), sends ``UDP_MARK`` and settles its sends;
the sink reports one ``UDP_ACK`` per flow: received, lost, reordered, duplicated, and the
first bad byte of a corrupted datagram (an :class:`IntegrityError`). Loss is a result.

``transmit_only=(host, port)``: no sink, no control; datagrams go to that address and a
round ends when the senders have sent (and zero-copy completions are all in). docs/udp.md.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence

from pytest_netcopy.instruments.steal import StealClock
from pytest_netcopy.send.modes import Mode, ModeUnsupported, Sender
from pytest_netcopy.sink import wire
from pytest_netcopy.transport.errors import IntegrityError, TransferError
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.pool import RoundResult, SenderPool
from pytest_netcopy.transport.records import Ack, End, Record, UdpAck, UdpRound

#: seconds of datagrams one paced batch holds (the clock is read once per batch)
PACE_BATCH_SECONDS = 0.001
#: why a UDP round has no retransmission count (recorded word for word)
NO_RETRANSMITS = "UDP: nothing is retransmitted"


def paced_send(
    sender: Sender,
    first: int,
    count: int,
    rate: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Send ``count`` datagrams at ``rate`` per second (None: as fast as the sender goes).

    In batches of :data:`PACE_BATCH_SECONDS` worth, each due at ``start + sent / rate`` on
    a monotonic clock: a late batch is not made up for by sleeping less later, and an early
    one sleeps until it is due, so the average rate holds at any rate.
    """
    if not rate:
        sender.send(first, count)
        return
    batch = max(1, int(rate * PACE_BATCH_SECONDS))
    start = clock()
    done = 0
    while done < count:
        k = min(batch, count - done)
        sender.send(first + done, k)
        done += k
        ahead = start + done / rate - clock()
        if ahead > 0 and done < count:
            sleep(ahead)


class TransmitOnly(Peer):
    """No sink: the peer of a transmit-only pool (nothing receives, nothing reports)."""

    def __init__(self, target: tuple[str, int], *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.target = target
        self.local_threads = False

    @property
    def address(self) -> tuple[str, int]:
        return self.target

    def start(self) -> None:
        return None

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        return None

    def read_raw_record(self, timeout: float) -> bytes | None:
        return None

    def send_line(self, line: bytes) -> None:
        raise OSError("transmit only: no sink")

    def kill(self) -> None:
        return None

    def describe_death(self) -> str:
        return "transmit only: no sink"

    def log_tail(self, limit: int = 2000) -> str:
        return ""


class DatagramPool(SenderPool):
    """T sender threads, one UDP flow each, released together by a barrier (docs/udp.md)."""

    def __init__(
        self,
        sink: Peer | None,
        mode: Mode,
        size: int,
        threads: int,
        *,
        timeout: float,
        cpus: Sequence[int] = (),
        control: Mode | None = None,
        steal: StealClock | None = None,
        rate: float | None = None,
        transmit_only: tuple[str, int] | None = None,
    ) -> None:
        if (sink is None) == (transmit_only is None):
            raise ValueError("a DatagramPool needs either a sink or transmit_only=(host, port)")
        wire.check_datagram_size(size)
        peer = sink if sink is not None else TransmitOnly(transmit_only or ("", 0), timeout=timeout)
        super().__init__(
            peer, mode, size, threads, timeout=timeout, cpus=cpus, control=control, steal=steal
        )
        self.transmit_only = transmit_only
        #: datagrams per second per flow (None: unpaced); calibration may change it
        self.rate = rate
        self.controls: list[socket.socket] = []
        #: the sink's datagram sockets' SO_RCVBUF as the kernel reported them
        self.sink_rcvbufs: list[int] = []
        self.congestion_used = ""

    def _connect_one(self) -> None:
        """One more flow: its control connection (over a sink) and its datagram socket."""
        if self.transmit_only is not None:
            host, port = self.transmit_only
            conn_id, tid = len(self.socks) + 1, 0
        else:
            ctrl, conn_id, tid = self.sink.connect(self.size, wire.UDP_MAGIC)
            self.controls.append(ctrl)
            host = self.sink.address[0]
            port = self._sink_port(ctrl, conn_id)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        self.socks.append(sock)
        sock.connect((host, port))
        if self.transmit_only is None:  # the sink takes datagrams from this port only
            ctrl.sendall(wire.UDP_FROM.pack(wire.UDP_FROM_MAGIC, sock.getsockname()[1]))
        wire.set_socket_timeouts(sock, self.timeout)
        self.conn_ids.append(conn_id)
        self.sink_tids.append(tid)
        self.mode.prepare(sock)
        sender = self.mode.sender(sock, conn_id, self.size)
        sender.timeout = self.timeout
        self.senders.append(sender)
        if self.control is not None:
            other = self.control.sender(sock, conn_id, self.size)
            other.timeout = self.timeout
            self.control_senders.append(other)

    def _sink_port(self, ctrl: socket.socket, conn_id: int) -> int:
        deadline = time.monotonic() + self.timeout
        try:
            reply = wire.recv_before(ctrl, wire.UDP_PORT.size, deadline)
        except (OSError, ConnectionError) as exc:
            raise TransferError(
                f"the sink did not tell UDP flow {conn_id} its port: {exc}"
            ) from None
        magic, port, rcvbuf = wire.UDP_PORT.unpack(reply)
        if magic != wire.UDP_PORT_MAGIC:
            raise TransferError(f"UDP flow {conn_id}: {reply!r} where the sink's port belongs")
        self.sink_rcvbufs.append(rcvbuf)
        return int(port)

    def _send_round(self, i: int) -> None:
        """Flow ``i``'s part of a round: ROUND, the datagrams (paced), UDP_MARK, settle."""
        ctrl = self.controls[i] if self.controls else None
        sender = self.control_senders[i] if self._use_control else self.senders[i]
        try:
            count = self._count
            if ctrl is not None:
                ctrl.sendall(wire.ROUND.pack(wire.ROUND_MAGIC, self._round_no, count))
            paced_send(sender, self._seq, count, self.rate)
            if ctrl is not None:
                ctrl.sendall(wire.UDP_MARK.pack(wire.UDP_MARK_MAGIC, self._round_no, count))
            sender.finish(self.timeout)
            self._end_ns[i] = time.perf_counter_ns()
        except BaseException as exc:
            self._errors[i] = exc

    def run_round(self, count: int, *, control: bool = False) -> RoundResult:
        """One round: every flow sends ``count`` datagrams; ends when the sink has counted them
        (transmit only: when they are sent)."""
        if control and self.control is None:
            raise ValueError("this pool has no control mode")
        self._use_control, self._count = control, count
        self._round_no += 1
        self._sent_by.append(self._round_mode())
        self._errors = [None] * self.nthreads
        steal_before = self.steal.read()
        start = time.perf_counter_ns()
        try:
            self._start.wait(timeout=self.timeout)
            acks = self._collect_udp_acks()
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
        refused = [e for e in self._errors if isinstance(e, ModeUnsupported)]
        if refused:  # the kernel refused the mode mid-round (e.g. a size it cannot send so)
            self._abort()
            raise refused[0]
        if any(self._errors):
            self._abort()
            raise TransferError(self._explain(f"{self._round_name()} failed"))
        for i, ack in enumerate(acks):
            if ack is not None and not ack.ok:
                raise IntegrityError(self._describe_bad_datagram(i, ack))
        got = [a for a in acks if a is not None]
        tail = max((a.tail_us for a in got), default=0) / 1e6
        return RoundResult(
            seconds=(max(self._end_ns) - start) / 1e9 + tail,
            messages=count * self.nthreads,
            bytes=count * self.nthreads * self.size,
            acks=[self._as_ack(a) for a in got],
            sender_stats=[s.stats() for s in self.senders],
            steal_ms=self.steal.ms(steal_before, self.steal.read()),
            retransmits=None,
            retransmits_not_counted=NO_RETRANSMITS,
            udp=self._udp_round(count, got) if self.transmit_only is None else None,
        )

    def _udp_round(self, count: int, acks: list[UdpAck]) -> UdpRound:
        received = sum(a.received for a in acks)
        return UdpRound(
            sent=count * self.nthreads,
            received=received,
            lost=sum(a.lost for a in acks),
            reordered=sum(a.reordered for a in acks),
            duplicated=sum(a.duplicated for a in acks),
            verified_bytes=received * self.size,
        )

    def _as_ack(self, a: UdpAck) -> Ack:
        """The round's UDP_ACK as a stream's Ack: the sink's costs and verified bytes."""
        return Ack(
            a.conn_id, a.round_no, a.received * self.size, a.ok, a.expected, a.got,
            a.bad_seq, a.bad_offset, a.recv_calls, a.cpu_ns, a.voluntary_switches,
            a.involuntary_switches,
        )  # fmt: skip

    def _collect_udp_acks(self) -> list[UdpAck | None]:
        """The round's UDP_ACK per flow (None: a sender failed first); none when transmit only."""
        acks: list[UdpAck | None] = [None] * self.nthreads
        if self.transmit_only is not None:
            return acks
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        deadline = time.monotonic() + self.timeout
        while waiting:
            record: Record | None = self.sink.read_record(0.05)
            if record is None:
                if any(self._errors):
                    break  # a sender failed: its record will never come
                if time.monotonic() > deadline:
                    raise TransferError(
                        f"{self._round_name()}: no UDP round record from the sink for flow(s) "
                        f"{sorted(waiting)} within {self.timeout:g} s"
                    )
                continue
            if isinstance(record, End) and record.conn_id in waiting:
                raise IntegrityError(
                    self._describe_end(self.conn_ids.index(record.conn_id), record)
                )
            current = isinstance(record, UdpAck) and record.round_no == self._round_no
            if current and isinstance(record, UdpAck) and record.conn_id in waiting:
                acks[waiting.pop(record.conn_id)] = record
        return acks

    def _describe_bad_datagram(self, conn: int, ack: UdpAck) -> str:
        fs = self.size // wire.FIELDS
        return (
            f"datagram corrupted ({self._round_mode()}, {self.size} B, {self.nthreads} threads): "
            f"flow {conn}, datagram sequence number {ack.bad_seq}, offset {ack.bad_offset} "
            f"(field {ack.bad_offset // fs}, byte {ack.bad_offset % fs}): "
            f"expected 0x{ack.expected:02x}, received 0x{ack.got:02x}"
        )

    def finish_stream(self) -> None:
        """After the last round: close each control's send side; the sink must end each
        flow cleanly (transmit only: just stop the threads)."""
        self.close_threads()
        if self.transmit_only is not None:
            return
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        for ctrl in self.controls:
            with contextlib.suppress(OSError):
                ctrl.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + min(self.timeout, 10.0)
        while waiting:
            left = deadline - time.monotonic()
            record = self.sink.read_record(left) if left > 0 else None
            if record is None:
                raise TransferError(
                    f"the sink did not confirm the end of UDP flow(s) {sorted(waiting)}"
                )
            if isinstance(record, End) and record.conn_id in waiting:
                conn = waiting.pop(record.conn_id)
                if not record.clean:
                    raise IntegrityError(self._describe_end(conn, record))

    def _abort(self) -> None:
        for ctrl in self.controls:
            with contextlib.suppress(OSError):
                ctrl.shutdown(socket.SHUT_RDWR)
        super()._abort()

    def close(self) -> None:
        super().close()
        for ctrl in self.controls:
            ctrl.close()
        self.controls = []
