"""Owning the sink process, opening connections, running one round across threads."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pytest_netcopy import sink as wire
from pytest_netcopy.instruments.steal import StealClock
from pytest_netcopy.send.modes import Mode, Sender


class TransferError(Exception):
    """A round could not complete: sink died, timed out, refused, or protocol broke."""


class IntegrityError(TransferError):
    """The sink received a byte that differs from what was sent."""


@dataclass(frozen=True)
class Placement:
    sender_cpus: list[int]
    sink_cpus: list[int]
    pinned: bool

    def as_dict(self) -> dict[str, object]:
        return {"sender_cpus": self.sender_cpus, "sink_cpus": self.sink_cpus, "pinned": self.pinned}


#: what ``congestion="auto"`` asks for: the reference workload's (and most
#: distributions') default; BBR's pacing and probing make loopback rounds bistable
AUTO_CONGESTION = "cubic"


def set_congestion(sock: socket.socket, choice: str) -> str:
    """Apply a TCP congestion control to a sender socket; returns the one in effect.

    ``system`` keeps the kernel default, ``auto`` asks for cubic and keeps the
    default where this account may not choose it; any other name must succeed.
    """
    if choice != "system":
        name = AUTO_CONGESTION if choice == "auto" else choice
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
        except OSError as exc:
            if choice != "auto":
                raise TransferError(
                    f"--netcopy-congestion={choice}: the kernel refused it ({exc}); see "
                    "net.ipv4.tcp_available_congestion_control and "
                    "tcp_allowed_congestion_control, or use auto or system"
                ) from None
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def plan_placement(pin: bool, available: Sequence[int] | None = None) -> Placement:
    """Sink on the last allowed CPU, senders on the others (when there are two or more)."""
    cpus = sorted(available if available is not None else os.sched_getaffinity(0))
    if pin and len(cpus) >= 2:
        return Placement(sender_cpus=cpus[:-1], sink_cpus=cpus[-1:], pinned=True)
    return Placement(sender_cpus=cpus, sink_cpus=cpus, pinned=False)


class SinkProcess:
    """The session's receiver: ``python -m pytest_netcopy.sink`` as a child process.

    Started lazily, restarted when found dead, always killed and waited for on
    close. Its stderr goes to a log file whose tail is quoted when it dies.
    """

    def __init__(
        self,
        *,
        timeout: float,
        recv_buffer: int = wire.DEFAULT_RECV_BUFFER,
        cpus: Sequence[int] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.timeout = timeout
        self.recv_buffer = recv_buffer
        self.cpus = list(cpus)
        self.host = host
        self.token = b""
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None
        self._records = bytearray()
        self._next_conn = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_running(self) -> None:
        if self.alive():
            return
        self.close()
        self._start()

    def _start(self) -> None:
        self.token = secrets.token_bytes(wire.TOKEN_LEN)
        self._records.clear()
        # owned by this object until close(): not a with-block's worth of life
        self._log = tempfile.TemporaryFile(prefix="netcopy-sink-", suffix=".log")  # noqa: SIM115
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH", "")) if p
        )
        cmd = [
            sys.executable, "-m", "pytest_netcopy.sink",
            "--host", self.host,
            "--recv-buffer", str(self.recv_buffer),
            "--timeout", str(self.timeout),
        ]  # fmt: skip
        if self.cpus:
            cmd += ["--cpus", ",".join(map(str, self.cpus))]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env
        )
        self.starts += 1
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(self.token.hex().encode() + b"\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], min(self.timeout, 30.0))
            line = self.proc.stdout.readline() if ready else b""
            info = json.loads(line) if line else None
        except (OSError, ValueError) as exc:
            info = None
            reason = str(exc)
        else:
            reason = "no ready line"
        if not info:
            detail = self.describe_death() if not self.alive() else f"{reason} in time"
            self.close()
            raise TransferError(f"the netcopy sink did not start: {detail}")
        self.port = int(info["port"])
        self.recv_buffer = int(info["recv_buffer"])
        self.cpus = [int(c) for c in info["cpus"]]

    def log_tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            data = self._log.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode("utf-8", "replace").strip()

    def describe_death(self) -> str:
        if self.proc is None:
            return "the sink was never started"
        code = self.proc.poll()
        if code is None:
            return f"the sink (pid {self.proc.pid}) is still running"
        if code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        tail = self.log_tail()
        return f"the netcopy sink (pid {self.proc.pid}) {how}" + (
            f"; its log ends:\n{tail}" if tail else ""
        )

    def read_record(self, timeout: float) -> bytes | None:
        """The sink's next report, or None if none came within ``timeout`` seconds.

        Raises TransferError when the sink has gone (EOF on its stdout).
        """
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while len(self._records) < wire.RECORD_SIZE:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=1.0)
                raise TransferError(self.describe_death())
            self._records += chunk
        record = bytes(self._records[: wire.RECORD_SIZE])
        del self._records[: wire.RECORD_SIZE]
        return record

    def connect(self, size: int) -> tuple[socket.socket, int, int]:
        """A connection the sink has accepted: (socket, connection id, sink thread id)."""
        self._next_conn += 1
        conn_id = self._next_conn
        sock = socket.create_connection((self.host, self.port), timeout=min(self.timeout, 10.0))
        try:
            sock.settimeout(None)  # blocking; bounded by the kernel timeouts below
            wire.set_socket_timeouts(sock, self.timeout)
            sock.sendall(wire.HELLO.pack(wire.HELLO_MAGIC, self.token, conn_id, size))
            deadline = time.monotonic() + self.timeout
            while True:
                record = self.read_record(max(0.0, deadline - time.monotonic()))
                if record is None:
                    raise TransferError(
                        f"the sink did not accept connection {conn_id} within {self.timeout:g} s"
                    )
                if record[:4] == wire.ACCEPT_MAGIC:
                    _, cid, tid, _capacity = wire.ACCEPT.unpack_from(record)
                    if cid == conn_id:
                        return sock, conn_id, tid
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()  # EOF: the sink exits by itself
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Ack:
    conn_id: int
    round_no: int
    verified_bytes: int
    ok: bool
    expected: int
    received: int
    bad_seq: int
    bad_offset: int
    recv_calls: int
    cpu_ns: int
    voluntary_switches: int
    involuntary_switches: int


@dataclass
class RoundResult:
    seconds: float
    messages: int
    bytes: int
    acks: list[Ack]
    sender_stats: list[dict[str, int] | None] = field(default_factory=list)
    #: hypervisor steal on the benchmark's CPUs during the round (ms); None: not known
    steal_ms: float | None = None

    @property
    def verified_bytes(self) -> int:
        return sum(a.verified_bytes for a in self.acks)


def parse_end(record: bytes) -> tuple[int, int, int] | None:
    """An END record as (conn id, status, bytes); None for any other record."""
    if record[:4] != wire.END_MAGIC:
        return None
    _, conn, status, extra = wire.END.unpack_from(record)
    return conn, status, extra


def parse_ack(record: bytes) -> Ack | None:
    """An ACK record as an Ack; None for any other record."""
    if record[:4] != wire.ACK_MAGIC:
        return None
    _, conn, rnd, verified, ok, exp, got, bad_seq, bad_off, calls, cpu, vcs, ics = (
        wire.ACK.unpack_from(record)
    )
    return Ack(conn, rnd, verified, bool(ok), exp, got, bad_seq, bad_off, calls, cpu, vcs, ics)


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
        sink: SinkProcess,
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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        for _ in range(self.nthreads):
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
        sock = self.socks[i]
        while True:
            try:
                self._start.wait()
            except threading.BrokenBarrierError:
                return
            if self._stop:
                return
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
            try:
                self._done.wait(timeout=self.timeout)
            except threading.BrokenBarrierError:
                return

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
        waiting = {cid: i for i, cid in enumerate(self.conn_ids)}
        acks: list[Ack | None] = [None] * self.nthreads
        last_ack_ns = 0
        steal_before = self.steal.read()
        start = time.perf_counter_ns()
        try:
            self._start.wait(timeout=self.timeout)
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
                ended = parse_end(record)
                if ended is not None and ended[0] in self.conn_ids:
                    # mid-benchmark, any end of one of our streams is an error
                    conn = self.conn_ids.index(ended[0])
                    raise IntegrityError(self._describe_end(conn, *ended[1:]))
                ack = parse_ack(record)
                if ack is None or ack.round_no != self._round_no or ack.conn_id not in waiting:
                    continue  # left over from an aborted benchmark
                last_ack_ns = time.perf_counter_ns()
                acks[waiting.pop(ack.conn_id)] = ack
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
        return RoundResult(
            seconds=seconds,
            messages=count * self.nthreads,
            bytes=count * self.nthreads * self.size,
            acks=[a for a in acks if a is not None],
            sender_stats=[s.stats() for s in self.senders],
            steal_ms=steal_ms,
        )

    def _describe_end(self, conn: int, status: int, extra: int) -> str:
        text = (
            f"payload stream broken ({self.mode.name}, {self.size} B, {self.nthreads} threads): "
            f"connection {conn}: {wire.END_TEXT.get(status, f'status {status}')} ({extra} bytes)"
        )
        if self.control is not None and self._sent_by:
            # the bytes at fault may be the previous round's: say who sent both
            last = self._sent_by[-2:]
            rounds = range(self._round_no - len(last) + 1, self._round_no + 1)
            text += "; the last rounds were sent by " + ", ".join(
                f"round {n}: {name}" for n, name in zip(rounds, last, strict=True)
            )
        return text

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
            ended = parse_end(record)
            if ended is None or ended[0] not in waiting:
                continue
            conn = waiting.pop(ended[0])
            if ended[1] != wire.END_CLEAN:
                raise IntegrityError(self._describe_end(conn, ended[1], ended[2]))

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
