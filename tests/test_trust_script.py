"""benchmarks/trust.py's noisy neighbour (started and stopped by the script, nothing left
running) and benchmarks/trust/small_sndbuf.py (the sender's SO_SNDBUF really capped)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
WAIT = 10.0  # seconds any wait below may take


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


trust = _load("netcopy_trust_script", BENCHMARKS / "trust.py")
small_sndbuf = _load("netcopy_small_sndbuf", BENCHMARKS / "trust" / "small_sndbuf.py")


def _group_alive(pgid: int) -> list[int]:
    """Pids of the process group that are not zombies (read from /proc)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT} s waiting for {what}")
        time.sleep(0.01)


#: a fake load: a parent that forks one worker; both sleep (two processes in the group)
FAKE = [sys.executable, "-c", "import os, time; os.fork(); time.sleep(60)"]


def test_noisy_neighbour_is_stopped_with_its_workers() -> None:
    with trust.noisy_neighbour(FAKE) as noisy:
        assert noisy is not None and noisy.proc is not None
        pgid = noisy.proc.pid
        _until(lambda: len(_group_alive(pgid)) == 2, "the fake load and its worker")
        noisy.check()  # still running: no complaint
    assert noisy.proc is None
    _until(lambda: not _group_alive(pgid), "the process group to be gone")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_noisy_neighbour_is_stopped_on_error_and_ctrl_c(error: type[BaseException]) -> None:
    pgid = 0
    with pytest.raises(error), trust.noisy_neighbour(FAKE) as noisy:
        assert noisy is not None and noisy.proc is not None
        pgid = noisy.proc.pid
        _until(lambda: len(_group_alive(pgid)) == 2, "the fake load")
        raise error("boom")
    _until(lambda: not _group_alive(pgid), "the process group to be gone")


def test_noisy_neighbour_that_ends_early_is_an_error() -> None:
    with trust.noisy_neighbour([sys.executable, "-c", "pass"]) as noisy:
        assert noisy is not None and noisy.proc is not None
        noisy.proc.wait(timeout=WAIT)
        with pytest.raises(SystemExit, match="stopped early"):
            noisy.check()


def test_noisy_neighbour_without_stress_ng_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trust.shutil, "which", lambda name: None)
    with (
        pytest.raises(SystemExit, match="Debian package stress-ng"),
        trust.noisy_neighbour(trust.NOISY_COMMAND),
    ):
        pass


def test_noisy_is_off_by_default() -> None:
    assert trust.noisy_command(trust.parse_args([])) is None
    assert trust.noisy_command(trust.parse_args(["--noisy"])) == list(trust.NOISY_COMMAND)
    assert trust.noisy_command(trust.parse_args(["--noisy-command", "sleep 5"])) == ["sleep", "5"]


