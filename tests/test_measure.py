"""measure and passes: combining rounds, derived figures, syscalls per message; the layer
above perf.

The pure functions (``combine``, ``derived``, ``_per_message``) are tested with
examples and hypothesis. The paths this machine cannot run (a counting PMU,
multiplexing, a round that never ran, EACCES/EPERM, ENOENT) drive the real
``RoundCounters`` / ``syscall_pass`` / ``measure.counter_figures`` over a fake
kernel at the PerfSys boundary (``FakePerf`` of test_counters_fake.py, put in
place of ``CtypesPerfSys``) and a stub pool with ``.tids``: everything between
that boundary and the JSON figures is the real code.
"""

from __future__ import annotations

import errno
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_counters_fake import EXCLUDE_KERNEL, FakeEvent, FakePerf, make_sysfs

from pytest_netcopy.bench.measure import (
    RoundCounters,
    combine,
    counter_figures,
    derived,
    per_round_cpu_ns_per_byte,
    sink_counters,
)
from pytest_netcopy.bench.passes import (
    REMOTE_SINK_REASON,
    SENDER_SYSCALLS,
    SINK_SYSCALLS,
    _per_message,
    syscall_pass,
)
from pytest_netcopy.instruments import counters, perf_abi
from pytest_netcopy.instruments.counters import (
    DEFAULT_EVENTS,
    EVENTS,
    NOT_COUNTED,
    NOT_PERMITTED,
    NOT_SUPPORTED,
    OK,
    PARANOID_HINT,
    SCALED,
    STATUSES,
    USER_ONLY,
    CounterValue,
)
from pytest_netcopy.transport.pool import RoundResult
from pytest_netcopy.transport.records import Ack

MISSING = (NOT_COUNTED, NOT_SUPPORTED, NOT_PERMITTED)
COUNTED = (OK, SCALED, USER_ONLY)
#: derived figure -> (numerator event, where it lives, denominator: "bytes" or an event)
FIGURES = {
    "cpu_ns_per_byte": ("task-clock", "senders", "bytes"),
    "sink_cpu_ns_per_byte": ("task-clock", "sink", "bytes"),
    "cycles_per_byte": ("cycles", "senders", "bytes"),
    "instructions_per_byte": ("instructions", "senders", "bytes"),
    "ipc": ("instructions", "senders", "cycles"),
    "context_switches_per_mb": ("context-switches", "senders", "bytes"),
}


def cv(value: float | None, status: str = OK, fraction: float | None = 1.0) -> CounterValue:
    return CounterValue(value=value, status=status, running_fraction=fraction)


def missing(status: str, fraction: float | None = None) -> CounterValue:
    return cv(None, status, fraction)


# ---------------------------------------------------------------- combine


def test_combine_sums_counted_rounds() -> None:
    rounds = [
        {"task-clock": cv(100.0), "cycles": cv(10.0)},
        {"task-clock": cv(250.0), "cycles": cv(30.0)},
    ]
    assert combine(rounds) == {"task-clock": cv(350.0), "cycles": cv(40.0)}
    assert combine([]) == {}


def test_combine_status_is_the_weakest_counted_one() -> None:
    rounds = [
        {"a": cv(1.0), "b": cv(1.0), "c": cv(1.0, USER_ONLY)},
        {"a": cv(2.0, SCALED, 0.5), "b": cv(2.0, USER_ONLY, 0.25), "c": cv(2.0, SCALED, 0.75)},
        {"a": cv(3.0), "b": cv(3.0, SCALED, 0.5), "c": cv(3.0)},
    ]
    got = combine(rounds)
    assert got["a"] == cv(6.0, SCALED, 0.5)  # one scaled round makes the sum scaled
    assert got["b"] == cv(6.0, USER_ONLY, 0.25)  # user-only wins over scaled
    assert got["c"] == cv(6.0, USER_ONLY, 0.75)


