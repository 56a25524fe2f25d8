"""The pipe peer without a second host: bootstrap, the shipped source, options, faults."""

from __future__ import annotations

import ast
import shutil
import subprocess

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.transport.errors import TransferError
from pytest_netcopy.transport.pipe import (
    BOOTSTRAP,
    OLDEST_PYTHON,
    PipePeer,
    parse_address,
    redact,
    shipped_source,
)

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "python3"
#: a "peer" on this machine: cwd / and an isolated Python, so nothing of ours is importable
LOCAL_PEER = ("env -C /", f"{SYSTEM_PYTHON} -I")


def test_the_shipped_source_parses_as_the_oldest_python_stated() -> None:
    ast.parse(shipped_source(), feature_version=OLDEST_PYTHON)
    ast.parse(BOOTSTRAP, feature_version=OLDEST_PYTHON)
    with pytest.raises(SyntaxError):  # the check can fail: 3.10 syntax is refused
        ast.parse("match x:\n    case 1: pass\n", feature_version=OLDEST_PYTHON)


def test_the_package_is_not_importable_where_the_peer_runs() -> None:
    cmd = [*LOCAL_PEER[0].split(), *LOCAL_PEER[1].split(), "-c", "import pytest_netcopy"]
    assert subprocess.run(cmd, capture_output=True, timeout=30).returncode != 0


def test_a_pipe_peer_starts_accepts_and_answers_pings() -> None:
    peer = PipePeer(command=LOCAL_PEER[0], python=LOCAL_PEER[1], address="127.0.0.1", timeout=10)
    try:
        peer.ensure_running()
        sock, conn, tid = peer.connect(4096)
        sock.close()
        assert conn == 1 and tid > 0
        assert peer.ping(5)
        assert peer.cpus == [] and len(peer.peer_cpus) == 1  # pinned to its last CPU
        assert peer.machine["python"] and peer.machine["kernel_release"]
        assert peer.link is not None and peer.link["interface"] == "lo"
        assert not peer.local_threads
    finally:
        peer.close()
    assert not peer.alive()


@pytest.mark.parametrize(
    ("command", "python", "expected"),
    [
        ("env -C /", "nosuchpython", r"`env -C / nosuchpython` did not start: .*status 127; "
         r"its stderr ends: .*nosuchpython"),
        ("sh -c 'echo no such host >&2; exit 255' x", "python3",
         r"did not start: the peer command exited with status 255; its stderr ends: no such host"),
    ],
)  # fmt: skip
def test_a_failing_peer_command_is_one_line_with_its_stderr(
    command: str, python: str, expected: str
) -> None:
    peer = PipePeer(command=command, python=python, address="127.0.0.1", timeout=10)
    with pytest.raises(TransferError, match=expected) as info:
        peer.ensure_running()
    assert "\n" not in str(info.value)


def test_credentials_and_key_paths_are_never_recorded() -> None:
    words = ["ssh", "-T", "-i", "/home/u/.ssh/id_ed25519", "-o", "IdentityFile=/k",
             "-o", "BatchMode=yes", "--token=abc", "u:pw@host"]  # fmt: skip
    shown = redact(words)
    for secret in ("id_ed25519", "/k", "abc", "pw"):
        assert secret not in shown
    assert "BatchMode=yes" in shown and "host" in shown


def test_addresses() -> None:
    assert parse_address("198.18.0.2") == "198.18.0.2"
    assert parse_address("[fd00::2]") == "fd00::2"
    for bad in ("0.0.0.0", "::", "nosuchhost.invalid"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_a_peer_without_an_address_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(*FAST, "--netcopy-peer=ip netns exec x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netcopy-peer='ip netns exec x' needs --netcopy-peer-address*"])
