"""The sink on another host, through any command that gives a pipe.

``COMMAND PYTHON -c BOOTSTRAP`` (``ssh -T host``, ``ip netns exec NS``,
``kubectl exec -i POD --``, ``docker exec -i CONTAINER``): nothing is
installed there. The bootstrap reads a decimal length line and that many
bytes of source from its stdin and runs them as ``__main__``: the sink
(:mod:`pytest_netcopy.sink`) behind :mod:`pytest_netcopy.instruments.link`,
whose ``link_facts`` the sink's start-up report then carries. After that the
pipe is the local sink's: the token line, pings, the records; EOF on its
stdin (the command ended, the ssh session dropped) ends the sink.
"""

from __future__ import annotations

import ast
import ipaddress
import os
import shlex
from pathlib import Path
from typing import Any

from pytest_netcopy import sink
from pytest_netcopy.instruments import link
from pytest_netcopy.sink import wire
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.records import SinkReport

#: reads the source from stdin and runs it as __main__ with this command's arguments
BOOTSTRAP = (
    "import sys;i=sys.stdin.buffer;n=int(i.readline());s=i.read(n);"
    "sys.exit('netcopy: the pipe closed in the sink source') if len(s)-n else None;"
    "sys.argv[0]='netcopy-sink';"
    "exec(compile(s,'netcopy-sink','exec',dont_inherit=True),{'__name__':'__main__'})"
)
#: the oldest Python the shipped source runs on (tests/test_peer_unit.py parses it so)
OLDEST_PYTHON = (3, 8)
#: option words whose value is a credential or a key path, never recorded
SECRET_WORDS = ("key", "token", "pass", "secret", "cred", "cert", "identity", "kubeconfig", "auth")
SECRET_FLAGS = {"-i", "-F", "-S", "-o"}


def shipped_source() -> bytes:
    """instruments/link.py, then the sink's parts in order, as one source ending in ``main()``.

    The ``from __future__`` line moves to the top; the imports between the parts (and of
    the package) are dropped, since in one namespace every part sees the names before it.
    """
    future = "from __future__ import annotations\n"
    files = [Path(link.__file__)] + [Path(wire.__file__).with_name(f"{p}.py") for p in sink.PARTS]
    body = "".join(_without_package_imports(f.read_text(encoding="utf-8")) for f in files)
    tail = '\nif __name__ == "__main__":\n    sys.exit(main())\n'
    return (future + body.replace(future, "") + tail).encode()


def _without_package_imports(source: str) -> str:
    """``source`` minus its ``from pytest_netcopy... import`` statements (all their lines)."""
    lines = source.splitlines(keepends=True)
    for node in reversed(ast.parse(source).body):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_netcopy"):
            del lines[node.lineno - 1 : node.end_lineno]
    return "".join(lines)