def test_one_uncounted_round_makes_the_sum_uncounted_not_smaller() -> None:
    rounds = [
        {"cycles": cv(1000.0), "task-clock": cv(5.0)},
        {"cycles": missing(NOT_COUNTED, 0.0), "task-clock": cv(6.0)},
        {"cycles": cv(1000.0), "task-clock": cv(7.0)},
    ]
    got = combine(rounds)
    # a sum over two of three rounds would undercount by a third: no number at all
    assert got["cycles"] == missing(NOT_COUNTED, 0.0)
    assert got["task-clock"] == cv(18.0)


def test_missing_status_precedence() -> None:
    def first(*statuses: str) -> str:
        return combine([{"e": missing(s)} for s in statuses])["e"]["status"]

    assert first(NOT_COUNTED, NOT_SUPPORTED, NOT_PERMITTED) == NOT_PERMITTED
    assert first(NOT_COUNTED, NOT_SUPPORTED) == NOT_SUPPORTED
    assert first(NOT_COUNTED, NOT_COUNTED) == NOT_COUNTED
    mixed = combine([{"e": cv(5.0)}, {"e": missing(NOT_SUPPORTED)}])["e"]
    assert mixed == missing(NOT_SUPPORTED, 1.0)  # the counted round's fraction stays visible


counted_values = st.builds(
    cv,
    st.floats(0, 1e12),
    st.sampled_from(COUNTED),
    st.one_of(st.none(), st.floats(0.0, 1.0, exclude_min=True)),
)
missing_values = st.builds(
    cv, st.none(), st.sampled_from(MISSING), st.one_of(st.none(), st.just(0.0))
)
event_names = st.lists(st.sampled_from(list(EVENTS)), min_size=1, max_size=4, unique=True)


@st.composite
def round_lists(draw: st.DrawFn) -> list[dict[str, CounterValue]]:
    names = draw(event_names)
    n = draw(st.integers(1, 6))
    value = st.one_of(counted_values, missing_values)
    return [{name: draw(value) for name in names} for _ in range(n)]


@given(round_lists())
def test_combine_properties(rounds: list[dict[str, CounterValue]]) -> None:
    got = combine(rounds)
    assert list(got) == list(rounds[0])
    for event, out in got.items():
        values = [r[event] for r in rounds]
        assert out["status"] in STATUSES
        fractions = [v["running_fraction"] for v in values if v["running_fraction"] is not None]
        assert out["running_fraction"] == (min(fractions) if fractions else None)
        if any(v["value"] is None for v in values):
            # never a zero (or a partial sum) for something some round did not count
            assert out["value"] is None
            assert out["status"] in {v["status"] for v in values if v["value"] is None}
        else:
            assert out["value"] == pytest.approx(math.fsum(v["value"] or 0.0 for v in values))
            statuses = {v["status"] for v in values}
            assert out["status"] in statuses
            assert (out["status"] == OK) == (statuses == {OK})


# ---------------------------------------------------------------- derived


def test_derived_ratios() -> None:
    senders = {
        "task-clock": cv(2_000_000.0),
        "cycles": cv(8_000_000.0),
        "instructions": cv(6_000_000.0),
        "context-switches": cv(50.0),
    }
    sink = {"task-clock": cv(1_000_000.0)}
    assert derived(senders, sink, 4_000_000).to_extra_info() == {
        "cpu_ns_per_byte": 0.5,
        "sink_cpu_ns_per_byte": 0.25,
        "cycles_per_byte": 2.0,
        "instructions_per_byte": 1.5,
        "ipc": 0.75,
        "context_switches_per_mb": 12.5,
    }


def test_derived_is_none_not_zero_when_not_counted() -> None:
    senders = {
        "task-clock": cv(2_000_000.0),
        "cycles": missing(NOT_SUPPORTED),
        "instructions": missing(NOT_PERMITTED),
        "context-switches": cv(0.0),  # counted: a real zero stays a zero
    }
    got = derived(senders, {}, 1000).to_extra_info()
    assert got["cpu_ns_per_byte"] == 2000.0
    assert got["context_switches_per_mb"] == 0.0
    for key in ("sink_cpu_ns_per_byte", "cycles_per_byte", "instructions_per_byte", "ipc"):
        assert got[key] is None
    # cycles counted but instructions not: ipc is unknown, cycles per byte is not
    got = derived(
        {"cycles": cv(10.0), "instructions": missing(NOT_COUNTED, 0.0)}, {}, 5
    ).to_extra_info()
    assert got["cycles_per_byte"] == 2.0 and got["ipc"] is None
    # a zero denominator gives no figure rather than a division error or a fake zero
    assert derived({"instructions": cv(10.0), "cycles": cv(0.0)}, {}, 5).ipc is None
    assert set(derived({}, {}, 0).to_extra_info().values()) == {None}


