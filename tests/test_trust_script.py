"""benchmarks/trust.py's noisy neighbour (started and stopped by the script, nothing left
running), benchmarks/trust/small_sndbuf.py (the sender's SO_SNDBUF really capped), and the
script's measurement tooling: --rejudge (kept runs judged again, nothing run) and --gated
(the pytest command lines of gated sessions, and how their last lines are read)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import BENCHMARKS, load_script

from pytest_netcopy.gate.compare import compare_runs
from pytest_netcopy.gate.policy import DEFAULT_RULES
from pytest_netcopy.gate.rules import parse_rules
from pytest_netcopy.results.runs import load_run

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0  # seconds any wait below may take


trust = load_script("netcopy_trust_script", BENCHMARKS / "trust.py")
# the package behind it (trust.py put benchmarks/ on sys.path to import it)
from trust import noisy as trust_noisy  # noqa: E402
from trust import report, sweeps, verdicts  # noqa: E402

small_sndbuf = load_script("netcopy_small_sndbuf", BENCHMARKS / "trust" / "small_sndbuf.py")


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
    with trust_noisy.noisy_neighbour(FAKE) as noisy:
        assert noisy is not None and noisy.proc is not None
        pgid = noisy.proc.pid
        _until(lambda: len(_group_alive(pgid)) == 2, "the fake load and its worker")
        noisy.check()  # still running: no complaint
    assert noisy.proc is None
    _until(lambda: not _group_alive(pgid), "the process group to be gone")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_noisy_neighbour_is_stopped_on_error_and_ctrl_c(error: type[BaseException]) -> None:
    pgid = 0
    with pytest.raises(error), trust_noisy.noisy_neighbour(FAKE) as noisy:
        assert noisy is not None and noisy.proc is not None
        pgid = noisy.proc.pid
        _until(lambda: len(_group_alive(pgid)) == 2, "the fake load")
        raise error("boom")
    _until(lambda: not _group_alive(pgid), "the process group to be gone")


def test_noisy_neighbour_that_ends_early_is_an_error() -> None:
    with trust_noisy.noisy_neighbour([sys.executable, "-c", "pass"]) as noisy:
        assert noisy is not None and noisy.proc is not None
        noisy.proc.wait(timeout=WAIT)
        with pytest.raises(SystemExit, match="stopped early"):
            noisy.check()


def test_noisy_neighbour_without_stress_ng_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trust_noisy.shutil, "which", lambda name: None)
    with (
        pytest.raises(SystemExit, match="Debian package stress-ng"),
        trust_noisy.noisy_neighbour(trust_noisy.NOISY_COMMAND),
    ):
        pass


def test_noisy_is_off_by_default() -> None:
    assert trust.noisy_command(trust.parse_args([])) is None
    assert trust.noisy_command(trust.parse_args(["--noisy"])) == list(trust.NOISY_COMMAND)
    assert trust.noisy_command(trust.parse_args(["--noisy-command", "sleep 5"])) == ["sleep", "5"]


@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng (Debian package)")
def test_real_stress_ng_is_stopped() -> None:
    command = [*trust_noisy.NOISY_COMMAND, "--timeout", "20s"]
    with trust_noisy.noisy_neighbour(command) as noisy:
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
    for names in sweeps.REGRESSIONS.values():
        for name in names:
            assert (BENCHMARKS / "trust" / f"{sweeps.BUILDS[name].module}.py").is_file()
    assert os.path.basename(str(sweeps.BUILD_DIR)) == "trust"


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
    assert verdicts.verdict_of([ok, bad, open_]) == ("regression", "user_cpu_ns_per_byte +41.0%")
    assert verdicts.verdict_of([ok, open_]) == (
        "undecided",
        "throughput_vs_control: too few comparable rounds",
    )
    assert verdicts.verdict_of([ok]) == ("no regression", "cpu_vs_control <6.2%")
    # a gate that gives no smallest detectable change: said, never hidden
    assert verdicts.verdict_of([_row("cpu_vs_control", "no regression")])[1] == (
        "cpu_vs_control (no detectable change shown)"
    )


def test_the_mdc_prediction_counts_pairs_able_to_see_the_change() -> None:
    got = [
        {"bad_change": {"m": 0.30}, "detectable": {"m": 0.10}},
        {"bad_change": {"m": 0.30}, "detectable": {"m": 0.20}},
        {"bad_change": {"m": 0.30}, "detectable": {"m": 0.50}},  # too noisy to see 30%
        {"bad_change": {"m": 0.30}, "detectable": {"m": None}},
    ]
    assert report.predicted_catch(got) == (2, 1)  # 2 able, 80% of them: at least 1
    assert report.predicted_catch([{"bad_change": {"m": 0.3}, "detectable": {"m": None}}]) is None


def test_aa_summary_counts_failing_benchmarks_per_pair() -> None:
    pairs = [
        {"baseline": 0, "current": 1, "failing": ["a"], "undecided": 3, "rows": 10},
        {"baseline": 1, "current": 0, "failing": [], "undecided": 1, "rows": 10},
    ]
    text = report.aa_summary(pairs)
    assert "2 ordered pairs: 0.50 falsely failing benchmarks per pair (goal <= 0.1: MISSED)" in text
    assert "1 pairs clean; 2.0 of 10 benchmark-metrics undecided per pair" in text


# ---------------------------------------------------------------------------
# --rejudge: kept runs judged again, nothing run

GATE_DATA = ROOT / "tests" / "data" / "gate"
#: the benchmark the fixtures share with a trust batch (two_copy, 4 KiB, 1 thread)
BENCH = "test_send_path[two_copy-4096B-1t]"


def _copy(name: str, to: Path, speed: float = 1.0, rounds_too: bool = False) -> None:
    """A stored run as a kept run; ``speed``: its 4 KiB control send ran that much faster
    (its median; ``rounds_too``: every control round as well)."""
    data = json.loads((GATE_DATA / f"{name}.json").read_text())
    for bench in data["benchmarks"]:
        control = bench["extra_info"].get("control")
        if bench["name"] == BENCH and control:
            control["throughput_gbps"] *= speed
            if rounds_too:
                control["rounds"]["throughput_gbps"] = [
                    v * speed for v in control["rounds"]["throughput_gbps"]
                ]
    to.write_text(json.dumps(data))


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    """A --keep folder: 5 pairs of the same code (rerun.json: 1-2% noise), the first two with
    the regressed build (slower.json: +60% instructions, +25% CPU ratio); pair 3's B ran
    with its control's median 30% faster but every round at the old speed (the guard by
    medians drops it, the guard by rounds judges it), pair 4's B with every control round
    30% faster (dropped by both); and three A/A sweeps."""
    folder = tmp_path / "keep"
    folder.mkdir()
    for i, (a, b) in enumerate(
        [("baseline", "rerun"), ("rerun", "baseline"), ("baseline", "rerun")]
    ):
        _copy(a, folder / f"{i:02d}-a.json")
        _copy(b, folder / f"{i:02d}-b.json")
    for i in (0, 1):
        _copy("slower", folder / f"{i:02d}-c.json")
    _copy("baseline", folder / "03-a.json")
    _copy("rerun", folder / "03-b.json", speed=1.3)
    _copy("baseline", folder / "04-a.json")
    _copy("rerun", folder / "04-b.json", speed=1.3, rounds_too=True)
    _copy("baseline", folder / "05-a.json")  # a lone A (the batch stopped): not a pair
    for k, name in enumerate(["baseline", "rerun", "baseline"]):
        _copy(name, folder / f"sweep-{k:02d}.json")
    return folder


def test_rejudge_counts_the_kept_pairs(kept: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = kept.parent / "rejudged.json"
    assert trust.main(["--rejudge", str(kept), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [p["pair"] for p in data["pairs"]] == [0, 1, 2, 3, 4]
    same = [p["same"]["4096"] for p in data["pairs"]]
    caught = [p["extra_copy"]["4096"] for p in data["pairs"] if "extra_copy" in p]
    assert [g["verdict"] for g in same[:3]] == ["no regression"] * 3
    assert [g["verdict"] for g in caught] == ["regression"] * 2
    assert all(g["mdc_shown"] for g in same)
    # the speed guard: pair 3 judged on its rounds at a common speed, pair 4 dropped
    assert [g["guard"] for g in same] == ["kept", "kept", "kept", "matched", "dropped"]
    assert same[4]["verdict"] == "undecided" and same[4]["speed_changed"]
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| false alarms"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:8] == ["false alarms (same code)", "4 KiB", "5", "0", "1", "4", "0", "3 -> 4"]
    row = next(line for line in text.splitlines() if line.startswith("| one more copy"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:6] == ["one more copy per message", "4 KiB", "2", "2", "0", "0"]
    assert "speed figures judged in 5 of 7 comparisons by the guard by medians" in text
    assert "6 by the guard by rounds (today's; 1 dropped)" in text
    # the A/A sweeps: 3 x 2 ordered pairs of the same code, none failing
    assert len(data["aa_pairs"]) == 6 and not any(p["failing"] for p in data["aa_pairs"])
    assert "6 ordered pairs: 0.00 falsely failing benchmarks per pair" in text
    assert "runs made by: unknown" in text  # this folder has no batch.json


def test_rejudge_under_other_rules_and_without_the_guard(
    kept: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the instruction count alone: the regressed build caught, nothing about speed judged
    trust.main(["--rejudge", str(kept), "--gate", "user_instructions_per_message:+10%"])
    text = capsys.readouterr().out
    assert "rules: user_instructions_per_message:+10%" in text
    assert "speed guard: no rule on a speed figure" in text
    # no guard: every pair's speed figures judged, pair 4 too
    trust.main(["--rejudge", str(kept), "--speed-tolerance", "off"])
    text = capsys.readouterr().out
    assert "speed guard: off (speed figures judged in all 7 comparisons)" in text
    assert "5 -> 5" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rejudge", "{empty}"], "no kept runs in it"),
        (["--rejudge", "{missing}"], "not a folder"),
        (["--rejudge", "{keep}", "--gated"], "--rejudge runs nothing: leave out --gated"),
        (["--rejudge", "{keep}", "--", "--netcopy-rounds=3"], "leave out pytest options"),
        (["--speed-tolerance", "5"], "--speed-tolerance='5'"),
        (["--max-rounds", "20"], "only with --gated"),
        (["--gated", "--max-seconds", "0"], "--max-seconds=0.0"),
        (["--gated", "--aa-sweeps", "3"], "--gated: runs pairs"),
    ],
)
def test_bad_rejudge_and_gated_options_are_one_line(
    kept: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (kept.parent / "empty").mkdir()
    where = {"empty": kept.parent / "empty", "missing": kept.parent / "nope", "keep": kept}
    with pytest.raises(SystemExit) as exc:
        trust.parse_args([a.format(**where) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


# ---------------------------------------------------------------------------
# --gated: B (and each regressed build) as a gated session against the pair's first run


def test_gated_command_line_asks_the_plugin_for_the_gate(tmp_path: Path) -> None:
    rules = parse_rules("cpu_vs_control:+15% user_instructions_per_message:+10%")
    gated = sweeps.GatedSession(tmp_path / "00-a.json", tuple(rules), 40, 5.0, "10%")
    cmd, env = sweeps.sweep_command(
        tmp_path / "00-c.json", build=sweeps.BUILDS["extra_copy"], extra=["--netcopy-rounds=3"],
        copies=2, gated=gated,
    )  # fmt: skip
    at = cmd.index(f"--netcopy-baseline={tmp_path / '00-a.json'}")
    assert cmd[at : at + 5] == [
        f"--netcopy-baseline={tmp_path / '00-a.json'}",
        "--netcopy-gate=cpu_vs_control:+15% user_instructions_per_message:+10%",
        "--netcopy-gate-max-rounds=40",
        "--netcopy-gate-max-seconds=5",
        "--netcopy-gate-speed-tolerance=10%",
    ]
    # the user's options come after the gate's (they may override), the build last
    assert cmd[at + 5 :] == ["--netcopy-rounds=3", "-p", "extra_copy"]
    assert f"--benchmark-json={tmp_path / '00-c.json'}" in cmd
    assert env["NETCOPY_EXTRA_COPIES"] == "2"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(sweeps.BUILD_DIR)
    plain, _ = sweeps.sweep_command(tmp_path / "00-a.json", build=None, extra=[])
    assert not any(a.startswith("--netcopy-gate") or "baseline" in a for a in plain)


def test_gated_command_line_is_accepted_by_the_plugin(tmp_path: Path) -> None:
    """The options as pytest reads them (collection only: nothing runs, the baseline loads)."""
    rules = parse_rules("cpu_vs_control:+15% syscalls_per_message:+10%")
    gated = sweeps.GatedSession(GATE_DATA / "baseline.json", tuple(rules), 12, 3.0, "off")
    cmd, env = sweeps.sweep_command(tmp_path / "x.json", build=None, extra=[], gated=gated)
    # (no JSON to write: pytest-benchmark warns, an error here, when nothing ran)
    cmd = [a for a in cmd if not a.startswith("--benchmark-json")]
    proc = subprocess.run(
        [*cmd, "--collect-only"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_send_path[two_copy-4096B-1t]" in proc.stdout


def test_a_gated_pair_runs_b_against_a_and_each_build_against_b(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str | None, Any]] = []

    def fake_run_sweep(out: Path, *, build: Any, extra: Any, copies: int = 1,
                       full: bool = False, gated: Any = None) -> str | None:  # fmt: skip
        calls.append((out.name, build and build.name, gated))
        return None if gated is None else "netcopy gate: no regression in 1 benchmark"

    monkeypatch.setattr(trust, "run_sweep", fake_run_sweep)
    args = trust.parse_args(["--gated", "--regression", "both", "--max-rounds", "25"])
    paths = sweeps.pair_paths(tmp_path, 7)
    lines = trust.run_pair(args, paths, [sweeps.BUILDS["extra_copy"], sweeps.BUILDS["sndbuf"]])
    assert [(name, build) for name, build, _ in calls] == [
        ("07-a.json", None), ("07-b.json", None), ("07-c.json", "extra_copy"),
        ("07-s.json", "sndbuf"),
    ]  # fmt: skip
    assert calls[0][2] is None
    assert [g.baseline.name for _, _, g in calls[1:]] == ["07-a.json", "07-b.json", "07-b.json"]
    assert all(g.max_rounds == 25 and g.rules == tuple(args.rules) for _, _, g in calls[1:])
    assert set(lines) == {"same", "extra_copy", "sndbuf"}
    calls.clear()
    trust.run_pair(trust.parse_args([]), paths, [sweeps.BUILDS["extra_copy"]])
    assert [g for *_, g in calls] == [None, None, None]  # ungated: judged offline


@pytest.mark.parametrize(("base", "new"), [("baseline", "slower"), ("baseline", "rerun")])
@pytest.mark.parametrize("tolerance", [0.05, None])
def test_the_session_last_line_gives_the_gate_verdict_per_benchmark(
    base: str, new: str, tolerance: float | None
) -> None:
    """What the gate's own last line says, read back: the same verdict per benchmark as
    its rows give (with speed-moved and undecided rows: a 1% rule, the guard at 0.1%)."""
    for rules in (DEFAULT_RULES, parse_rules("throughput_vs_control:-1% cpu_vs_control:+1%")):
        outcome = compare_runs(
            load_run(GATE_DATA / f"{base}.json"), load_run(GATE_DATA / f"{new}.json"), rules,
            speed_tolerance=tolerance if tolerance is None else tolerance / 50,
        )  # fmt: skip
        said = verdicts.session_verdicts(outcome.summary())
        for bench in {r.benchmark for r in outcome.rows}:
            rows = [r for r in outcome.rows if r.benchmark == bench]
            assert said.get(bench, said["*"]) == verdicts.verdict_of(rows)[0], outcome.summary()


def test_session_last_lines_with_nested_reasons() -> None:
    line = (
        "netcopy gate: 1 regression in two_copy-65536B-1t (cpu_vs_control); 2 undecided "
        "(fails a strict gate): two_copy-4096B-1t (throughput_vs_control: the machine ran "
        "at another speed (control 46 -> 62 Gbps, +34.8%, beyond 5%); cpu_vs_control: too "
        "few comparable rounds), two_copy-65536B-1t (throughput_vs_control: x)"
    )
    said = verdicts.session_verdicts(line)
    assert said == {
        "*": "no regression", "two_copy-65536B-1t": "regression",
        "two_copy-4096B-1t": "undecided",
    }  # fmt: skip
    nothing = verdicts.session_verdicts("netcopy gate: nothing judged: all 4 rows of 1 ...")
    assert nothing == {"*": "undecided"}


def _fake_pytest(monkeypatch: pytest.MonkeyPatch, out: Path, code: int, stdout: str) -> None:
    def fake(cmd: Any, env: Any) -> subprocess.CompletedProcess[str]:
        out.write_text("{}")
        return subprocess.CompletedProcess(cmd, code, stdout, "")

    monkeypatch.setattr(sweeps, "_run", fake)


@pytest.mark.parametrize(
    ("code", "stdout", "result"),
    [
        (0, "2 passed in 3.1s\nnetcopy gate: no regression in 2 benchmarks\n", "ok"),
        (1, "2 passed in 3.1s\nnetcopy gate: 1 regression in two_copy-4096B-1t (x)\n", "ok"),
        (1, "1 failed, 1 passed in 3.1s\nnetcopy gate: no regression in 1 benchmark\n", "exit"),
        (0, "2 passed in 3.1s\n", "exit"),  # a gated session with no gate line
        (4, "usage error\n", "exit"),
    ],
)
def test_a_gated_session_failing_its_gate_is_a_verdict_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, stdout: str, result: str
) -> None:
    out = tmp_path / "b.json"
    _fake_pytest(monkeypatch, out, code, stdout)
    gated = sweeps.GatedSession(tmp_path / "a.json", DEFAULT_RULES)
    if result == "ok":
        line = sweeps.run_sweep(out, build=None, extra=[], gated=gated)
        assert line == stdout.splitlines()[-1]
    else:
        with pytest.raises(SystemExit, match=r"the sweep failed \(exit"):
            sweeps.run_sweep(out, build=None, extra=[], gated=gated)
    # an ungated run: exit 1 is always an error
    _fake_pytest(monkeypatch, out, 1, "netcopy gate: 1 regression in two_copy-4096B-1t (x)\n")
    with pytest.raises(SystemExit):
        sweeps.run_sweep(out, build=None, extra=[])


def test_gated_verdicts_and_extra_rounds_in_the_table(tmp_path: Path) -> None:
    """A kept gated pair: the session's verdict counts (the offline one is kept beside it),
    the extra rounds per benchmark are counted, a disagreement is named."""
    data = json.loads((GATE_DATA / "rerun.json").read_text())
    for bench in data["benchmarks"]:
        bench["extra_info"]["gate_rounds"] = {
            "added": 5, "looks": [10, 15], "max_rounds": 30, "reason": "decided",
        }  # fmt: skip
    (tmp_path / "00-b.json").write_text(json.dumps(data))
    _copy("baseline", tmp_path / "00-a.json")
    paths = sweeps.pair_paths(tmp_path, 0)
    sessions = {"same": "netcopy gate: 1 regression in two_copy-4096B-1t (cpu_vs_control)"}
    pair = verdicts.judge_pair(0, paths, [], DEFAULT_RULES, 0.05, sessions)
    got = pair["same"]["4096"]
    assert (got["verdict"], got["offline_verdict"], got["agree"]) == (
        "regression", "no regression", False,
    )  # fmt: skip
    assert got["failed"] and got["extra_rounds"]["added"] == 5
    text = report.summarize([pair], DEFAULT_RULES, [])
    assert "1 of 1 took more (median +5, max +5); 0 at a budget" in text
    assert "gated sessions DISAGREE with the offline judging in 1 of 1: pair 0 same 4 KiB" in text
    assert "[+5 rounds: decided] [offline: no regression]" in "\n".join(report.pair_text(pair, []))
