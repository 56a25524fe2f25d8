"""steal.py: hypervisor steal per round from /proc/stat, and where it shows up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_netcopy.bench.figures import total_steal_ms
from pytest_netcopy.instruments.steal import StealClock, parse_steal, tick_ms
from pytest_netcopy.report.tables import modes_table
from pytest_netcopy.transport.pool import RoundResult

# the layout of a 6.x kernel's /proc/stat (values from this project's VM)
PROC_STAT = """\
cpu  620609 49577 536358 3254380 2140 0 189990 1739 0 0
cpu0 250225 19729 349499 1598686 172 0 137069 391 0 0
cpu1 370384 29848 186858 1655693 1967 0 52920 1348 0 0
intr 123456 0 9 0 0 0
ctxt 987654
btime 1764000000
processes 4242
procs_running 2
procs_blocked 0
softirq 1 2 3 4 5 6 7 8 9 10 11
"""


def render(steal: list[int]) -> str:
    """A /proc/stat text with these per-CPU steal values (and noise elsewhere)."""
    lines = [f"cpu  1 2 3 4 5 6 7 {sum(steal)} 0 0"]
    lines += [f"cpu{i} {i} 2 3 4 5 6 7 {s} 0 0" for i, s in enumerate(steal)]
    lines += ["intr 1 2 3", "ctxt 5", "cpu99-like-text-after 1 2 3 4 5 6 7 8"]
    return "\n".join(lines) + "\n"


def test_parse_real_layout_per_cpu_only() -> None:
    assert parse_steal(PROC_STAT) == {0: 391, 1: 1348}


@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=64))
def test_parse_round_trip(steal: list[int]) -> None:
    assert parse_steal(render(steal)) == dict(enumerate(steal))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no per-CPU lines"),
        ("cpu  1 2 3 4 5 6 7 8\nintr 1\n", "no per-CPU lines"),
        ("cpu0 1 2 3 4 5 6 7\n", "cpu0 line has no steal value"),  # a kernel before 2.6.11
        ("cpu0 1 2 3 4 5 6 7 x 9\n", "cpu0 line has no steal value"),
    ],
)
def test_parse_rejects_what_is_not_a_steal_source(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_steal(text)


class FakeStat:
    """/proc/stat at the reader boundary: per-CPU steal the test moves on."""

    def __init__(self, steal: list[int]) -> None:
        self.steal = steal
        self.reads = 0

    def __call__(self, path: str) -> str:
        self.reads += 1
        return render(self.steal)


def test_clock_sums_the_named_cpus_only() -> None:
    stat = FakeStat([0, 0, 0, 0])
    clock = StealClock([1, 3], reader=stat, ms_per_tick=10.0)
    before = clock.read()
    stat.steal = [50, 2, 7, 1]  # CPU 0 and 2 are not the benchmark's
    after = clock.read()
    assert (before, after) == (0, 3)
    assert clock.ms(before, after) == 30.0
    everything = StealClock(reader=stat, ms_per_tick=10.0)
    assert everything.read() == 60


def test_a_counter_that_went_backwards_is_unknown_not_zero() -> None:
    clock = StealClock(reader=FakeStat([0]), ms_per_tick=10.0)
    assert clock.ms(5, 3) is None
    assert clock.ms(3, 3) == 0.0
    assert clock.ms(None, 3) is None and clock.ms(3, None) is None


def test_unreadable_source_means_unknown_not_zero() -> None:
    def gone(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    clock = StealClock(reader=gone)
    assert clock.read() is None
    assert clock.reason is not None and "/proc/stat" in clock.reason
    assert "Permission denied" in clock.reason
    # and it stays unknown: no half-known totals later
    clock._reader = FakeStat([1])
    assert clock.read() is None


def test_a_cpu_the_kernel_does_not_list_is_an_unknown_source() -> None:
    clock = StealClock([0, 5], reader=FakeStat([1, 2]))
    assert clock.read() is None
    assert clock.reason == "/proc/stat: no line for CPU(s) [5]"


def test_this_machines_proc_stat() -> None:
    clock = StealClock(os.sched_getaffinity(0))
    value = clock.read()
    assert clock.reason is None
    assert isinstance(value, int) and value >= 0
    assert tick_ms() in (10.0, 1.0, 4.0)  # USER_HZ: 100 on every common build
    assert parse_steal(Path("/proc/stat").read_text()).keys() >= os.sched_getaffinity(0)


def rounds_with(steal: list[float | None]) -> list[RoundResult]:
    return [RoundResult(seconds=0.05, messages=1, bytes=8, acks=[], steal_ms=s) for s in steal]


def test_total_is_known_only_when_every_round_is() -> None:
    assert total_steal_ms(rounds_with([0.0, 10.0, 20.0])) == 30.0
    assert total_steal_ms(rounds_with([0.0, None])) is None
    assert total_steal_ms([]) is None


def steal_result(mode: str, steal: float | None) -> dict[str, object]:
    return {
        "mode": mode, "size": 65536, "threads": 1, "throughput_gbps": 40.0,
        "messages_per_second": 76294.0, "ns_per_message": 13107.0,
        "integrity": {"ok": True, "verified_bytes": 1}, "steal_ms": steal,
    }  # fmt: skip


def test_summary_line_only_where_the_host_took_time() -> None:
    quiet = modes_table([steal_result("two_copy", 0.0), steal_result("one_copy", None)])
    assert "host steal" not in quiet  # bare metal, or steal unknown: no line, no legend
    table = modes_table(
        [steal_result("two_copy", 20.0), steal_result("one_copy", 0.0)], fmt="plain"
    )
    line = next(row for row in table.splitlines() if "host steal ms" in row)
    assert line.split()[-2:] == ["20", "0"]
    assert "host steal ms = time the hypervisor kept this benchmark's CPUs" in table


class TickingStat(FakeStat):
    """Every read finds 2 more ticks on every CPU: steal during each round."""

    def __call__(self, path: str) -> str:
        self.steal = [s + 2 for s in self.steal]
        return super().__call__(path)


def test_each_round_of_a_real_pool_carries_its_steal() -> None:
    from pytest_netcopy.send.builtin import builtin_registry
    from pytest_netcopy.transport.local import SinkProcess
    from pytest_netcopy.transport.pool import SenderPool

    cpus = sorted(os.sched_getaffinity(0))
    sink = SinkProcess(timeout=20, cpus=cpus[-1:])
    sink.ensure_running()
    try:
        # unpinned senders: every CPU counts, whatever the sink is pinned to
        with SenderPool(sink, builtin_registry().get("two_copy"), 4096, 1, timeout=20) as pool:
            assert pool.steal.cpus == []
            stat = TickingStat([0] * (max(cpus) + 1))
            pool.steal = StealClock(reader=stat, ms_per_tick=10.0)
            first, second = pool.run_round(20), pool.run_round(20)
            # read once before the round starts and once after its last ack
            assert stat.reads == 4
            assert first.steal_ms == second.steal_ms == 2 * len(stat.steal) * 10.0
            pool.finish_stream()
        # pinned senders: their CPUs and the sink's, no others
        with SenderPool(
            sink, builtin_registry().get("two_copy"), 4096, 1, timeout=20, cpus=cpus[:1]
        ) as pool:
            assert pool.steal.cpus == sorted({cpus[0], cpus[-1]})
            assert pool.run_round(20).steal_ms is not None  # this machine's own /proc/stat
            pool.finish_stream()
    finally:
        sink.close()
