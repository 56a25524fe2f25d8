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
import time
from collections.abc import Callable, Sequence

from pytest_netcopy.instruments.steal import StealClock
from pytest_netcopy.send.modes import Mode, ModeUnsupported, Sender
from pytest_netcopy.sink import wire
from pytest_netcopy.transport.errors import IntegrityError, TransferError
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.pool import RoundResult, SenderPool
from pytest_netcopy.transport.records import Ack, UdpAck, UdpRound
from pytest_netcopy.transport.rounds import corruption

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

    ends_any_time = False  # only the end of a flow the round still waits for fails it

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
            self._lock_source(ctrl, conn_id, sock.getsockname()[1])
        wire.set_socket_timeouts(sock, self.timeout)
        self.conn_ids.append(conn_id)
        self.sink_tids.append(tid)
        self._add_senders(sock, conn_id)

    def _lock_source(self, ctrl: socket.socket, conn_id: int, port: int) -> None:
        """UDP_FROM, and the sink's echo of it: from then on it takes only our datagrams."""
        ctrl.sendall(wire.UDP_FROM.pack(wire.UDP_FROM_MAGIC, port))
        try:
            reply = wire.recv_before(ctrl, wire.UDP_FROM.size, time.monotonic() + self.timeout)
        except (OSError, ConnectionError) as exc:
            raise TransferError(f"the sink did not lock UDP flow {conn_id}: {exc}") from None
        if wire.UDP_FROM.unpack(reply) != (wire.UDP_FROM_MAGIC, port):
            raise TransferError(f"UDP flow {conn_id}: {reply!r} where the sink's lock belongs")

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
        steal_before = self._begin_round(count, control)
        start = time.perf_counter_ns()
        acks = self._release(self._collect_udp_acks)
        for i, ack in enumerate(acks):
            if ack is not None and not ack.ok:
                raise IntegrityError(self._describe_bad_datagram(i, ack))
        got = [a for a in acks if a is not None]
        tail = max((a.tail_us for a in got), default=0) / 1e6
        seconds = (max(self._end_ns) - start) / 1e9 + tail
        result = self._round_result(seconds, [self._as_ack(a) for a in got], steal_before)
        result.retransmits_not_counted = NO_RETRANSMITS
        result.udp = self._udp_round(count, got) if self.transmit_only is None else None
        return result

    def _check_errors(self) -> None:
        refused = [e for e in self._errors if isinstance(e, ModeUnsupported)]
        if refused:  # the kernel refused the mode mid-round (e.g. a size it cannot send so)
            self._abort()
            raise refused[0]
        super()._check_errors()

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
        if self.transmit_only is not None:
            return [None] * self.nthreads
        return self._collect(UdpAck, "UDP round record from the sink for flow(s)")[0]

    def _describe_bad_datagram(self, conn: int, ack: UdpAck) -> str:
        place = f"flow {conn}, datagram sequence number {ack.bad_seq}"
        head = self._corrupted("datagram")
        return corruption(head, place, self.size, ack.bad_offset, ack.expected, ack.got)

    def finish_stream(self) -> None:
        """After the last round: close each control's send side; the sink must end each
        flow cleanly (transmit only: just stop the threads)."""
        self.close_threads()
        if self.transmit_only is None:
            self._await_ends(self.controls, "UDP flow(s)")

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
