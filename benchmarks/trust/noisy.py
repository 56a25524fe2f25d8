"""The noisy neighbour of ``trust.py --noisy``: a background load in its own process
group, started and stopped by the script (also on Ctrl-C or an error), nothing left running."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from trust.sweeps import STOP_TIMEOUT, killpg

NOISY_COMMAND = ("stress-ng", "--cpu", "2", "--cpu-load", "30")

NOISY_PACKAGE = "stress-ng"


class NoisyNeighbour:
    """A background load in its own process group; :meth:`stop` ends the whole group."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if shutil.which(self.command[0]) is None:
            hint = f" (Debian package {NOISY_PACKAGE}: apt-get install {NOISY_PACKAGE})"
            raise SystemExit(
                f"trust: --noisy: {self.command[0]!r} not found"
                + (hint if self.command[0] == NOISY_PACKAGE else "")
            )
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() kills its workers too
        )

    def check(self) -> None:
        """Raise SystemExit when the load ended on its own (the batch would not be noisy)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(
                f"trust: the noisy neighbour ({shlex.join(self.command)}) stopped early "
                f"(exit {self.proc.returncode})"
            )

    def stop(self) -> None:
        """SIGTERM to the group, wait; SIGKILL to what is left, wait. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            killpg(proc.pid, sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        killpg(proc.pid, signal.SIGKILL)  # workers that outlived their parent


@contextmanager
def noisy_neighbour(command: Sequence[str] | None) -> Iterator[NoisyNeighbour | None]:
    """Run ``command`` in the background for the block (None: nothing); always stopped."""
    if command is None:
        yield None
        return
    noisy = NoisyNeighbour(command)
    noisy.start()
    try:
        yield noisy
    finally:
        noisy.stop()