def parse_peer(text: str) -> str:
    """A command prefix (shlex words); empty: the local sink."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"expected a command prefix in shell words ({exc})") from None
    return shlex.join(words)


def parse_address(text: str) -> str:
    """An IPv4 or IPv6 address, never a wildcard; empty: unset."""
    text = text.strip().strip("[]")
    if not text:
        return ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("expected an IPv4 or IPv6 address of the peer") from None
    if address.is_unspecified:
        raise ValueError("expected one address of the peer, not a wildcard")
    return str(address)


def parse_cpus(text: str) -> str:
    """A comma list of CPU numbers of the peer; empty: its last CPU."""
    words = [w.strip() for w in text.split(",")] if text.strip() else []
    if any(not (w.isascii() and w.isdigit()) for w in words):
        raise ValueError("expected a comma list of CPU numbers (e.g. 1 or 2,3)")
    return ",".join(words)


def is_ssh(words: list[str]) -> bool:
    return bool(words) and os.path.basename(words[0]) == "ssh"


def redact(words: list[str]) -> str:
    """The command as recorded: the values of credential and key options replaced."""
    out: list[str] = []
    hide_next = False
    for word in words:
        if hide_next:
            lowered = word.lower()
            secret = out[-1] != "-o" or any(s in lowered for s in SECRET_WORDS)
            out.append("<redacted>" if secret else word)
            hide_next = False
            continue
        name, eq, _value = word.partition("=")
        if eq and any(s in name.lower() for s in SECRET_WORDS):
            out.append(f"{name}=<redacted>")
        elif word in SECRET_FLAGS or (word.startswith("--") and not eq and _secret(word)):
            out.append(word)
            hide_next = True
        elif word.startswith(("-i", "-o")) and len(word) > 2 and word[:2] in SECRET_FLAGS:
            out.append(word[:2] + "<redacted>")
        else:
            out.append(word.split("@")[-1] if ":" in word.split("@")[0] and "@" in word else word)
    return shlex.join(out)


def _secret(option: str) -> bool:
    return any(s in option.lower() for s in SECRET_WORDS)


class PipePeer(SinkProcess):
    """The sink run by ``COMMAND PYTHON -c BOOTSTRAP``; its CPUs and threads are not ours."""

    def __init__(
        self,
        *,
        command: str,
        timeout: float,
        recv_buffer: int = wire.DEFAULT_RECV_BUFFER,
        python: str = "python3",
        address: str = "",
        cpus: str = "",
    ) -> None:
        super().__init__(timeout=timeout, recv_buffer=recv_buffer, host=address)
        self.words = shlex.split(command)
        self.python = python
        self.peer_cpus_asked = cpus or "last"
        self.local_threads = False
        #: the sink's CPUs on the peer, its machine and its side of the link (start-up report)
        self.peer_cpus: list[int] = []
        self.machine: dict[str, Any] = {}
        self.link: dict[str, Any] | None = None
        #: how the peer was reached (no credentials, no key paths)
        self.reached = redact(self.words)
        if not address and not is_ssh(self.words):
            raise ValueError("a peer address is needed (only an ssh peer has a default)")

    def command(self) -> list[str]:
        return [
            *self.words, *shlex.split(self.python), "-c", BOOTSTRAP,
            "--host", self.host or "ssh",
            "--recv-buffer", str(self.recv_buffer),
            "--timeout", str(self.timeout),
            "--cpus", self.peer_cpus_asked,
        ]  # fmt: skip

    def popen_args(self) -> list[str]:
        """What runs here: ssh joins the remote words into one shell line, so quote them."""
        cmd = self.command()
        if is_ssh(self.words):
            n = len(self.words)
            return [*cmd[:n], shlex.join(cmd[n:])]
        return cmd

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def preamble(self) -> bytes:
        source = shipped_source()
        return str(len(source)).encode() + b"\n" + source

    def failed_start(self, detail: str) -> str:
        shown = shlex.join([*shlex.split(self.reached), *shlex.split(self.python)])
        return f"the netcopy peer `{shown}` did not start: {detail}"

    def describe_death(self) -> str:
        if self.proc is None:
            return "the peer was never started"
        code = self.proc.poll()
        if code is None:
            return f"the peer command (pid {self.proc.pid}) is still running"
        how = f"exited with status {code}" if code >= 0 else f"was killed by signal {-code}"
        tail = " | ".join(line for line in self.log_tail(400).splitlines() if line.strip())
        return f"the peer command {how}" + (f"; its stderr ends: {tail}" if tail else "")

    def accept_report(self, report: SinkReport, info: dict[str, Any]) -> None:
        self.cpus = []  # not this machine's CPUs
        self.peer_cpus = report.cpus
        self.host = str(info.get("host") or self.host)
        machine = info.get("machine")
        self.machine = dict(machine) if isinstance(machine, dict) else {}
        found = info.get("link")
        self.link = dict(found) if isinstance(found, dict) else None

    def peer_info(self) -> dict[str, Any]:
        """``machine_info["netcopy"]["peer"]``."""
        reached = shlex.join([*shlex.split(self.reached), *shlex.split(self.python)])
        return {**self.machine, "reached_by": reached, "address": self.host}
