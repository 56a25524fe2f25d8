"""The transmit-only target (issue 15): the blackhole topology, its zero-copy probe, and a
session with ``--netcopy-target=blackhole``, all real (root only: namespaces, a veth pair and
routes from 198.18.64.0/30 and 198.19.64.0/24, removed afterwards even on failure).

On this machine's kernel (6.18, with "net: preserve MSG_ZEROCOPY with forwarding") the
completions of datagrams forwarded into the blackhole come back uncopied; a kernel without
the change skips those tests with the probe's own words.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.transport import blackhole
from pytest_netcopy.transport.blackhole import (
    BLACKHOLE_NET,
    COPIES,
    MTU,
    PREFIX,
    Blackhole,
    BlackholeError,
    ProbeResult,
    probe_path,
)

#: the lock lets one topology exist at a time: xdist workers wait for each other's
WAIT = 180.0


def ip(*args: str) -> str:
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=30, check=False
    ).stdout


def leftovers() -> list[str]:
    """What a blackhole could leave behind: ncbh- namespaces and links, the root route."""
    found = [n for n in ip("netns", "list").split() if n.startswith(PREFIX)]
    found += [line for line in ip("-o", "link", "show").splitlines() if PREFIX in line]
    found += [line for line in ip("route", "show").splitlines() if BLACKHOLE_NET in line]
    return found


#: this module's tests one at a time across xdist workers: a test looks for leftovers after
#: the product's lock (/run/ncbh.lock) is released, when another worker's topology may
#: already stand, and one test puts a conflicting root route in place outside that lock
TESTS_LOCK = Path(tempfile.gettempdir()) / "netcopy-tests-blackhole.lock"


@pytest.fixture
def root() -> Iterator[None]:
    reason = blackhole.why_not()
    if reason:
        pytest.skip(f"the blackhole target {reason}")
    with open(TESTS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture
def hole(root: None) -> Iterator[Blackhole]:
    """A built topology, torn down after the test (the test checks the teardown itself)."""
    with Blackhole(timeout=WAIT) as built:
        yield built
    assert leftovers() == []


def test_the_topology_is_built_as_documented(hole: Blackhole) -> None:
    ns = hole.namespace
    assert ns.startswith(PREFIX) and ns in ip("netns", "list")
    assert hole.target == ("198.19.64.2", 9)
    route = ip("route", "show", BLACKHOLE_NET)
    assert f"{BLACKHOLE_NET} via 198.18.64.2 dev {hole.root_if}" in route
    assert "198.18.64.1/30" in ip("-o", "addr", "show", "dev", hole.root_if)
    assert f"mtu {MTU}" in ip("-o", "link", "show", "dev", hole.root_if)
    inside = ip("-n", ns, "route", "show")
    assert f"blackhole {BLACKHOLE_NET}" in inside and "198.18.64.0/30" in inside
    forward = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert forward.strip() == "1"
    assert hole.facts()["target"] == "198.19.64.2:9"


def test_forwarded_zero_copy_completions_come_back_uncopied(hole: Blackhole) -> None:
    for size in (1400, 60000):
        probe = hole.probe(count=2000, size=size)
        assert probe.sends == 2000 and probe.completions == 2000, probe
        if probe.copied == probe.completions:
            pytest.skip(f"{probe.reason} (probe of {size} B datagrams)")
        assert probe.copied == 0, probe
        assert probe.effective and probe.copied_fraction == 0.0 and probe.reason is None


def test_the_probe_sees_the_copy_of_a_local_delivery(root: None) -> None:
    """The same probe to a receiver on this host: every completion copied (so the probe can
    tell, and the test above can fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        probe = probe_path(rx.getsockname(), count=200, size=1400, timeout=10)
    assert probe.completions == 200
    assert probe.copied == 200 and not probe.effective
    assert probe.reason == COPIES


@pytest.mark.parametrize("raised", [RuntimeError, KeyboardInterrupt])
def test_an_exception_inside_the_with_block_leaves_nothing(
    root: None, raised: type[BaseException]
) -> None:
    with pytest.raises(raised), Blackhole(timeout=WAIT) as built:
        assert built.namespace in ip("netns", "list")
        raise raised("boom")
    assert leftovers() == []


def test_a_failed_command_is_one_line_and_leaves_nothing(root: None) -> None:
    """A route already in the way (a root blackhole route to the same network): the build
    fails at ``ip route add`` with its stderr, and what was built so far is removed."""
    with Blackhole(timeout=WAIT):  # wait for the lock: no other topology is being built
        pass
    subprocess.run(["ip", "route", "add", "blackhole", BLACKHOLE_NET], check=True, timeout=30)
    try:
        with pytest.raises(BlackholeError) as info, Blackhole(timeout=WAIT):
            pass
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", BLACKHOLE_NET], check=True, timeout=30)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"blackhole: `ip route add {BLACKHOLE_NET} via 198.18.64.2 dev ")
    assert message.endswith("failed: RTNETLINK answers: File exists"), message
    assert leftovers() == []


def test_a_killed_runs_namespace_is_removed_at_start(root: None) -> None:
    stale = f"{PREFIX}999999-dead00"
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=30)
    try:
        with Blackhole(timeout=WAIT) as built:
            names = ip("netns", "list")
            assert stale not in names and built.namespace in names
    finally:
        subprocess.run(["ip", "netns", "delete", stale], capture_output=True, timeout=30)
    assert leftovers() == []


def test_one_topology_at_a_time(hole: Blackhole) -> None:
    with pytest.raises(BlackholeError, match=r"another blackhole topology held /run/ncbh\.lock"):
        Blackhole(timeout=0.3).open()
    assert hole.namespace in ip("netns", "list")  # the first is untouched


def test_a_kernel_that_copies_gets_the_honest_line() -> None:
    copied = ProbeResult(size=1400, sends=10, completions=10, copied=10)
    assert copied.reason == (
        "this kernel copies forwarded zero-copy datagrams: zero-copy never takes effect on one "
        "host here"
    )
    assert not copied.effective and copied.copied_fraction == 1.0
    partly = ProbeResult(size=1400, sends=10, completions=10, copied=3)
    assert partly.reason == f"{COPIES} (3 of 10 completions of 1400 B datagrams were copied)"
    none_back = ProbeResult(size=1400, sends=10, completions=0, copied=0)
    assert none_back.reason == "no zero-copy completion came back for 10 datagrams"
    assert none_back.copied_fraction is None and not none_back.effective


# ---------------------------------------------------------------------------
# a session with --netcopy-target=blackhole


def test_a_blackhole_session(pytester: pytest.Pytester, root: None) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "-rs", "--netcopy-target=blackhole", "--netcopy-threads=1",
        "--netcopy-modes=udp_zero_copy,udp_one_copy,zero_copy", "--netcopy-sizes=1400,60000",
        "--netcopy-user-rounds=0", f"--netcopy-timeout={WAIT:g}", "--benchmark-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*integrity * transmit only * transmit only *",
            "netcopy: transmit only (blackhole target, 4 results): nothing receives, payload not "
            "verified; sender CPU ns/byte, udp_zero_copy vs udp_one_copy:",
            "netcopy: threads=1: 1400 B * vs * (*x), 60000 B * vs * (*x); zero-copy *",
            "*zero_copy: --netcopy-target=blackhole is transmit only and TCP needs a receiver*",
        ]
    )
    assert leftovers() == []  # torn down at the end of the session
    data = json.loads((pytester.path / "out.json").read_text())
    target = data["machine_info"]["netcopy"]["target"]
    assert target["name"] == "blackhole" and target["topology"]["mtu"] == MTU
    extras = [b["extra_info"] for b in data["benchmarks"]]
    assert {(e["mode"], e["size"]) for e in extras} == {
        (m, s) for m in ("udp_zero_copy", "udp_one_copy") for s in (1400, 60000)
    }
    for extra in extras:
        assert extra["target"] == "blackhole"
        assert extra["integrity"] == {
            "ok": None,
            "verified_bytes": 0,
            "note": "transmit only: nothing receives, payload not verified",
        }
        assert extra["sink_cpu_ns_per_byte"] is None and extra["sink_counters"] == {}
    zero = [e for e in extras if e["mode"] == "udp_zero_copy"]
    if target["copies"]:
        pytest.skip(f"{target['copies']} (the session's probe)")
    for extra in zero:
        assert extra["zerocopy_effective"] is True, extra["zerocopy"]
        assert extra["zerocopy"]["copied_fraction"] == 0.0
        assert extra["zerocopy"]["completions"] == extra["zerocopy"]["sends"] > 0
    assert all("zerocopy" not in e for e in extras if e["mode"] == "udp_one_copy")


def test_tcp_zero_copy_on_loopback_is_never_effective(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-modes=zero_copy", "--netcopy-sizes=4096", "--netcopy-threads=1",
        "--netcopy-user-rounds=0", "--benchmark-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    extra = json.loads((pytester.path / "out.json").read_text())["benchmarks"][0]["extra_info"]
    assert extra["target"] == "sink" and extra["integrity"]["ok"] is True
    assert extra["zerocopy_effective"] is False
    assert extra["zerocopy"]["copied_fraction"] == 1.0


def test_a_bad_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--netcopy-target=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --netcopy-target='nowhere': expected one of sink, blackhole"]
    )


def test_blackhole_with_a_peer_is_a_usage_error(pytester: pytest.Pytester, root: None) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--netcopy-target=blackhole",
        "--netcopy-peer=ip netns exec x", "--netcopy-peer-address=198.18.0.2",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --netcopy-target=blackhole: the blackhole target sends to no receiver, so it "
         "cannot be combined with --netcopy-peer (a sink on another host); use one or the other"]
    )  # fmt: skip
    assert leftovers() == []


NOBODY = 65534


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another account may use (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="ncbh-test-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_a_non_root_account_gets_a_usage_error(shared_dir: Path, root: None) -> None:
    """For real: the account nobody runs pytest with the blackhole target (exit status 4,
    one line, nothing built)."""
    tmp_path = shared_dir
    python = sys.executable
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to run as another account (Debian package util-linux)")
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    usable = subprocess.run(
        [*as_nobody, python, "-c", "import pytest_netcopy.transport.blackhole"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if usable.returncode != 0:
        pytest.skip(f"the account nobody cannot import the package here: {usable.stderr[-200:]}")
    (tmp_path / "test_sweep.py").write_text(SWEEP)
    (tmp_path / "test_sweep.py").chmod(0o644)
    done = subprocess.run(
        [*as_nobody, python, "-m", "pytest", "-p", "no:cacheprovider",
         "--netcopy-target=blackhole"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "ERROR: --netcopy-target=blackhole: the blackhole target needs root (CAP_NET_ADMIN) to "
        "create a network namespace, a veth pair and routes; run as root, or use the default "
        "target sink"
    )