counter_maps = st.dictionaries(
    st.sampled_from(["task-clock", "cycles", "instructions", "context-switches"]),
    st.one_of(counted_values, missing_values),
)


@given(counter_maps, counter_maps, st.integers(0, 1 << 40))
def test_derived_properties(
    senders: dict[str, CounterValue], sink: dict[str, CounterValue], total_bytes: int
) -> None:
    got = derived(senders, sink, total_bytes).to_extra_info()
    assert set(got) == set(FIGURES)
    for figure, (event, where, denominator) in FIGURES.items():
        source = senders if where == "senders" else sink
        top = source[event]["value"] if event in source else None
        bottom: float | None
        if denominator == "bytes":
            bottom = float(total_bytes)
        else:
            bottom = senders[denominator]["value"] if denominator in senders else None
        if top is None or bottom is None or bottom == 0:
            assert got[figure] is None, figure
        else:
            scale = 1e6 if figure == "context_switches_per_mb" else 1.0
            assert got[figure] == pytest.approx(top / bottom * scale), figure


def test_per_round_cpu_ns_per_byte() -> None:
    rounds = [{"task-clock": cv(300.0)}, {"task-clock": missing(NOT_COUNTED, 0.0)}, {}]
    assert per_round_cpu_ns_per_byte(rounds, 100) == [3.0, None, None]


# ---------------------------------------------------------------- syscalls per message


def test_per_message_divides_and_totals() -> None:
    counts = {"sendmsg": cv(1000.0), "recvmsg": cv(30.0), "sendto": cv(0.0)}
    assert _per_message(counts, 1000) == {
        "sendmsg": 1.0,
        "recvmsg": 0.03,
        "sendto": 0.0,
        "total": 1.03,
    }


def test_per_message_says_what_was_not_counted() -> None:
    counts = {"sendmsg": cv(500.0), "poll": missing(NOT_SUPPORTED)}
    assert _per_message(counts, 250) == {
        "sendmsg": 2.0,
        "poll": None,
        "total": 2.0,
        "not_counted": {"poll": NOT_SUPPORTED},
    }
    nothing = _per_message({"sendto": missing(NOT_PERMITTED)}, 10)
    assert nothing == {"sendto": None, "total": None, "not_counted": {"sendto": NOT_PERMITTED}}


# ---------------------------------------------------------------- sink_counters


def ack(conn_id: int, cpu_ns: int, vcs: int, ics: int) -> Ack:
    return Ack(conn_id, 1, 4096, True, 0, 0, 0, 0, 3, cpu_ns, vcs, ics)


def result(acks: list[Ack], seconds: float = 0.01, messages: int = 10) -> RoundResult:
    return RoundResult(seconds=seconds, messages=messages, bytes=messages * 4096, acks=acks)


def test_sink_counters_sum_every_ack_of_every_round() -> None:
    rounds = [result([ack(1, 100, 1, 2), ack(2, 200, 0, 1)]), result([ack(1, 50, 3, 0)])]
    assert sink_counters(rounds) == {
        "task-clock": cv(350.0),
        "context-switches": cv(7.0),
    }


# ---------------------------------------------------------------- fake kernel boundary

ROUND_NS = 1_000_000  # each stub round lasts 1 ms of enabled time per thread
SIZE = 4096
COUNT = 250  # messages per connection per round
#: what one thread counts in one round when everything runs (distinct primes: mix-ups show)
RATES = {
    "task-clock": 700_003,
    "context-switches": 11,
    "cpu-migrations": 2,
    "page-faults": 5,
    "cycles": 3_000_017,
    "instructions": 2_000_003,
    "cache-misses": 1_009,
    "L1-dcache-load-misses": 4_001,
    "LLC-load-misses": 307,
}
#: syscall tracepoints the fake tracefs has (ids), and what one sender thread calls per round
TRACEPOINTS = {"sendto": 601, "sendmsg": 602, "recvmsg": 603, "setsockopt": 605, "recvfrom": 701}
SENDER_CALLS = {"sendto": 1, "sendmsg": COUNT, "recvmsg": 7, "setsockopt": 2}
SINK_CALLS = {"recvfrom": 90}
KERNEL_ONLY = ("context-switches", "cpu-migrations")  # they read 0 with exclude_kernel=1


