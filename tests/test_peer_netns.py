"""The sink on a second host built from a network namespace (tests/netns.py), through
``ip netns exec``: the sweep, a delayed link, a killed peer, a link set down."""

from __future__ import annotations

import json
from typing import Any

import impaired
import pytest
from _support import FAST, SWEEP
from netns import PEER_ADDRESS, ROOT_ADDRESS, TwoHosts
from test_peer_unit import SYSTEM_PYTHON

GRID = ("--netcopy-sizes=4096", "--netcopy-threads=1,2", "--netcopy-modes=two_copy,zero_copy")


def peer_args(hosts: TwoHosts) -> tuple[str, ...]:
    return (
        f"--netcopy-peer={hosts.peer_command()}",
        f"--netcopy-peer-python={SYSTEM_PYTHON} -I",
        f"--netcopy-peer-address={PEER_ADDRESS}",
    )


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[Any, dict[str, Any]]:
    result = pytester.runpytest_subprocess(*FAST, *args, "--benchmark-json=out.json")
    return result, json.loads((pytester.path / "out.json").read_text())


def test_the_sweep_across_the_pair(pytester: pytest.Pytester, two_hosts: TwoHosts) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    local, local_data = run_json(pytester, *GRID)
    local.assert_outcomes(passed=4)
    with two_hosts.link():
        result, data = run_json(pytester, *GRID, *peer_args(two_hosts))
    result.assert_outcomes(passed=4)
    local_keys = {b["name"]: set(b["extra_info"]) for b in local_data["benchmarks"]}
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        assert set(extra) == local_keys[bench["name"]]
        assert extra["peer"] is True
        assert extra["integrity"]["ok"] and extra["integrity"]["verified_bytes"] > 0
        if extra["mode"] == "zero_copy":
            zc = extra["zerocopy"]
            assert zc["completions"] == zc["sends"] > 0, zc  # every send's completion accounted
        sink_calls = extra["sink_syscalls_per_message"]
        assert sink_calls["total"] is None and "peer" in str(sink_calls["not_counted"])
    assert all(b["extra_info"]["peer"] is False for b in local_data["benchmarks"])
    info = data["machine_info"]["netcopy"]
    assert info["peer"]["reached_by"].startswith(f"ip netns exec {two_hosts.ns}")
    assert info["peer"]["address"] == PEER_ADDRESS and info["peer"]["cpu_count"]
    assert info["link"]["sender"]["interface"] == two_hosts.root_if
    assert info["link"]["sender"]["address"] == ROOT_ADDRESS
    assert info["link"]["peer"]["interface"] == two_hosts.peer_if
    assert info["link"]["peer"]["mtu"] == 1500 and info["link"]["peer"]["tso"] is not None
    assert len(info["placement"]["peer_cpus"]) == 1
    assert two_hosts.pids() == []  # nothing left running on the peer


def test_a_delayed_link_is_slower_and_does_not_hang(pytester: pytest.Pytester) -> None:
    """2 ms more on the way to the peer: lower throughput, the RTT in the per-round figures.

    The delay comes from tests/impaired.py (a forwarder between two TUN devices), not from
    ``tc ... netem delay 2ms``: this kernel has no sch_netem, and the forwarder works on any.
    """
    reason = impaired.why_not()
    if reason:
        pytest.skip(reason)
    pytester.makepyfile(test_sweep=SWEEP)
    args = ("--netcopy-sizes=65536", "--netcopy-threads=1", "--netcopy-modes=two_copy",
            "--netcopy-control=none", "--netcopy-user-rounds=0", "--netcopy-rounds=3",
            f"--netcopy-peer-python={SYSTEM_PYTHON} -I",
            f"--netcopy-peer-address={impaired.PEER_ADDRESS}")  # fmt: skip
    figures = {}
    for delay in (0, 2):
        with impaired.impaired_link(delay_ms=delay) as link:
            result, data = run_json(pytester, *args, f"--netcopy-peer={link.peer_command()}")
            result.assert_outcomes(passed=1)
            assert link.pids() == []  # nothing left running on the peer
        figures[delay] = data["benchmarks"][0]["extra_info"]
    # each link's best round: a busy machine can stall the forwarder in any round, but the
    # delay bounds every round of the delayed link
    quick, delayed = (max(figures[d]["rounds"]["throughput_gbps"]) for d in (0, 2))
    assert delayed < quick * 0.8, (quick, delayed)
    rtts = [r["rtt_us"] for r in figures[2]["rounds"]["tcp_info"]]
    assert len(rtts) == 3 and all(rtt >= 2000 for rtt in rtts), rtts
    # The 2 ms is a floor under every sample on the delayed link. The undelayed link's
    # smoothed RTT also carries the forwarder's queueing (a Python process that a busy CI
    # machine can hold for milliseconds: 1 failure in CI), so its floor, the minimum RTT,
    # is what shows that the delay came from the forwarder's sleep, not from the link.
    floors = {d: [r["min_rtt_us"] for r in figures[d]["rounds"]["tcp_info"]] for d in (0, 2)}
    assert all(f >= 2000 for f in floors[2]), floors
    assert min(floors[0]) < 2000 <= min(floors[2]), floors


KILLING_CONFTEST = """
import subprocess
from pytest_netcopy import FunctionMode

calls = [0]

def killing_send(sock, fields):
    calls[0] += 1
    if calls[0] == 50:
        pids = subprocess.run(["ip", "netns", "pids", "{ns}"], capture_output=True,
                              text=True).stdout.split()
        {action}
    sock.sendall(b"".join(fields))

def pytest_netcopy_add_modes(registry):
    registry.add(FunctionMode("breaking", killing_send))
"""


@pytest.mark.parametrize(
    ("action", "outcome"),
    [
        ("subprocess.run(['kill', '-9', *pids])", "the peer command was killed by signal 9"),
        ("subprocess.run(['ip', 'link', 'set', '{root_if}', 'down'])", "within"),
    ],
    ids=["peer-killed", "link-down"],
)
def test_a_fault_mid_round_fails_that_benchmark_in_time(
    pytester: pytest.Pytester, two_hosts: TwoHosts, action: str, outcome: str
) -> None:
    action = action.format(root_if=two_hosts.root_if)
    pytester.makeconftest(KILLING_CONFTEST.format(ns=two_hosts.ns, action=action))
    pytester.makepyfile(test_sweep=SWEEP)
    args = ("--netcopy-sizes=4096", "--netcopy-threads=1", "--netcopy-modes=breaking,two_copy",
            "--netcopy-timeout=8", "--netcopy-control=none", *peer_args(two_hosts))  # fmt: skip
    with two_hosts.link():
        result = pytester.runpytest_subprocess(*args, *FAST[:4], timeout=120)
    text = result.stdout.str()
    assert "Traceback" not in text
    if "killed" in outcome:
        result.assert_outcomes(failed=1, passed=1)  # the next benchmark started a new peer
    else:
        result.assert_outcomes(failed=2)
    assert outcome in text, text
    assert two_hosts.pids() == []
