"""User-mode instructions without a PMU: a counting process under valgrind's cachegrind.

Starting Python under valgrind takes seconds, so one :class:`CachegrindServer`
per session runs ``valgrind --tool=cachegrind --cache-sim=no`` on a long-lived
program (the bench's ``countproc``) that forks a child per pass: a forked child
stays under valgrind and writes its own ``cg.<pid>`` at exit. The children send
over TCP to a :class:`Drain` in this process, which discards what it reads, so the
receiving side's work is never counted. This module only starts, asks and
reads; the program that sends is the bench's.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "VALGRIND_HINT",
    "CachegrindServer",
    "CountError",
    "Drain",
    "find_valgrind",
    "parse_cachegrind",
    "real_python",
]

VALGRIND_HINT = (
    "install valgrind (Debian/Ubuntu package valgrind) to count user instructions without a PMU"
)
#: what the real interpreter runs first: the parent's site directories with their .pth
#: files (a venv's packages, an editable install), then the program as ``__main__``
BOOTSTRAP = (
    "import runpy, site, sys; module, dirs = sys.argv[1], sys.argv[2:]; "
    "[site.addsitedir(d) for d in dirs]; sys.argv[1:] = []; "
    "runpy.run_module(module, run_name='__main__', alter_sys=True)"
)
#: seconds valgrind may take to start Python and import the send modes
START_TIMEOUT = 120.0
ELF_MAGIC = b"\x7fELF"


class CountError(Exception):
    """The count could not be made; the message says why (it goes into the results)."""


def find_valgrind(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The valgrind binary on PATH, or None."""
    return which("valgrind")


def real_python(executable: str | None = None) -> str:
    """The real interpreter behind ``sys.executable`` (a pyenv shim or a venv link is
    followed: valgrind must run the ELF binary itself, or it counts the shim)."""
    path = os.path.realpath(executable or sys.executable)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise CountError(f"cannot read the interpreter {path}: {exc}") from None
    if magic != ELF_MAGIC:
        raise CountError(f"the interpreter {path} is not an ELF binary (a script shim?)")
    return path


def parse_cachegrind(text: str, event: str = "Ir") -> int:
    """The total of ``event`` in a cachegrind output file (its ``events:`` and
    ``summary:`` lines). ValueError when the file has no such total."""
    events: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:") and events is not None and event in events:
            values = line.split()[1:]
            return int(values[events.index(event)])
    raise ValueError(f"no 'summary:' total of {event} in the cachegrind output")


def site_dirs() -> list[str]:
    """This interpreter's site directories (a venv's own when it runs in one)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


class Drain:
    """A listener on 127.0.0.1 that accepts connections one at a time and discards
    what they send, in a thread of this process."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netcopy-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = bytearray(1 << 20)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.2)
                while not self._stop.is_set():
                    try:
                        if not conn.recv_into(buf):
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        break

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._listener.close()


class CachegrindServer:
    """The session's counting process under valgrind, started by :meth:`start`.

    :meth:`count` returns the instructions of the N-message child and the
    2N-message child; :meth:`close` ends the process (EOF on its stdin) and
    removes its files.
    """

    def __init__(self, valgrind: str, python: str, module: str, timeout: float) -> None:
        self.argv_tail = (python, "-c", BOOTSTRAP, module, *site_dirs())
        self.valgrind = valgrind
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.drain: Drain | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise CountError("the counting process is not running")
        return Path(self._dir.name)

    def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="netcopy-cg-")
        argv = [
            self.valgrind, "--tool=cachegrind", "--cache-sim=no",
            f"--cachegrind-out-file={self._dir.name}/cg.%p",
            f"--log-file={self._dir.name}/valgrind.log", *self.argv_tail,
        ]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        with open(Path(self._dir.name) / "stderr.log", "wb") as stderr:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
                start_new_session=True,
            )  # fmt: skip
        self.drain = Drain()
        ready = self._reply(START_TIMEOUT)
        if "ready" not in ready:
            raise CountError(f"the counting process did not start: {ready}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _reply(self, timeout: float) -> dict[str, Any]:
        """One JSON line from the process within ``timeout`` s (CountError otherwise)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise CountError(f"the counting process did not answer within {timeout:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise CountError(f"the counting process ended: {self._log_tail()}")
            line += chunk
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _log_tail(self) -> str:
        """The last lines of the process's stderr (else valgrind's log)."""
        for name in ("stderr.log", "valgrind.log"):
            with contextlib.suppress(OSError):
                lines = (self.directory / name).read_text(errors="replace").strip().splitlines()
                if lines:
                    return " | ".join(lines[-3:])
        return "no message"

    def count(self, mode: bytes, size: int, messages: int, path: Sequence[str]) -> tuple[int, int]:
        """Instructions of the child that sent ``messages`` and of the one that sent twice
        as many, ``mode`` pickled. CountError with the reason when that failed."""
        if not self.alive():
            self.close()
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.drain is not None
        command = {
            "mode": base64.b64encode(mode).decode(), "size": size, "messages": messages,
            "port": self.drain.port, "path": list(path), "timeout": self.timeout,
        }  # fmt: skip
        try:
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise CountError(f"the counting process ended: {exc}") from None
        reply = self._reply(2 * self.timeout + 30)
        if not reply.get("ok"):
            raise CountError(str(reply.get("reason")))
        totals = []
        for pid in reply["pids"]:
            out = self.directory / f"cg.{pid}"
            try:
                totals.append(parse_cachegrind(out.read_text(errors="replace")))
            except (OSError, ValueError) as exc:
                raise CountError(f"cannot read cachegrind's {out.name}: {exc}") from None
            finally:
                out.unlink(missing_ok=True)
        return totals[0], totals[1]

    def close(self) -> None:
        """End the process (EOF on its stdin; killed when it does not go), idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10.0)
        if self.drain is not None:
            self.drain.close()
            self.drain = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