def kernel_counts(ev: FakeEvent) -> int:
    """What the fake kernel counts for one event in one round (as the real one would)."""
    if ev.type == perf_abi.TYPE_TRACEPOINT:
        name = {i: n for n, i in TRACEPOINTS.items()}[ev.config]
        return SENDER_CALLS.get(name, 0) + SINK_CALLS.get(name, 0)
    if ev.flags & EXCLUDE_KERNEL and ev.name in KERNEL_ONLY:
        return 0  # seen on Linux 6.18: switches and migrations happen in the kernel
    return RATES[ev.name]


@dataclass
class StubPool:
    """What RoundCounters and syscall_pass use of a SenderPool; a round is fake time."""

    fake: FakePerf
    tids: list[int] = field(default_factory=lambda: [4101, 4102])
    sink_tids: list[int] = field(default_factory=lambda: [5101, 5102])
    #: running ns of a leader in the next round (default: all of ROUND_NS)
    running: Callable[[FakeEvent], int] | None = None
    rounds: int = 0
    #: the peer: a local sink, whose threads the syscall pass may count
    sink: Any = field(default_factory=lambda: SimpleNamespace(local_threads=True))

    def run_round(self, count: int) -> RoundResult:
        self.rounds += 1
        running = self.running

        def counted(ev: FakeEvent) -> int:
            # a multiplexed counter counts only while it runs
            share = 1.0 if running is None else running(self.fake.live[ev.leader]) / ROUND_NS
            return round(kernel_counts(ev) * share)

        self.fake.advance(ROUND_NS, count=counted, running=running)
        acks = [ack(i + 1, 400_000, 2, 1) for i in range(len(self.tids))]
        n = count * len(self.tids)
        return result(acks, seconds=ROUND_NS / 1e9, messages=n)


@pytest.fixture
def fake_sysfs(tmp_path: Path) -> Path:
    """A one-PMU machine whose tracefs has every syscall tracepoint but ``poll``."""
    root = make_sysfs(tmp_path / "sys", {"cpu": (4, None)})
    for name, ident in TRACEPOINTS.items():
        d = root / "kernel" / "tracing" / "events" / "syscalls" / f"sys_enter_{name}"
        d.mkdir(parents=True)
        (d / "id").write_text(f"{ident}\n")
    return root


@dataclass
class Kernel:
    fake: FakePerf
    pool: StubPool
    paranoid: int


@pytest.fixture
def kernel(
    monkeypatch: pytest.MonkeyPatch, fake_sysfs: Path, tmp_path: Path
) -> Iterator[Callable[..., Kernel]]:
    """Put a FakePerf (refusing per ``refuse``) where the code would make a CtypesPerfSys.

    RoundCounters and syscall_pass take no ``sys`` argument, so the fake goes in
    at the name counters.py calls; sysfs and procfs are fake trees read by the
    real readers.
    """
    made: list[FakePerf] = []
    procfs = tmp_path / "proc"
    (procfs / "sys" / "kernel").mkdir(parents=True)
    (procfs / "sys" / "kernel" / "perf_event_paranoid").write_text("3\n")
    monkeypatch.setattr(
        counters, "discover_core_pmus", lambda root="/sys": perf_abi.discover_core_pmus(fake_sysfs)
    )
    monkeypatch.setattr(
        counters,
        "syscall_tracepoint_ids",
        lambda names, root: perf_abi.syscall_tracepoint_ids(names, fake_sysfs),
    )
    monkeypatch.setattr(
        counters, "read_procfs_int", lambda root, rel: perf_abi.read_procfs_int(procfs, rel)
    )

    def make(refuse: Callable[[FakeEvent], int | None] = lambda ev: None) -> Kernel:
        fake = FakePerf(refuse)
        made.append(fake)
        monkeypatch.setattr(counters, "CtypesPerfSys", lambda: fake)
        return Kernel(fake, StubPool(fake), paranoid=3)

    yield make
    for fake in made:
        assert fake.live == {}, "perf fds left open"


