"""user_instructions_per_message: the sender's user-mode instructions, counted, not timed.

Without a PMU (this machine) the count comes from a counting process under
valgrind's cachegrind that forks a child per pass; with one, from ``instructions``
with exclude_kernel on the sender threads (tested here through the fake perf
boundary of test_counters_fake.py). docs/instruction-counts.md explains both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import FAST, SWEEP
from test_counters_fake import EXCLUDE_KERNEL, FakePerf

from pytest_netcopy.bench.passes import (
    INSTRUCTION_MESSAGES,
    PMU,
    VALGRIND,
    InstructionCounter,
    pmu_instruction_pass,
)
from pytest_netcopy.gate.catalog import is_metric
from pytest_netcopy.gate.policy import DEFAULT_RULES, SPEED_INDEPENDENT
from pytest_netcopy.instruments import perf_abi
from pytest_netcopy.instruments.cachegrind import (
    VALGRIND_HINT,
    find_valgrind,
    parse_cachegrind,
    real_python,
)
from pytest_netcopy.instruments.status import NOT_COUNTED, OK
from pytest_netcopy.send.builtin import builtin_registry
from pytest_netcopy.send.modes import FunctionMode

TRUST = Path(__file__).parents[1] / "benchmarks" / "trust"
NEEDS_VALGRIND = pytest.mark.skipif(
    find_valgrind() is None, reason="needs valgrind (Debian package valgrind)"
)

CACHEGRIND_OUT = """\
desc: I1 cache:         32768 B, 64 B, 8-way associative
cmd: /usr/bin/python3.11 -m pytest_netcopy.bench.countproc
events: Ir
fl=(1) ???
fn=(1) 0x0000000000001000
0 7
summary: 660858403
"""


def test_the_total_is_read_from_cachegrinds_summary_line() -> None:
    assert parse_cachegrind(CACHEGRIND_OUT) == 660858403
    three = "events: Ir Dr Dw\nsummary: 10 20 30\n"
    assert parse_cachegrind(three, "Dr") == 20
    with pytest.raises(ValueError, match="no 'summary:' total of Ir"):
        parse_cachegrind("events: Ir\n")


def test_valgrind_runs_the_real_interpreter_not_a_shim(tmp_path: Path) -> None:
    assert Path(real_python()).read_bytes()[:4] == b"\x7fELF"
    shim = tmp_path / "python"
    shim.write_text('#!/bin/sh\nexec python3 "$@"\n')
    link = tmp_path / "link"
    link.symlink_to(shim)
    with pytest.raises(Exception, match="not an ELF binary"):
        real_python(str(link))


@pytest.fixture(scope="module")
def counter() -> Iterator[InstructionCounter]:
    """One counting process for the module's tests (as a session has one)."""
    counting = InstructionCounter(timeout=30.0)
    yield counting
    counting.close()


@NEEDS_VALGRIND
def test_valgrind_counts_two_copy_per_message(counter: InstructionCounter) -> None:
    figures = counter.count(builtin_registry().get("two_copy"), 4096)
    assert figures.status == OK, figures.reason
    assert figures.method == VALGRIND
    assert figures.messages == INSTRUCTION_MESSAGES and figures.passes == 2
    assert figures.user_instructions_per_message is not None
    assert figures.user_instructions_per_message > 0
    # counted once per mode and size in a session
    assert counter.count(builtin_registry().get("two_copy"), 4096) is figures


@NEEDS_VALGRIND
def test_one_more_copy_per_message_counts_more_than_two_copy(
    counter: InstructionCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(TRUST))  # as trust.py loads it (-p extra_copy)
    from extra_copy import ExtraCopy

    size = 65536
    plain = counter.count(builtin_registry().get("two_copy"), size)
    slower = counter.count(ExtraCopy(), size)
    assert slower.status == OK, slower.reason
    assert plain.user_instructions_per_message and slower.user_instructions_per_message
    ratio = slower.user_instructions_per_message / plain.user_instructions_per_message
    assert ratio > 1.2, ratio  # the threshold of the default rule is +10%


