"""The sink over ssh against a real sshd in the namespace (tests/netns.py, the ``sshd`` fixture):
the sweep with the address taken from SSH_CONNECTION, the key path never recorded, and the
faults of an unknown host and a refused key as one line."""

from __future__ import annotations

import json
import re
import time

import pytest
from _support import FAST, SWEEP
from netns import PEER_ADDRESS, Sshd, TwoHosts
from test_peer_unit import SYSTEM_PYTHON

GRID = ("--netcopy-sizes=4096", "--netcopy-threads=1,2", "--netcopy-modes=two_copy,zero_copy")
PYTHON = f"--netcopy-peer-python={SYSTEM_PYTHON} -I"


def only_sshd_left(hosts: TwoHosts, sshd: Sshd) -> list[int]:
    """The namespace's processes once the session's sshd children are gone (<= 10 s), else []."""
    deadline = time.monotonic() + 10
    while (pids := hosts.pids()) != [sshd.proc.pid] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids == [sshd.proc.pid], f"left running in {hosts.ns}: {pids} (sshd {sshd.proc.pid})"
    return pids


def test_the_sweep_over_ssh(pytester: pytest.Pytester, two_hosts: TwoHosts, sshd: Sshd) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    with two_hosts.link():
        result = pytester.runpytest_subprocess(
            *FAST, *GRID, f"--netcopy-peer={sshd.ssh()}", PYTHON, "--benchmark-json=out.json"
        )
    result.assert_outcomes(passed=4)
    text = (pytester.path / "out.json").read_text()
    data = json.loads(text)
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        assert extra["peer"] is True
        assert extra["integrity"]["ok"] and extra["integrity"]["verified_bytes"] > 0
        if extra["mode"] == "zero_copy":
            assert extra["zerocopy"]["completions"] == extra["zerocopy"]["sends"] > 0
    peer = data["machine_info"]["netcopy"]["peer"]
    assert peer["address"] == PEER_ADDRESS  # no --netcopy-peer-address: SSH_CONNECTION's
    assert re.match(r"ssh -T -i '?<redacted>'? .* root@198\.18\.0\.2 ", peer["reached_by"]), peer
    assert sshd.key not in text and "client_key" not in text  # the key path is never recorded
    assert only_sshd_left(two_hosts, sshd)


@pytest.mark.parametrize(
    ("which", "tail"),
    [
        ("unknown-host", r"Could not resolve hostname nosuchhost\.invalid"),
        ("wrong-key", r"Permission denied \(publickey"),
    ],
)
def test_a_failing_ssh_is_one_line_naming_the_command_and_its_stderr(
    pytester: pytest.Pytester, two_hosts: TwoHosts, sshd: Sshd, which: str, tail: str
) -> None:
    command = (
        sshd.ssh(host="nosuchhost.invalid") if which == "unknown-host" else sshd.ssh(sshd.wrong_key)
    )
    pytester.makepyfile(test_sweep=SWEEP)
    with two_hosts.link():
        result = pytester.runpytest_subprocess(
            *FAST, "--netcopy-sizes=4096", "--netcopy-threads=1", "--netcopy-modes=two_copy",
            f"--netcopy-peer={command}", PYTHON, timeout=120,
        )  # fmt: skip
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if "did not start" in line]
    assert lines, text
    pattern = r"the netcopy peer `ssh -T -i '?<redacted>'? .*` did not start: .*its stderr ends: .*"
    assert re.search(pattern + tail, lines[0]), lines[0]
    assert only_sshd_left(two_hosts, sshd)