def run_benchmark(
    k: Kernel, events: tuple[str, ...] | list[str], rounds: int = 3, passes: bool = True
) -> tuple[RoundCounters, dict[str, Any], str | None]:
    """What bench.run.BenchmarkRun does with the counters, on the stub pool.

    Returns the RoundCounters (closed), the figures as pytest-benchmark writes
    them (through JSON) and the fallback hint as read while the counters were open.
    """
    results = []
    with RoundCounters(k.pool, events) as rc:  # type: ignore[arg-type]
        k.fake.advance(ROUND_NS, count=lambda ev: 1_000)  # calibration: counters disabled
        for _ in range(rounds):
            results.append(rc.run(lambda: k.pool.run_round(COUNT)))
            k.fake.advance(ROUND_NS, count=lambda ev: 1_000)  # between rounds: disabled
        syscalls = syscall_pass(k.pool, COUNT) if passes and events else None  # type: ignore[arg-type]
        figures = counter_figures(rc.per_round, results, COUNT * len(k.pool.tids) * SIZE, syscalls)
        hint = rc.fallback_hint()
    info = {**figures.to_extra_info(), "rounds": figures.round_entries()}
    return rc, json.loads(json.dumps(info)), hint


def assert_honest(figures: dict[str, Any], total_bytes: int) -> None:
    """Value null exactly when the status says not counted; derived null when an input is."""
    for where in ("counters", "sink_counters"):
        for event, entry in figures[where].items():
            assert entry["status"] in STATUSES, (where, event)
            assert (entry["value"] is None) == (entry["status"] in MISSING), (where, event, entry)
    senders = figures["counters"]
    for figure, (event, where, _) in FIGURES.items():
        source = senders if where == "senders" else figures["sink_counters"]
        if source.get(event, {}).get("value") is None:
            assert figures[figure] is None, figure
    if figures["ipc"] is not None:
        assert figures["ipc"] == pytest.approx(
            senders["instructions"]["value"] / senders["cycles"]["value"]
        )
    assert total_bytes > 0


TOTAL = 3 * COUNT * 2 * SIZE  # 3 rounds, 2 threads


def test_a_counting_pmu_gives_every_figure(kernel: Callable[..., Kernel]) -> None:
    k = kernel()
    _, fig, hint = run_benchmark(k, DEFAULT_EVENTS)
    assert hint is None
    for name in DEFAULT_EVENTS:  # 3 rounds x 2 threads, nothing from outside the rounds
        assert fig["counters"][name] == cv(6.0 * RATES[name]), name
    assert fig["cpu_ns_per_byte"] == pytest.approx(6 * RATES["task-clock"] / TOTAL)
    assert fig["cycles_per_byte"] == pytest.approx(6 * RATES["cycles"] / TOTAL)
    assert fig["instructions_per_byte"] == pytest.approx(6 * RATES["instructions"] / TOTAL)
    assert fig["ipc"] == pytest.approx(RATES["instructions"] / RATES["cycles"])
    assert fig["context_switches_per_mb"] == pytest.approx(
        6 * RATES["context-switches"] / TOTAL * 1e6
    )
    assert fig["sink_cpu_ns_per_byte"] == pytest.approx(6 * 400_000 / TOTAL)
    assert fig["sink_counters"]["context-switches"] == cv(18.0)
    per_round = RATES["task-clock"] * 2 / (COUNT * 2 * SIZE)
    assert fig["rounds"]["cpu_ns_per_byte"] == pytest.approx([per_round] * 3)
    msgs = 2 * COUNT
    assert fig["syscalls_per_message"] == {
        "sendto": 2 / msgs,
        "sendmsg": 1.0,
        "recvmsg": 14 / msgs,
        "poll": None,  # no such tracepoint in this tracefs
        "setsockopt": 4 / msgs,
        "total": pytest.approx((2 + 2 * COUNT + 14 + 4) / msgs),
        "not_counted": {"poll": NOT_SUPPORTED},
    }
    assert fig["sink_syscalls_per_message"] == {"recvfrom": 180 / msgs, "total": 180 / msgs}
    assert_honest(fig, TOTAL)


