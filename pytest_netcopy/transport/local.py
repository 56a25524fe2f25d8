"""The sink as a child process on this machine: ``python -m pytest_netcopy.sink``."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pytest_netcopy.sink import wire
from pytest_netcopy.transport.errors import TransferError
from pytest_netcopy.transport.peer import Peer
from pytest_netcopy.transport.records import RecordReader, SinkReport, parse_report


def read_report_line(reader: RecordReader, timeout: float) -> dict[str, Any]:
    """The start-up report (one JSON line) ahead of the records; what follows stays pending.

    Raises ValueError (no line in time, or not a JSON object) or EOFError.
    """
    deadline = time.monotonic() + timeout
    pending = reader._pending  # the reader keeps what came after the line
    while b"\n" not in pending:
        left = deadline - time.monotonic()
        ready = select.select([reader.fd], [], [], left)[0] if left > 0 else []
        if not ready:
            raise ValueError("no ready line")
        chunk = os.read(reader.fd, 65536)
        if not chunk:
            raise EOFError("the pipe closed before the ready line")
        pending += chunk
    end = pending.index(b"\n")
    line = bytes(pending[:end])
    del pending[: end + 1]
    info = json.loads(line)
    if not isinstance(info, dict):
        raise ValueError(f"a start-up report that is not an object: {line[:80]!r}")
    return info


class SinkProcess(Peer):
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
        super().__init__(timeout=timeout, recv_buffer=recv_buffer)
        self.cpus = list(cpus)
        self.host = host
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._records: RecordReader | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        """The sink's command line."""
        cmd = [
            sys.executable, "-m", "pytest_netcopy.sink",
            "--host", self.host,
            "--recv-buffer", str(self.recv_buffer),
            "--timeout", str(self.timeout),
        ]  # fmt: skip
        if self.cpus:
            cmd += ["--cpus", ",".join(map(str, self.cpus))]
        return cmd

    def popen_args(self) -> list[str]:
        """What runs here (a pipe peer quotes the remote part for ssh)."""
        return self.command()

    def environment(self) -> dict[str, str]:
        """The sink's environment: this one, with the package importable."""
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH", "")) if p
        )
        return env

    def preamble(self) -> bytes:
        """What goes down the sink's stdin before the token (a pipe peer: the sink's source)."""
        return b""

    def start(self) -> None:
        self.token = secrets.token_bytes(wire.TOKEN_LEN)
        # owned by this object until close(): not a with-block's worth of life
        self._log = tempfile.TemporaryFile(prefix="netcopy-sink-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.popen_args(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.environment(),
        )
        self.starts += 1
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._records = RecordReader(self.proc.stdout.fileno())
        try:
            self.proc.stdin.write(self.preamble() + self.token.hex().encode() + b"\n")
            self.proc.stdin.flush()
            info = read_report_line(self._records, min(self.timeout, 30.0))
            report = parse_report(info)
        except (OSError, ValueError, EOFError) as exc:
            if isinstance(exc, OSError | EOFError):  # the pipe closed: the command is ending
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=2)
            detail = self.describe_death() if not self.alive() else f"{exc} in time"
            self.close()
            raise TransferError(self.failed_start(detail)) from None
        self.port = report.port
        self.recv_buffer = report.recv_buffer
        self.accept_report(report, info)

    def failed_start(self, detail: str) -> str:
        return f"the netcopy sink did not start: {detail}"

    def accept_report(self, report: SinkReport, info: dict[str, Any]) -> None:
        """Keep what the start-up report says (a local sink: its CPUs are this machine's)."""
        self.cpus = report.cpus

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

    def read_raw_record(self, timeout: float) -> bytes | None:
        """The sink's next report, or None if none came within ``timeout`` seconds.

        Raises TransferError when the sink has gone (EOF on its stdout).
        """
        assert self.proc is not None and self._records is not None
        try:
            return self._records.read(timeout)
        except EOFError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1.0)
            raise TransferError(self.describe_death()) from None

    def send_line(self, line: bytes) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise OSError("the sink is not running")
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()  # SIGKILL ends a stopped process too
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self.close()

    def close(self) -> None:
        proc, self.proc = self.proc, None
        self._records = None
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
