"""The counting process: ``python -m pytest_netcopy.bench.countproc``, run under valgrind.

One per session, started on first use by
:class:`pytest_netcopy.instruments.cachegrind.CachegrindServer` as
``valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=DIR/cg.%p python -m
pytest_netcopy.bench.countproc``. It reads one command per line on stdin (JSON:
the mode pickled, size, messages, the drain's port, the parent's ``sys.path``,
timeout) and per command forks two children: A sends ``messages`` messages of the
mode over TCP to the drain at 127.0.0.1:port and exits, then B sends twice as many.
A forked child stays under valgrind and writes its own ``cg.<pid>`` at exit,
holding every instruction of the process up to then, the parent's before the fork
included; the two children differ only by ``messages`` messages (and the few
instructions this loop runs between the forks), so ``(I(B) - I(A)) / messages`` is
the mode's user-mode instructions per message. The reply is one JSON line:
``{"ok": true, "pids": [A, B]}`` or ``{"ok": false, "reason": ...}``. EOF on stdin
ends it. Standard library and the package's send modes only: no pytest.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import socket
import sys
from typing import Any

from pytest_netcopy.sink.wire import set_socket_timeouts

#: what a child's exit status means (its words go through a pipe)
CHILD_FAILED = 3


def _send(mode: Any, size: int, messages: int, port: int, timeout: float) -> None:
    """Send ``messages`` messages of ``mode`` to the drain on one new connection (a UDP
    mode: to a datagram socket of this child's that nobody reads, docs/udp.md)."""
    drain = None
    if getattr(mode, "transport", "tcp") == "udp":
        drain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        drain.bind(("127.0.0.1", 0))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(drain.getsockname())
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.settimeout(None)
        set_socket_timeouts(sock, timeout)
        mode.prepare(sock)
        sender = mode.sender(sock, 0, size)
        sender.timeout = timeout
        sender.send(0, messages)
        sender.finish(timeout)
        sender.close()
    finally:
        sock.close()
        if drain is not None:
            drain.close()


def _spawn(job: tuple[Any, int, int, int, float], gate: int, err_w: int, fds: list[int]) -> int:
    """Fork a child that waits for a byte on ``gate``, sends, and exits (``os._exit``);
    it closes the other ``fds`` (so it sees EOF on ``gate`` when the parent closes it)."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        for fd in fds:
            if fd not in (gate, err_w):
                os.close(fd)
        if os.read(gate, 1) != b"g":  # blocked here, it runs nothing until released
            os._exit(0)  # not released: the other child failed
        signal.alarm(_limit(job[4]))  # a stuck or too slow child dies: every wait has an end
        _send(*job)
    except BaseException as exc:
        os.write(err_w, f"{type(exc).__name__}: {exc}".encode()[:2000])
        code = CHILD_FAILED
    os._exit(code)


def _limit(timeout: float) -> int:
    """Whole seconds a child may run (alarm's unit), at least 1."""
    return max(1, round(timeout))


def _run(pid: int, gate: int, err_r: int, limit: int) -> str:
    """Release a waiting child and wait for it: its error, or "" when it sent everything."""
    os.write(gate, b"g")
    _, status = os.waitpid(pid, 0)
    try:
        error = os.read(err_r, 4096).decode(errors="replace")
    except BlockingIOError:
        error = ""
    code = os.waitstatus_to_exitcode(status)
    if not error and code == -signal.SIGALRM:
        error = f"it did not finish within {limit:g} s (a mode this slow is not counted)"
    elif not error and code != 0:
        error = f"the counting child ended with status {code}"
    return error


def count(mode: Any, size: int, messages: int, port: int, timeout: float) -> list[int]:
    """The pids of the N- and the 2N-message child (RuntimeError with a child's error).

    Both are forked back to back before either runs, so they inherit the same
    counts; a short send in this process first makes valgrind translate the
    send path once here, not in every child.
    """
    _send(mode, size, 2, port, timeout)
    pipes = [os.pipe() for _ in range(4)]  # two gates, two error pipes
    (ga_r, ga_w), (gb_r, gb_w), (ea_r, ea_w), (eb_r, eb_w) = pipes
    fds = [fd for pair in pipes for fd in pair]
    waiting = []
    try:
        pid_a = _spawn((mode, size, messages, port, timeout), ga_r, ea_w, fds)
        waiting.append(pid_a)
        pid_b = _spawn((mode, size, 2 * messages, port, timeout), gb_r, eb_w, fds)
        waiting.append(pid_b)
        os.set_blocking(ea_r, False)
        os.set_blocking(eb_r, False)
        for pid, gate, err in ((pid_a, ga_w, ea_r), (pid_b, gb_w, eb_r)):
            waiting.remove(pid)
            error = _run(pid, gate, err, _limit(timeout))
            if error:
                raise RuntimeError(error)
    finally:
        for fd in fds:
            os.close(fd)  # a child still waiting reads EOF and exits
        for pid in waiting:
            os.waitpid(pid, 0)
    return [pid_a, pid_b]


def handle(command: dict[str, Any]) -> dict[str, Any]:
    """One command: load the mode, count it, name the children's pids."""
    for entry in reversed(command.get("path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        mode = pickle.loads(base64.b64decode(command["mode"]))
    except Exception as exc:
        return {"ok": False, "reason": f"the mode could not be loaded here: {exc}"}
    size, messages = int(command["size"]), int(command["messages"])
    port, timeout = int(command["port"]), float(command["timeout"])
    try:
        pids = count(mode, size, messages, port, timeout)
    except Exception as exc:
        return {"ok": False, "reason": f"the counting child failed: {exc}"}
    return {"ok": True, "pids": pids}


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends us by closing stdin
    import pytest_netcopy.send.builtin  # noqa: F401 - loaded once, before any fork

    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(json.loads(line))
        except Exception as exc:
            reply = {"ok": False, "reason": f"bad command: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