def test_syscall_pass_counts_only_its_own_round(kernel: Callable[..., Kernel]) -> None:
    k = kernel()
    senders, sink = syscall_pass(k.pool, COUNT)  # type: ignore[arg-type]
    assert k.pool.rounds == 1
    tracepoints = [e for e in k.fake.opened if e.type == perf_abi.TYPE_TRACEPOINT]
    assert {e.tid for e in tracepoints} == {*k.pool.tids, *k.pool.sink_tids}
    on_sink = {e.config for e in tracepoints if e.tid in k.pool.sink_tids}
    assert on_sink == {TRACEPOINTS[n] for n in SINK_SYSCALLS}
    on_senders = {e.config for e in tracepoints if e.tid in k.pool.tids}
    assert on_senders == {TRACEPOINTS[n] for n in SENDER_SYSCALLS if n in TRACEPOINTS}
    assert senders["sendmsg"] == 1.0 and sink["recvfrom"] == 90 / COUNT
    assert not k.fake.on  # disabled again


def test_syscall_pass_leaves_a_remote_sinks_threads_alone(kernel: Callable[..., Kernel]) -> None:
    """With the sink on another host its thread ids are not this machine's: never traced."""
    k = kernel()
    k.pool.sink = SimpleNamespace(local_threads=False)
    senders, sink = syscall_pass(k.pool, COUNT)  # type: ignore[arg-type]
    tracepoints = [e for e in k.fake.opened if e.type == perf_abi.TYPE_TRACEPOINT]
    assert {e.tid for e in tracepoints} == set(k.pool.tids)
    assert senders["sendmsg"] == 1.0
    assert sink["recvfrom"] is None and sink["total"] is None  # null, never a fake 0
    assert sink["not_counted"] == {"recvfrom": REMOTE_SINK_REASON}


def test_no_pmu_hardware_figures_are_null_never_zero(kernel: Callable[..., Kernel]) -> None:
    k = kernel(lambda ev: errno.ENOENT if ev.type in (0, 3) else None)  # like this machine
    _, fig, hint = run_benchmark(k, DEFAULT_EVENTS)
    for name, event in EVENTS.items():
        if event.hardware:
            assert fig["counters"][name] == missing(NOT_SUPPORTED), name
        else:
            assert fig["counters"][name] == cv(6.0 * RATES[name]), name
    for key in ("cycles_per_byte", "instructions_per_byte", "ipc"):
        assert fig[key] is None, key
    assert fig["cpu_ns_per_byte"] == pytest.approx(6 * RATES["task-clock"] / TOTAL)
    assert hint is None
    assert_honest(fig, TOTAL)


def test_multiplexed_rounds_are_scaled_and_say_so(kernel: Callable[..., Kernel]) -> None:
    k = kernel()
    share = {1: 1.0, 2: 0.5, 3: 0.25}  # of each round the hardware group was on a counter

    def running(leader: FakeEvent) -> int:
        return int(ROUND_NS * share[k.pool.rounds]) if leader.type == 0 else ROUND_NS

    k.pool.running = running
    _, fig, _ = run_benchmark(k, ["task-clock", "cycles", "instructions"], passes=False)
    # each round's count scaled back to the whole round: the totals are the full rates
    for name in ("cycles", "instructions"):
        entry = fig["counters"][name]
        assert entry["value"] == pytest.approx(6.0 * RATES[name], rel=1e-6), name
        assert entry["status"] == SCALED and entry["running_fraction"] == 0.25, name
    assert fig["counters"]["task-clock"] == cv(6.0 * RATES["task-clock"])
    assert fig["ipc"] == pytest.approx(RATES["instructions"] / RATES["cycles"])
    assert fig["cycles_per_byte"] == pytest.approx(6 * RATES["cycles"] / TOTAL)
    assert fig["syscalls_per_message"] is None and fig["sink_syscalls_per_message"] is None
    assert_honest(fig, TOTAL)


