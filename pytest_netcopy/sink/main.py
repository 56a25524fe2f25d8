"""The sink's process: options, the token, the start-up report, the stdin watch.

Run as ``python -m pytest_netcopy.sink`` locally, or shipped to a peer as one source with
the other parts (transport/pipe.py); standard library only."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import threading

from pytest_netcopy.sink.rr import serve_rr  # noqa: F401 - registers the request/response flow
from pytest_netcopy.sink.tcp import Door  # not shipped: one namespace there
from pytest_netcopy.sink.udp import serve_udp  # noqa: F401 - registers the UDP flow
from pytest_netcopy.sink.wire import (  # not shipped: one namespace there
    DEFAULT_RECV_BUFFER,
    STATUS,
    STATUS_MAGIC,
    TOKEN_LEN,
    UDP_RCVBUF,
    machine_facts,
)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # else stdin EOF still ends the sink
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _watch_stdin(door: Door) -> None:
    """Answer each "ping N" line with a STATUS record; exit at EOF (the parent is done)."""
    for line in sys.stdin.buffer:
        words = line.split()
        if len(words) == 2 and words[0] == b"ping" and words[1].isdigit():
            door.report(STATUS.pack(STATUS_MAGIC, int(words[1]) & 0xFFFFFFFF, door.refused))
    os._exit(0)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The options; --hello-timeout, --max-pending and --host ssh: docs/wire-protocol.md."""
    parser = argparse.ArgumentParser(prog="python -m pytest_netcopy.sink", description=__doc__)
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on; ssh: SSH_CONNECTION's server")
    add("--port", type=int, default=0, help="0 picks an ephemeral port")
    add("--recv-buffer", type=int, default=DEFAULT_RECV_BUFFER, metavar="BYTES")
    add("--timeout", type=float, default=60.0, metavar="SECONDS")
    add("--cpus", default="", help="comma list of CPUs to pin to (last: the last CPU)")
    add("--hello-timeout", type=float, default=None, metavar="SECONDS")
    add("--max-pending", type=int, default=0, metavar="N")
    add("--udp-rcvbuf", type=int, default=UDP_RCVBUF, metavar="BYTES", help="datagram SO_RCVBUF")
    args = parser.parse_args(argv)
    if args.hello_timeout is None:
        args.hello_timeout = min(args.timeout, 10.0)
    if args.host == "ssh":
        args.host = [*os.environ.get("SSH_CONNECTION", "").split(), "", "", ""][2]
        if not args.host:
            parser.error("--host ssh: no SSH_CONNECTION here (not started by sshd)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it closes stdin
    line = sys.stdin.buffer.readline().strip()
    try:
        token = bytes.fromhex(line.decode("ascii"))
    except ValueError:
        token = b""
    if len(token) != TOKEN_LEN:
        print("netcopy-sink: expected a 32-hex-digit token on stdin", file=sys.stderr)
        return 2
    if args.cpus:
        last = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {last if c == "last" else int(c) for c in args.cpus.split(",")})
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.create_server((args.host, args.port), family=family, backlog=128)
    door = Door(listener, args, token)
    threading.Thread(target=_watch_stdin, args=(door,), daemon=True).start()
    ready = {"port": listener.getsockname()[1], "pid": os.getpid(), "recv_buffer": args.recv_buffer}
    probe = globals().get("link_facts")  # shipped to a peer with instruments/link.py
    facts = {"machine": machine_facts(), "link": probe(args.host) if probe else None}
    ready.update(host=args.host, cpus=sorted(os.sched_getaffinity(0)), **facts)
    print(json.dumps(ready), flush=True)
    door.accept_forever()
    return 0  # pragma: no cover - the loop ends only with the process
