"""The receiving peer: what the sender pool needs of the sink, wherever it runs.

A peer owns one running sink (:mod:`pytest_netcopy.sink`) and the pipe its
reports come back on. The pool only asks it for the address to connect to,
the session token (via :meth:`Peer.connect`), the sink's records (acks per
round and connection, stream ends) and, when something fails, what became of
the sink; a ping on the control line (the sink's stdin) tells a stuck sink
from a slow round and fetches the count of strangers it refused. Today's one
implementation is the local child process
(:class:`pytest_netcopy.transport.local.SinkProcess`). Another way to run the
sink, e.g. ``COMMAND python3 -c BOOTSTRAP`` through any command that gives a
pipe (``ssh -T host``, ``ip netns exec NS``), implements :meth:`start`,
:meth:`read_raw_record`, :meth:`send_line` and the lifecycle methods over that command's
stdin/stdout, reusing :mod:`.records`, and the pool does not change.
"""

from __future__ import annotations

import socket
import time
from abc import ABC, abstractmethod

from pytest_netcopy.sink import wire
from pytest_netcopy.transport.errors import TransferError
from pytest_netcopy.transport.records import Accept, Record, Status, decode


class Peer(ABC):
    """A sink the senders connect to, and the pipe its records come back on."""

    def __init__(self, *, timeout: float, recv_buffer: int = wire.DEFAULT_RECV_BUFFER) -> None:
        #: bound on every wait, in seconds; also the sink's own timeout
        self.timeout = timeout
        #: the sink's receive buffer per connection (its report's figure once started)
        self.recv_buffer = recv_buffer
        #: the per-start secret a connection presents in its HELLO
        self.token = b""
        #: CPUs of this machine the sink is pinned to; empty when not pinned or not here
        self.cpus: list[int] = []
        #: whether the sink's thread ids are this machine's (the syscall pass attaches to them)
        self.local_threads = True
        #: how many times a sink was started
        self.starts = 0
        self._next_conn = 0
        self._pings = 0
        #: strangers refused by this peer's earlier sinks, and by the running one (last heard)
        self._refused_before = 0
        self._refused_now = 0

    # -- what an implementation provides ---------------------------------------

    @property
    @abstractmethod
    def address(self) -> tuple[str, int]:
        """(host, port) where the running sink accepts connections."""

    @abstractmethod
    def start(self) -> None:
        """Start a sink with a fresh :attr:`token` and read its start-up report.

        Raises TransferError (after cleaning up) when it does not come up.
        """

    @abstractmethod
    def alive(self) -> bool:
        """Whether the sink is running."""

    @abstractmethod
    def close(self) -> None:
        """Stop the sink and release the pipe (idempotent)."""

    @abstractmethod
    def read_raw_record(self, timeout: float) -> bytes | None:
        """The sink's next fixed-size record, or None if none came within ``timeout``.

        Raises TransferError (saying what became of the sink) when the pipe closes.
        """

    @abstractmethod
    def send_line(self, line: bytes) -> None:
        """Write one control line to the running sink (OSError when it is gone)."""

    @abstractmethod
    def kill(self) -> None:
        """Kill the sink at once (it may be stopped or stuck), reap it and close."""

    @abstractmethod
    def describe_death(self) -> str:
        """What became of the sink, for an error message."""

    @abstractmethod
    def log_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters the sink logged ("" when none)."""

    # -- what the pool uses --------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the sink unless it is running (restart it when it died)."""
        if self.alive():
            return
        self.close()
        self._refused_before += self._refused_now
        self._refused_now = 0
        self.start()

    @property
    def refused(self) -> int:
        """Connections refused without the session token, as last heard (see :meth:`ping`)."""
        return self._refused_before + self._refused_now

    def ping(self, timeout: float) -> bool:
        """Whether the sink answers within ``timeout`` seconds (which updates :attr:`refused`)."""
        if not self.alive():
            return False
        self._pings += 1
        number = self._pings & 0xFFFFFFFF
        deadline = time.monotonic() + timeout
        try:
            self.send_line(f"ping {number}\n".encode())
            while True:
                record = self.read_record(max(0.0, deadline - time.monotonic()))
                if record is None:
                    return False
                if isinstance(record, Status) and record.ping == number:
                    return True
        except (OSError, TransferError):
            return False

    def replace_if_stuck(self, timeout: float) -> str | None:
        """After a timeout: kill a running sink that does not answer a ping in ``timeout`` s.

        The next :meth:`ensure_running` starts a new one. Returns what happened,
        for the failure's message; None when the sink answered (or was not running).
        """
        if not self.alive() or self.ping(timeout):
            return None
        self.kill()
        return (
            f"the sink stopped responding (no answer to a ping within {timeout:g} s): "
            "it was killed, and the next benchmark starts a new one"
        )

    def read_record(self, timeout: float) -> Record | None:
        """The sink's next record of a known kind; None if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.read_raw_record(max(0.0, deadline - time.monotonic()))
            if raw is None:
                return None
            record = decode(raw)
            if isinstance(record, Status):
                self._refused_now = max(self._refused_now, record.refused)
            if record is not None:
                return record

    def connect(
        self, size: int, magic: bytes = wire.HELLO_MAGIC, *, setup: bytes = b""
    ) -> tuple[socket.socket, int, int]:
        """A connection the sink has accepted: (socket, connection id, sink thread id); ``magic``
        picks its flow (a stream; ``wire.UDP_MAGIC``: a UDP flow's control connection); ``setup``:
        the bytes the flow reads right after the HELLO (request/response: its RR_SETUP)."""
        self._next_conn += 1
        conn_id = self._next_conn
        sock = socket.create_connection(self.address, timeout=min(self.timeout, 10.0))
        try:
            sock.settimeout(None)  # blocking; bounded by the kernel timeouts below
            wire.set_socket_timeouts(sock, self.timeout)
            sock.sendall(wire.HELLO.pack(magic, self.token, conn_id, size) + setup)
            deadline = time.monotonic() + self.timeout
            while True:
                record = self.read_record(max(0.0, deadline - time.monotonic()))
                if record is None:
                    raise TransferError(
                        f"the sink did not accept connection {conn_id} within {self.timeout:g} s"
                    )
                if isinstance(record, Accept) and record.conn_id == conn_id:
                    return sock, conn_id, record.thread_id
        except BaseException:
            sock.close()
            raise