def test_a_round_that_never_ran_the_pmu_is_not_counted(kernel: Callable[..., Kernel]) -> None:
    k = kernel()

    def running(leader: FakeEvent) -> int:
        # the hardware group never gets a counter in the second round (both threads)
        return 0 if leader.type == 0 and k.pool.rounds == 2 else ROUND_NS

    k.pool.running = running
    _, fig, _ = run_benchmark(k, ["task-clock", "cycles", "instructions"], passes=False)
    for name in ("cycles", "instructions"):
        assert fig["counters"][name] == missing(NOT_COUNTED, 0.0), name
    for key in ("cycles_per_byte", "instructions_per_byte", "ipc"):
        assert fig[key] is None, key
    assert fig["counters"]["task-clock"]["status"] == OK
    assert fig["context_switches_per_mb"] is None  # not selected: not 0
    assert_honest(fig, TOTAL)


def kernel_refused(ev: FakeEvent) -> int | None:
    """perf_event_paranoid=2 without CAP_PERFMON: kernel-side counting refused."""
    return None if ev.flags & EXCLUDE_KERNEL else errno.EACCES


def test_user_only_fallback_gives_figures_and_the_hint(kernel: Callable[..., Kernel]) -> None:
    k = kernel(kernel_refused)
    _, fig, hint = run_benchmark(k, DEFAULT_EVENTS, passes=False)
    assert hint is not None and hint.startswith(PARANOID_HINT)
    assert "kernel.perf_event_paranoid = 3" in hint  # read from the (fake) procfs
    for name in DEFAULT_EVENTS:  # the kernel-only ones: test_user_only_kernel_events_...
        if name not in KERNEL_ONLY:  # task-clock ignores exclude_kernel: counted whole
            kind = OK if name == "task-clock" else USER_ONLY
            assert fig["counters"][name] == cv(6.0 * RATES[name], kind), name
    assert fig["cycles_per_byte"] == pytest.approx(6 * RATES["cycles"] / TOTAL)
    assert fig["ipc"] == pytest.approx(RATES["instructions"] / RATES["cycles"])
    assert fig["cpu_ns_per_byte"] is not None


def test_the_hint_survives_closing_the_counters(kernel: Callable[..., Kernel]) -> None:
    k = kernel(kernel_refused)
    rc, _, hint = run_benchmark(k, ["task-clock"], passes=False)
    assert hint is not None
    assert rc.fallback_hint() == hint  # where runner.py asks: after `with stack:` has closed it


def test_user_only_kernel_events_are_not_a_zero(kernel: Callable[..., Kernel]) -> None:
    k = kernel(kernel_refused)
    _, fig, _ = run_benchmark(k, DEFAULT_EVENTS, passes=False)
    assert fig["counters"]["context-switches"]["value"] is None
    assert fig["counters"]["cpu-migrations"]["value"] is None
    assert fig["context_switches_per_mb"] is None


def test_refused_even_user_only_is_not_permitted(kernel: Callable[..., Kernel]) -> None:
    k = kernel(lambda ev: errno.EPERM if ev.type in (0, 3) else None)
    _, fig, hint = run_benchmark(k, DEFAULT_EVENTS, passes=False)
    assert hint is None  # no group fell back: nothing to hint about
    for name, event in EVENTS.items():
        want = missing(NOT_PERMITTED) if event.hardware else cv(6.0 * RATES[name])
        assert fig["counters"][name] == want, name
    assert fig["cycles_per_byte"] is None and fig["ipc"] is None
    assert_honest(fig, TOTAL)


def test_counters_none_opens_nothing_and_reports_nothing(kernel: Callable[..., Kernel]) -> None:
    k = kernel()
    rc, fig, hint = run_benchmark(k, [])
    assert k.fake.attempts == [] and rc.counters is None and hint is None
    assert k.pool.rounds == 3  # the rounds ran, uncounted
    assert fig["counters"] == {} and fig["rounds"] == {}  # no per-round CPU entry at all
    for key in ("cpu_ns_per_byte", "cycles_per_byte", "instructions_per_byte", "ipc"):
        assert fig[key] is None
    assert fig["context_switches_per_mb"] is None
    assert fig["syscalls_per_message"] is None and fig["sink_syscalls_per_message"] is None
    # the sink measures itself (thread CPU time, getrusage): not a perf counter
    assert fig["sink_cpu_ns_per_byte"] == pytest.approx(6 * 400_000 / TOTAL)


