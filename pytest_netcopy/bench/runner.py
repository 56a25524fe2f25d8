"""One benchmark: calibrate, time rounds through pytest-benchmark, record what they mean."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_netcopy.bench.measure import (
    RoundCounters,
    combine,
    derived,
    per_round_cpu_ns_per_byte,
    sink_counters,
    syscall_pass,
)
from pytest_netcopy.instruments.usertime import user_pass
from pytest_netcopy.plugin.options import Settings
from pytest_netcopy.results.schema import SCHEMA_VERSION
from pytest_netcopy.send.modes import BareSend, Mode, ModeRegistry, ModeUnsupported, SendOne
from pytest_netcopy.sink import check_size
from pytest_netcopy.transport.transfer import (
    IntegrityError,
    Placement,
    RoundResult,
    SenderPool,
    SinkProcess,
    TransferError,
)

#: bytes per connection in the first calibration round
CALIBRATION_START_BYTES = 256 * 1024
CALIBRATION_STEPS = 10
#: a calibration round at least this fraction of the target measures the rate well enough
CALIBRATION_PROBE = 0.25
#: aim this much above the target, so a round lasts at least about the target
CALIBRATION_MARGIN = 1.05


@dataclass
class NetcopySession:
    """Run state of one pytest session (kept in ``config.stash``)."""

    settings: Settings
    registry: ModeRegistry
    placement: Placement
    sink: SinkProcess | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    hints: set[str] = field(default_factory=set)

    def get_sink(self) -> SinkProcess:
        if self.sink is None:
            self.sink = SinkProcess(
                timeout=self.settings.timeout,
                recv_buffer=self.settings.recv_buffer,
                cpus=self.placement.sink_cpus if self.placement.pinned else (),
            )
        self.sink.ensure_running()
        return self.sink

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None


@dataclass
class RunResult:
    """What ``netcopy.run`` returns: the figures also stored in ``extra_info``."""

    extra_info: dict[str, Any]

    @property
    def intact(self) -> bool:
        return bool(self.extra_info["integrity"]["ok"])

    @property
    def throughput_gbps(self) -> float:
        return float(self.extra_info["throughput_gbps"])

    def __getitem__(self, key: str) -> Any:
        return self.extra_info[key]


def calibrate(pool: SenderPool, target: float, size: int, *, control: bool = False) -> int:
    """Messages per connection so that one round lasts at least about ``target`` seconds.

    ``control=True`` calibrates the pool's control rounds instead.
    """
    start = max(8, math.ceil(CALIBRATION_START_BYTES / size))
    return messages_for(lambda n: pool.run_round(n, control=control).seconds, target, start)


def messages_for(run: Callable[[int], float], target: float, start: int) -> int:
    """The message count for rounds of ``target`` seconds, from as few probe rounds as will do.

    ``run(n)`` runs a round of ``n`` messages and returns its seconds. Rounds
    grow (at most 64x a step) until one lasts :data:`CALIBRATION_PROBE` of
    the target; its rate then sets the count (plus :data:`CALIBRATION_MARGIN`).
    The probes aim at half a round: :func:`warm_up` runs the first whole round
    at this count and lengthens it if it comes out short. Raises TransferError
    when no probe gets long enough (rounds that do not grow with the count).
    """
    n = last = start
    seconds = 0.0
    for _ in range(CALIBRATION_STEPS):
        last, seconds = n, max(run(n), 1e-6)
        if seconds >= CALIBRATION_PROBE * target:
            return max(1, math.ceil(n * CALIBRATION_MARGIN * target / seconds))
        # aim the next probe at twice the threshold: clear of it, still short of a round
        n = math.ceil(n * min(64.0, 2 * CALIBRATION_PROBE * target / seconds))
    raise TransferError(
        f"calibration: {CALIBRATION_STEPS} probe rounds, the last {last} messages per "
        f"connection in {seconds * 1e3:.3g} ms, never reached "
        f"{CALIBRATION_PROBE * target * 1e3:.3g} ms: rounds do not get longer with more "
        "messages (does the send function send them?)"
    )


def lengthen(count: int, seconds: float, target: float) -> int:
    """The count for a round of ``count`` messages that lasted ``seconds``: longer if short.

    Never shorter: one disturbed, slow round must not cut every round after it.
    At most 64x, as a calibration step.
    """
    if seconds >= target:
        return count
    return math.ceil(count * min(64.0, CALIBRATION_MARGIN * target / max(seconds, 1e-6)))


def warm_up(
    run: Callable[[int, bool], float],
    count: int,
    control_count: int | None,
    rounds: int,
    target: float,
) -> tuple[int, int | None]:
    """Warm-up rounds at the calibrated counts; each lengthens a count that came out short.

    ``run(n, control)`` runs a round and returns its seconds. At least one
    round runs even for ``rounds=0``: the probes stop short of a whole round,
    so the first whole round belongs to the calibration. A short probe
    underrates the rate where a round has a fixed cost (threads to wake, acks,
    the end-of-round push). The control count (None: no control) never drops
    below the mode's.
    """
    for _ in range(max(1, rounds)):
        count = lengthen(count, run(count, False), target)
        if control_count is not None:
            control_count = max(count, lengthen(control_count, run(control_count, True), target))
    return count, control_count


def _zerocopy_totals(
    before: list[dict[str, int] | None], after: list[dict[str, int] | None]
) -> dict[str, int] | None:
    if not after or after[0] is None:
        return None
    totals: dict[str, int] = {}
    for b, a in zip(before, after, strict=True):
        assert a is not None
        for key, value in a.items():
            totals[key] = totals.get(key, 0) + value - (b or {}).get(key, 0)
    return totals


def total_steal_ms(rounds: Sequence[RoundResult]) -> float | None:
    """Hypervisor steal over the measured rounds (ms); None unless known for every round."""
    values = [r.steal_ms for r in rounds]
    if not values or any(v is None for v in values):
        return None
    return math.fsum(v for v in values if v is not None)


def summarize(
    *,
    mode: str,
    size: int,
    threads: int,
    count: int,
    rounds: list[RoundResult],
    settings: Settings,
    placement: Placement,
    recv_buffer: int,
    zerocopy: dict[str, int] | None,
) -> dict[str, Any]:
    """The netcopy ``extra_info`` of one benchmark (schema in docs/results-schema.md)."""
    bytes_per_round = count * threads * size
    messages = count * threads
    seconds = [r.seconds for r in rounds]
    median = statistics.median(seconds)
    gbps = bytes_per_round * 8 / median / 1e9
    info: dict[str, Any] = {
        "netcopy_schema": SCHEMA_VERSION,
        "mode": mode,
        "size": size,
        "threads": threads,
        "messages_per_round": messages,
        "messages_per_connection": count,
        "bytes_per_round": bytes_per_round,
        "throughput_gbps": gbps,
        "throughput_gbps_per_connection": gbps / threads,
        "messages_per_second": messages / median,
        "ns_per_message": median / messages * 1e9,
        "rounds": {
            "seconds": seconds,
            "throughput_gbps": [bytes_per_round * 8 / s / 1e9 for s in seconds],
            "steal_ms": [r.steal_ms for r in rounds],
        },
        "integrity": {
            "ok": True,
            "verified_bytes": sum(r.verified_bytes for r in rounds),
        },
        "steal_ms": total_steal_ms(rounds),
        "placement": placement.as_dict(),
        "sink_recv_buffer": recv_buffer,
        "tcp_nodelay": settings.nodelay,
        "round_target_seconds": settings.round_time,
    }
    if zerocopy is not None:
        info["zerocopy"] = zerocopy
    return info


def control_figures(
    rounds: list[RoundResult],
    cpu: list[float | None] | None,
    control_rounds: list[RoundResult],
    control_cpu: list[float | None] | None,
) -> dict[str, Any]:
    """The control part of extra_info: the control's own figures and the ratios to it.

    The control runs one round before every measured round and one after the
    last (``len(rounds) + 1`` control rounds), so measured round i sits
    between control rounds i and i+1. It is divided by the median of the
    control rounds nearest to it, up to two on each side (i-1 .. i+2): they saw
    the machine in the same state, a steady drift cancels, and one disturbed
    control round does not skew the ratios of its neighbours. The headline
    ratios are the medians of the per-round ratios.
    """
    if len(control_rounds) != len(rounds) + 1:
        raise ValueError(
            f"{len(control_rounds)} control rounds for {len(rounds)} rounds: "
            "expected one before each and one after the last"
        )

    def gbps(r: RoundResult) -> float:
        return r.bytes * 8 / r.seconds / 1e9

    def ratios(own: Sequence[float | None], ref: Sequence[float | None]) -> list[float | None]:
        """Round i over the median of the control rounds i-1 .. i+2 that have a value."""
        out: list[float | None] = []
        for i, value in enumerate(own):
            known = [v for v in ref[max(0, i - 1) : i + 3] if v is not None]
            near = statistics.median(known) if known else None
            out.append(None if value is None or not near else value / near)
        return out

    control_gbps = [gbps(r) for r in control_rounds]
    tp_ratio = ratios([gbps(r) for r in rounds], control_gbps)
    cpu_ratio = ratios(cpu, control_cpu) if cpu is not None and control_cpu is not None else None

    def med(values: list[float | None] | None) -> float | None:
        known = [v for v in values or [] if v is not None]
        return statistics.median(known) if known else None

    control: dict[str, Any] = {
        "mode": BareSend.name,
        "messages_per_round": control_rounds[0].messages,
        "throughput_gbps": statistics.median(control_gbps),
        "cpu_ns_per_byte": med(control_cpu),
        "verified_bytes": sum(r.verified_bytes for r in control_rounds),
        "rounds": {"throughput_gbps": control_gbps, "cpu_ns_per_byte": control_cpu},
    }
    return {
        "control": control,
        "throughput_vs_control": med(tp_ratio),
        "cpu_vs_control": med(cpu_ratio),
        "rounds": {"throughput_vs_control": tp_ratio, "cpu_vs_control": cpu_ratio},
    }


def counter_figures(
    state: dict[str, Any], rounds: list[RoundResult], bytes_per_round: int
) -> dict[str, Any]:
    """The counters part of extra_info (docs/results-schema.md)."""
    per_round = state["counters"].per_round
    counters = combine(per_round)
    sink = sink_counters(rounds)
    syscalls, sink_syscalls = state.get("syscalls", (None, None))
    figures: dict[str, Any] = {
        "counters": counters,
        "sink_counters": sink,
        **derived(counters, sink, bytes_per_round * len(rounds)),
        "syscalls_per_message": syscalls,
        "sink_syscalls_per_message": sink_syscalls,
    }
    figures["rounds_cpu_ns_per_byte"] = (
        per_round_cpu_ns_per_byte(per_round, bytes_per_round) if per_round else None
    )
    return figures


class Netcopy:
    """The ``netcopy`` fixture: runs one benchmark of a send mode through pytest-benchmark."""

    def __init__(
        self,
        session: NetcopySession,
        benchmark: Any,
        defaults: dict[str, Any],
    ) -> None:
        self._session = session
        self._benchmark = benchmark
        self._defaults = defaults
        self.result: RunResult | None = None

    def _mode(self, mode: Mode | str | SendOne | None) -> Mode:
        mode = mode if mode is not None else self._defaults.get("mode")
        if mode is None:
            raise TypeError("netcopy.run() needs a mode (a name, a Mode, or a send function)")
        if isinstance(mode, Mode):
            return mode
        if isinstance(mode, str):
            return self._session.registry.get(mode)
        return ModeRegistry().add(mode)

    def run(
        self,
        mode: Mode | str | Callable[..., object] | None = None,
        *,
        size: int | None = None,
        threads: int | None = None,
    ) -> RunResult:
        """Benchmark ``mode`` at ``size`` bytes per message with ``threads`` connections.

        Without arguments, the parametrized ``netcopy_mode``/``netcopy_size``/
        ``netcopy_threads`` of the test are used. A corrupted payload or a
        failed transfer fails the test; a mode this machine cannot do skips it.
        """
        mode_obj = self._mode(mode)
        size = int(size if size is not None else self._defaults.get("size", 4096))
        threads = int(threads if threads is not None else self._defaults.get("threads", 1))
        check_size(size)
        if threads < 1:
            raise ValueError(f"threads={threads}: expected at least 1")
        settings = self._session.settings
        placement = self._session.placement
        sink = self._session.get_sink()
        bench = self._benchmark
        bench.group = f"{size}B-{threads}t"
        rounds: list[RoundResult] = []
        control_rounds: list[RoundResult] = []
        state: dict[str, Any] = {}
        stack = contextlib.ExitStack()

        def control_round() -> None:
            if "control" in state:
                pool, counters, count = state["pool"], state["control"], state["control_count"]
                control_rounds.append(counters.run(lambda: pool.run_round(count, control=True)))

        def before_round() -> None:
            # pedantic's setup, untimed: the control round before each measured
            # round; the first call also opens the connections, calibrates and
            # warms up (inside pedantic, so pytest-benchmark knows the fixture
            # was used even when this fails)
            if "pool" not in state:
                open_pool()
            control_round()

        def open_pool() -> None:
            with_control = settings.control != "none"
            pool = stack.enter_context(
                SenderPool(
                    sink, mode_obj, size, threads,
                    timeout=settings.timeout, nodelay=settings.nodelay,
                    congestion=settings.congestion,
                    cpus=placement.sender_cpus if placement.pinned else (),
                    control=BareSend() if with_control else None,
                )
            )  # fmt: skip
            state["counters"] = stack.enter_context(RoundCounters(pool, settings.counters))
            if with_control:
                # its own task-clock events on the same threads, on in control rounds only
                events = [e for e in settings.counters if e == "task-clock"]
                state["control"] = stack.enter_context(RoundCounters(pool, events))
            state["count"] = count = calibrate(pool, settings.round_time, size)
            if with_control:
                # calibrated on its own, so a control round lasts about as long as the
                # mode's however much faster it is; never fewer messages than the mode
                # sends (one preempted calibration round must not leave it a few messages)
                own = calibrate(pool, settings.round_time, size, control=True)
                state["control_count"] = max(own, count)
            state["count"], control_count = warm_up(
                lambda n, control: pool.run_round(n, control=control).seconds,
                count,
                state.get("control_count"),
                settings.warmup_rounds,
                settings.round_time,
            )
            if control_count is not None:
                state["control_count"] = control_count
            state["before"] = [s.stats() for s in pool.senders]
            state["pool"] = pool

        def one_round() -> None:
            pool, count = state["pool"], state["count"]
            rounds.append(state["counters"].run(lambda: pool.run_round(count)))

        skip_reason: str | None = None
        failure: str | None = None
        try:
            with stack:
                bench.pedantic(
                    one_round,
                    setup=before_round,
                    rounds=settings.rounds,
                    iterations=1,
                    warmup_rounds=0,
                )
                state["after"] = [s.stats() for s in state["pool"].senders]
                control_round()  # and one after the last measured round
                if settings.counters:
                    state["syscalls"] = syscall_pass(state["pool"], state["count"])
                if settings.user_rounds:
                    state["user"] = user_pass(state["pool"], state["count"], settings.user_rounds)
                state["pool"].finish_stream()
        except ModeUnsupported as exc:
            skip_reason = str(exc)
        except IntegrityError as exc:
            bench.extra_info.update(
                {"netcopy_schema": SCHEMA_VERSION, "mode": mode_obj.name, "size": size,
                 "threads": threads, "integrity": {"ok": False, "error": str(exc)}}
            )  # fmt: skip
            failure = str(exc)
        except TransferError as exc:
            failure = f"netcopy {mode_obj.name} {size} B x {threads}: {exc}"
        # outside the except blocks, so the report shows no exception chain
        if skip_reason is not None:
            pytest.skip(skip_reason)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        count = state["count"]
        before, after = state["before"], state["after"]
        info = summarize(
            mode=mode_obj.name,
            size=size,
            threads=threads,
            count=count,
            rounds=rounds,
            settings=settings,
            placement=placement,
            recv_buffer=sink.recv_buffer,
            zerocopy=_zerocopy_totals(before, after),
        )
        info["tcp_congestion"] = state["pool"].congestion_used
        figures = counter_figures(state, rounds, info["bytes_per_round"])
        per_round = figures.pop("rounds_cpu_ns_per_byte")
        if per_round is not None:
            info["rounds"]["cpu_ns_per_byte"] = per_round
        info.update(figures)
        if "control" in state:
            control_per_round = state["control"].per_round
            control_cpu = (
                per_round_cpu_ns_per_byte(control_per_round, control_rounds[0].bytes)
                if control_per_round
                else None
            )
            extra = control_figures(rounds, per_round, control_rounds, control_cpu)
            info["rounds"].update(extra.pop("rounds"))
            info.update(extra)
        if "user" in state:
            info.update(state["user"])
        hint = state["counters"].fallback_hint()
        if hint:
            self._session.hints.add(hint)
        bench.extra_info.update(info)
        self._session.results.append(info)
        self.result = RunResult(info)
        return self.result