@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng (Debian package)")
def test_real_stress_ng_is_stopped() -> None:
    command = [*trust.NOISY_COMMAND, "--timeout", "20s"]
    with trust.noisy_neighbour(command) as noisy:
        assert noisy is not None and noisy.proc is not None
        pgid = noisy.proc.pid
        _until(lambda: len(_group_alive(pgid)) >= 2, "stress-ng's workers")
    _until(lambda: not _group_alive(pgid), "stress-ng and its workers to be gone")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--aa-sweeps", "1"], "--aa-sweeps=1"),
        (["--pairs", "0"], "--pairs=0"),
        (["--regression", "nope"], "--regression"),
        (["--gate", "x:1"], "--gate"),
    ],
)
def test_bad_options_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        trust.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------
# the sndbuf build


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, threading.Thread]]:
    """A real loopback TCP connection: the client end, and a thread draining the server end."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=WAIT)
        peer, _ = server.accept()

    def drain() -> None:
        with peer:
            peer.settimeout(WAIT)
            while peer.recv(1 << 20):
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield client, thread
    finally:
        client.close()
        thread.join(timeout=WAIT)
        assert not thread.is_alive()


def _sndbuf(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux doubles SO_SNDBUF")
def test_sndbuf_sender_sends_with_the_buffer_capped(
    connection: tuple[socket.socket, threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, _ = connection
    monkeypatch.setenv("NETCOPY_SNDBUF", "16384")
    sender = small_sndbuf.SmallSndbufSender(sock, 1, 4096)
    seen: list[int] = []
    plain = sender.transmitter

    def transmitter() -> Callable[[bytearray], object]:
        send = plain()

        def watched(buf: bytearray) -> object:
            seen.append(_sndbuf(sock))
            return send(buf)

        return watched

    sender.transmitter = transmitter  # type: ignore[method-assign]
    before = _sndbuf(sock)
    sender.send(0, 20)
    assert seen == [2 * 16384] * 20  # what the kernel enforced while the messages went out
    assert sender.capped_to == 2 * 16384
    # lifted after the round, for the control rounds in between
    after = _sndbuf(sock)
    assert after == 2 * small_sndbuf.uncapped_request()
    assert after > 2 * 16384 and before != 2 * 16384
    sender.close()


@pytest.mark.skipif(sys.platform != "linux", reason="Linux doubles SO_SNDBUF")
def test_sndbuf_socket_scope_keeps_the_cap(
    connection: tuple[socket.socket, threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, _ = connection
    monkeypatch.setenv("NETCOPY_SNDBUF", "8192")
    monkeypatch.setenv("NETCOPY_SNDBUF_SCOPE", "socket")
    sender = small_sndbuf.SmallSndbufSender(sock, 1, 1024)
    assert _sndbuf(sock) == 2 * 8192
    sender.send(0, 10)
    assert _sndbuf(sock) == 2 * 8192
    sender.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [("NETCOPY_SNDBUF", "12k"), ("NETCOPY_SNDBUF", "10"), ("NETCOPY_SNDBUF_SCOPE", "always")],
)
def test_sndbuf_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        small_sndbuf.sndbuf_cap() if name == "NETCOPY_SNDBUF" else small_sndbuf.sndbuf_scope()


def test_sndbuf_build_replaces_two_copy() -> None:
    from pytest_netcopy.send.builtin import builtin_registry

    registry = builtin_registry()
    small_sndbuf.pytest_netcopy_add_modes(registry)
    assert isinstance(registry.get("two_copy"), small_sndbuf.SmallSndbuf)


def test_every_regression_has_its_build() -> None:
    for names in trust.REGRESSIONS.values():
        for name in names:
            assert (BENCHMARKS / "trust" / f"{trust.BUILDS[name].module}.py").is_file()
    assert os.path.basename(str(trust.BUILD_DIR)) == "trust"


# ---------------------------------------------------------------------------
# what the script reports


def _row(metric: str, verdict: str, change: float = 0.0, **more: object) -> object:
    from types import SimpleNamespace

    from pytest_netcopy.gate.rules import parse_rules

    (rule,) = parse_rules(f"{metric}:+10%")
    return SimpleNamespace(
        metric=metric, verdict=verdict, change=change, rule=rule, reason="", p_value=0.5, **more
    )


def test_a_benchmark_verdict_is_the_worst_of_its_rows() -> None:
    ok = _row("cpu_vs_control", "no regression", detectable=0.062)
    bad = _row("user_cpu_ns_per_byte", "regression", change=0.41)
    open_ = _row("throughput_vs_control", "undecided", why="too few comparable rounds")
    assert trust.verdict_of([ok, bad, open_]) == ("regression", "user_cpu_ns_per_byte +41.0%")
    assert trust.verdict_of([ok, open_]) == (
        "undecided",
        "throughput_vs_control: too few comparable rounds",
    )
    assert trust.verdict_of([ok]) == ("no regression", "cpu_vs_control <6.2%")
    # a gate that gives no smallest detectable change: said, never hidden
    assert trust.verdict_of([_row("cpu_vs_control", "no regression")])[1] == (
        "cpu_vs_control (no detectable change shown)"
    )


def test_the_mdc_prediction_counts_pairs_able_to_see_the_change() -> None:
    got = [
        {"bad_change": {"m": 0.30}, "detectable": {"m": 0.10}},
        {"bad_change": {"m": 0.30}, "detectable": {"m": 0.20}},
        {"bad_change": {"m": 0.30}, "detectable": {"m": 0.50}},  # too noisy to see 30%
        {"bad_change": {"m": 0.30}, "detectable": {"m": None}},
    ]
    assert trust.predicted_catch(got) == (2, 1)  # 2 able, 80% of them: at least 1
    assert trust.predicted_catch([{"bad_change": {"m": 0.3}, "detectable": {"m": None}}]) is None


def test_aa_summary_counts_failing_benchmarks_per_pair() -> None:
    pairs = [
        {"baseline": 0, "current": 1, "failing": ["a"], "undecided": 3, "rows": 10},
        {"baseline": 1, "current": 0, "failing": [], "undecided": 1, "rows": 10},
    ]
    text = trust.aa_summary(pairs)
    assert "2 ordered pairs: 0.50 falsely failing benchmarks per pair (goal <= 0.1: MISSED)" in text
    assert "1 pairs clean; 2.0 of 10 benchmark-metrics undecided per pair" in text