def test_a_failing_round_disables_and_records_nothing(kernel: Callable[..., Kernel]) -> None:
    k = kernel()

    def broken() -> RoundResult:
        k.pool.run_round(COUNT)
        raise RuntimeError("sink died")

    with RoundCounters(k.pool, ["task-clock"]) as rc:  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="sink died"):
            rc.run(broken)
        assert not k.fake.on and rc.per_round == []
        rc.run(lambda: k.pool.run_round(COUNT))
    assert rc.per_round == [{"task-clock": cv(2.0 * RATES["task-clock"])}]


refusals = st.sampled_from(
    [None, errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL, errno.EACCES, errno.EPERM]
)


@given(
    hw_refusal=refusals,
    user_only_too=st.booleans(),
    shares=st.lists(st.sampled_from([0.0, 0.3, 1.0]), min_size=4, max_size=4),
    events=st.lists(st.sampled_from(DEFAULT_EVENTS), min_size=1, unique=True),
)
def test_any_kernel_answer_gives_honest_figures(
    tmp_path_factory: pytest.TempPathFactory,
    hw_refusal: int | None,
    user_only_too: bool,
    shares: list[float],
    events: list[str],
) -> None:
    """Whatever the kernel refuses or multiplexes: null exactly where not counted."""
    sysfs = make_sysfs(tmp_path_factory.mktemp("sys"), {"cpu": (4, None)})

    def refuse(ev: FakeEvent) -> int | None:
        if ev.type not in (0, 3) or hw_refusal is None:
            return None
        if hw_refusal in (errno.EACCES, errno.EPERM) and ev.flags & EXCLUDE_KERNEL:
            return hw_refusal if user_only_too else None
        return hw_refusal

    fake = FakePerf(refuse)
    pool = StubPool(fake)

    def running(lead: FakeEvent) -> int:
        if lead.type not in (0, 3):
            return ROUND_NS
        share = shares[2 * (pool.rounds - 1) + pool.tids.index(lead.tid)]
        return int(ROUND_NS * share)

    pool.running = running
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(counters, "CtypesPerfSys", lambda: fake)
        mp.setattr(counters, "discover_core_pmus", lambda root: perf_abi.discover_core_pmus(sysfs))
        k = Kernel(fake, pool, 0)
        _, fig, _ = run_benchmark(k, events, rounds=2, passes=False)
    assert fake.live == {}
    assert_honest(fig, 2 * COUNT * 2 * SIZE)
    assert set(fig["counters"]) == set(events)
    for name in events:
        entry = fig["counters"][name]
        if not EVENTS[name].hardware:
            assert entry == cv(4.0 * RATES[name]), name
        elif hw_refusal in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL):
            assert entry == missing(NOT_SUPPORTED), name
        elif hw_refusal is not None and user_only_too:
            assert entry == missing(NOT_PERMITTED), name
        elif shares[0:2] == [0.0, 0.0] or shares[2:4] == [0.0, 0.0]:
            # a round in which no thread's counter ever ran: nothing to scale from
            assert entry == missing(NOT_COUNTED, 0.0), name
        else:
            # counts are summed over threads, then scaled once (as perf stat aggregates):
            # a thread that never ran is estimated from the other, and that says "scaled"
            per_round = [shares[0:2], shares[2:4]]
            expected = 0.0
            for both in per_round:
                raw = sum(round(RATES[name] * share) for share in both)
                running = sum(int(ROUND_NS * share) for share in both)
                expected += raw * 2 * ROUND_NS / running
            assert entry["value"] == pytest.approx(expected, rel=1e-5), name
            fraction = min(sum(s) / 2 for s in per_round)
            assert entry["running_fraction"] == pytest.approx(fraction), name
            kind = USER_ONLY if hw_refusal is not None else SCALED if fraction < 1 else OK
            assert entry["status"] == kind, name