@NEEDS_VALGRIND
def test_a_function_mode_is_loaded_by_name_in_the_counting_process(
    counter: InstructionCounter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "my_modes.py").write_text(
        "def send_joined(sock, fields):\n    sock.sendall(b''.join(fields))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from my_modes import send_joined  # type: ignore[import-not-found]

    figures = counter.count(FunctionMode("joined", send_joined), 4096)
    assert figures.status == OK, figures.reason
    # a function the counting process cannot import: null, with the reason
    missing = counter.count(FunctionMode("lost", lambda sock, fields: None), 4096)
    assert missing.status == NOT_COUNTED
    assert missing.user_instructions_per_message is None
    assert "cannot be loaded in another process" in str(missing.reason)


def test_without_valgrind_the_figure_is_not_counted_with_the_install_hint() -> None:
    counting = InstructionCounter(timeout=5.0, which=lambda: None)
    figures = counting.count(builtin_registry().get("two_copy"), 4096)
    counting.close()
    assert figures.status == NOT_COUNTED
    assert figures.user_instructions_per_message is None
    assert figures.reason == VALGRIND_HINT
    assert figures.method is None
    info = figures.to_extra_info()
    assert info["user_instructions_per_message"] is None
    assert info["user_instructions"]["status"] == "not counted"
    assert "valgrind (Debian/Ubuntu package valgrind)" in info["user_instructions"]["reason"]


class _Round:
    def __init__(self, messages: int) -> None:
        self.messages = messages


class _FakePool:
    """Two sender threads; each round adds user-mode instructions to the fake counters:
    1,000 per message plus 50,000 per round that do not depend on the messages."""

    def __init__(self, perf: FakePerf) -> None:
        self.tids = [101, 102]
        self.perf = perf

    def run_round(self, count: int) -> _Round:
        for event in self.perf.live.values():
            if event.leader in self.perf.on:
                event.value += 1000 * count + 50_000
        for leader in self.perf.on:
            self.perf.times[leader][0] += 1000
            self.perf.times[leader][1] += 1000
        return _Round(count * len(self.tids))


def test_with_a_pmu_the_sender_threads_user_instructions_are_counted() -> None:
    perf = FakePerf()
    figures = pmu_instruction_pass(_FakePool(perf), 500, sys=perf)  # type: ignore[arg-type]
    assert figures is not None
    assert figures.method == PMU and figures.status == OK
    # (I(2N) - I(N)) / N: the 50,000 per round cancel
    assert figures.user_instructions_per_message == pytest.approx(1000.0)
    assert figures.messages == 1000
    opened = [e for e in perf.opened if e.type == perf_abi.TYPE_HARDWARE]
    assert {e.tid for e in opened} == {101, 102}
    assert all(e.flags & EXCLUDE_KERNEL for e in opened)  # user mode only
    assert not perf.live  # closed


def test_without_a_pmu_the_pmu_pass_gives_way() -> None:
    import errno

    perf = FakePerf(refuse=lambda ev: errno.ENOENT)
    assert pmu_instruction_pass(_FakePool(perf), 500, sys=perf) is None  # type: ignore[arg-type]


def test_the_gate_knows_the_count_and_judges_it_at_any_speed() -> None:
    assert is_metric("user_instructions_per_message")
    assert "user_instructions_per_message" in SPEED_INDEPENDENT
    assert any(r.metric == "user_instructions_per_message" for r in DEFAULT_RULES)


def _sweep(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=4096", "--netcopy-threads=1", "--netcopy-modes=two_copy",
        "--benchmark-json=out.json", *args,
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "out.json").read_text())
    info: dict[str, Any] = data["benchmarks"][0]["extra_info"]
    return info


@pytest.mark.parametrize("option", [(), ("--netcopy-instructions=off",)], ids=["auto", "off"])
def test_without_the_gate_the_pass_does_not_run(
    pytester: pytest.Pytester, option: tuple[str, ...]
) -> None:
    info = _sweep(pytester, *option)
    assert "user_instructions_per_message" not in info
    assert "user_instructions" not in info


@NEEDS_VALGRIND
def test_the_option_turns_the_pass_on_and_the_gate_judges_it(pytester: pytest.Pytester) -> None:
    info = _sweep(pytester, "--netcopy-instructions=on")
    assert info["user_instructions"]["status"] == "ok", info["user_instructions"]
    assert info["user_instructions"]["method"] == "valgrind-cachegrind"
    assert info["user_instructions_per_message"] > 0
    (pytester.path / "out.json").rename(pytester.path / "base.json")
    # auto with the gate on: counted, and judged by the threshold alone
    gated = _sweep(
        pytester,
        "--netcopy-baseline=base.json",
        "--netcopy-gate=user_instructions_per_message:+10%",
    )
    assert gated["user_instructions"]["status"] == "ok"


@NEEDS_VALGRIND
def test_a_run_saved_as_a_baseline_counts_by_default(pytester: pytest.Pytester) -> None:
    """auto counts in a run kept with --benchmark-save, so a later gate has the count."""
    info = _sweep(pytester, "--benchmark-save=base", "--benchmark-storage=file://store")
    assert info["user_instructions"]["status"] == "ok", info["user_instructions"]
    assert info["user_instructions_per_message"] > 0
