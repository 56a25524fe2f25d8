"""One benchmark run, step by step: open, calibrate, control and measured rounds, passes, record.

pytest-benchmark times :meth:`BenchmarkRun.measured_round`; everything else
runs untimed around it (:meth:`BenchmarkRun.before_round` is its setup).
This module and :mod:`.passes` / :mod:`.calibration` are the only code that
runs rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any, Self

from pytest_netcopy.bench.calibration import calibrate, warm_up
from pytest_netcopy.bench.figures import (
    ZerocopyStats,
    compare_to_control,
    throughput,
    zerocopy_totals,
)
from pytest_netcopy.bench.measure import (
    RoundCounters,
    SyscallFigures,
    counter_figures,
    per_round_cpu_ns_per_byte,
)
from pytest_netcopy.bench.passes import (
    InstructionCounter,
    pmu_instruction_pass,
    shared_counter,
    syscall_pass,
    user_pass,
)
from pytest_netcopy.bench.settings import Settings
from pytest_netcopy.bench.tcpfigures import tcp_info_figures
from pytest_netcopy.bench.udprate import choose_rate, udp_figures
from pytest_netcopy.results.record import (
    BenchmarkRecord,
    ControlFigures,
    GateRounds,
    IntegrityFailure,
    Setup,
    UserInstructionFigures,
    UserTimeFigures,
)
from pytest_netcopy.results.udp import UdpFigures
from pytest_netcopy.send.builtin import BareSend
from pytest_netcopy.send.modes import Mode
from pytest_netcopy.send.udp import UdpBareSend
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.placement import Placement
from pytest_netcopy.transport.pool import RoundResult, SenderPool
from pytest_netcopy.transport.udp import DatagramPool

#: the gate's decision after a look (set by the plugin on the session): given the
#: benchmark's figures so far and the seconds its extra rounds took, (rounds to add,
#: why, the most rounds it may end with); 0 rounds: stop
Decide = Callable[[dict[str, Any], float], tuple[int, str, int]]


@dataclass
class Connections:
    """A run's open connections, the counters on their threads and the calibrated counts."""

    pool: SenderPool
    counters: RoundCounters
    #: the control's own counters; None: the run has no control rounds
    control: RoundCounters | None
    #: messages per connection in a measured round, and in a control round
    count: int = 0
    control_count: int = 0


@dataclass
class BenchmarkRun:
    """One benchmark of ``mode`` at ``size`` bytes per message over ``threads`` connections.

    Used as a context manager: leaving it closes the connections and counters.
    """

    settings: Settings
    placement: Placement
    #: None: transmit only (``transmit_only`` says where to)
    sink: SinkProcess | None
    mode: Mode
    size: int
    threads: int
    #: None until the first :meth:`before_round` opens them
    connections: Connections | None = None
    rounds: list[RoundResult] = field(default_factory=list)
    control_rounds: list[RoundResult] = field(default_factory=list)
    #: the zero-copy senders' stats around the measured rounds
    zerocopy_before: list[ZerocopyStats] = field(default_factory=list)
    zerocopy_after: list[ZerocopyStats] = field(default_factory=list)
    syscalls: SyscallFigures | None = None
    user: UserTimeFigures | None = None
    instructions: UserInstructionFigures | None = None
    #: counts instructions without a PMU; None: the process's shared one
    instruction_counter: InstructionCounter | None = None
    #: the gate's looks and the rounds they added (None: no look)
    gate_rounds: GateRounds | None = None
    #: the blackhole target's (host, port): UDP sent there, nothing receives (issue 15)
    transmit_only: tuple[str, int] | None = None
    #: a UDP benchmark's pace as recorded in ``udp.rate`` (bench/udprate.py)
    udp_rate: dict[str, Any] | None = None
    _stack: ExitStack = field(default_factory=ExitStack, init=False, repr=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # the exception goes on to the pool, which then unblocks its threads at once
        self._stack.__exit__(*exc_info)

    @property
    def opened(self) -> Connections:
        if self.connections is None:
            raise RuntimeError("the benchmark's connections are not open")
        return self.connections

    def open(self) -> Connections:
        """Connect the senders (and the control's) and open the counters on their threads."""
        settings = self.settings
        with_control = settings.control != "none"
        if self.sink is None:  # the blackhole target: transmit only
            pool: SenderPool = self._stack.enter_context(self._transmit_only_pool(with_control))
        elif self.mode.transport == "udp":  # a UDP flow per thread; the control on the same flows
            pool = self._stack.enter_context(
                DatagramPool(
                    self.sink, self.mode, self.size, self.threads, timeout=settings.timeout,
                    cpus=self.placement.sender_cpus if self.placement.pinned else (),
                    control=UdpBareSend() if with_control else None,
                )
            )  # fmt: skip
        else:
            pool = self._stack.enter_context(
                SenderPool(
                    self.sink, self.mode, self.size, self.threads,
                    timeout=settings.timeout, nodelay=settings.nodelay,
                    congestion=settings.congestion,
                    cpus=self.placement.sender_cpus if self.placement.pinned else (),
                    control=BareSend() if with_control else None,
                )
            )  # fmt: skip
        counters = self._stack.enter_context(RoundCounters(pool, settings.counters))
        control = None
        if with_control:
            # its own task-clock events on the same threads, on in control rounds only
            events = [e for e in settings.counters if e == "task-clock"]
            control = self._stack.enter_context(RoundCounters(pool, events))
        return Connections(pool, counters, control)

    def _transmit_only_pool(self, with_control: bool) -> DatagramPool:
        """The UDP senders into the blackhole target: no sink, as fast as they go."""
        return DatagramPool(
            None, self.mode, self.size, self.threads, timeout=self.settings.timeout,
            cpus=self.placement.sender_cpus if self.placement.pinned else (),
            control=UdpBareSend() if with_control else None, transmit_only=self.transmit_only,
        )  # fmt: skip

    def calibrate(self, opened: Connections) -> None:
        """The message counts for rounds of the target length, then the warm-up rounds."""
        pool, target = opened.pool, self.settings.round_time
        if isinstance(pool, DatagramPool):  # the pace first: the counts depend on it
            self.udp_rate = choose_rate(pool, self.settings.udp_rate, target)
        count = calibrate(pool, target, self.size)
        control_count = None
        if opened.control is not None:
            # calibrated on its own, so a control round lasts about as long as the
            # mode's however much faster it is; never fewer messages than the mode
            # sends (one preempted calibration round must not leave it a few messages)
            control_count = max(calibrate(pool, target, self.size, control=True), count)
        opened.count, control_count = warm_up(
            lambda n, control: pool.run_round(n, control=control).seconds,
            count,
            control_count,
            self.settings.warmup_rounds,
            target,
        )
        if control_count is not None:
            opened.control_count = control_count

    def before_round(self) -> None:
        """pytest-benchmark's setup, untimed: the control round before each measured round.

        The first call also opens the connections, calibrates and warms up
        (inside pedantic, so pytest-benchmark knows the fixture was used even
        when this fails).
        """
        if self.connections is None:
            opened = self.open()
            self.calibrate(opened)
            self.zerocopy_before = [s.stats() for s in opened.pool.senders]
            self.connections = opened
        self.control_round()

    def control_round(self) -> None:
        opened = self.opened
        if opened.control is not None:
            pool, count = opened.pool, opened.control_count
            self.control_rounds.append(
                opened.control.run(lambda: pool.run_round(count, control=True))
            )

    def measured_round(self) -> None:
        """The timed round."""
        opened = self.opened
        pool, count = opened.pool, opened.count
        self.rounds.append(opened.counters.run(lambda: pool.run_round(count)))

    def more_rounds(self, decide: Decide | None) -> None:
        """After pytest-benchmark's rounds: while ``decide`` (the gate's, given the figures so
        far and the seconds the extra rounds took) asks for more, measure them, each
        followed by its control round, outside pytest-benchmark (its stats keep the first
        rounds). Without ``decide`` nothing runs."""
        if decide is None:
            return
        first, start = len(self.rounds), time.monotonic()
        self.control_round()  # the one after the last round, so the ratios are complete
        looks: list[int] = []
        while True:
            looks.append(len(self.rounds))
            self.gate_rounds = GateRounds(len(self.rounds) - first, looks, 0, "")
            add, reason, top = decide(self.record().to_extra_info(), time.monotonic() - start)
            self.gate_rounds = GateRounds(len(self.rounds) - first, list(looks), top, reason)
            if add <= 0:
                return
            for _ in range(add):
                self.measured_round()
                self.control_round()

    def passes(self) -> None:
        """After the measured rounds: the last control round, the untimed passes, the end."""
        opened = self.opened
        self.zerocopy_after = [s.stats() for s in opened.pool.senders]
        if opened.control is None or len(self.control_rounds) == len(self.rounds):
            self.control_round()  # and one after the last measured round
        if self.settings.counters:
            self.syscalls = syscall_pass(opened.pool, opened.count)
        if self.settings.user_rounds:
            self.user = user_pass(opened.pool, opened.count, self.settings.user_rounds)
        counting = self.settings.instructions == "on"
        if counting:  # with a PMU: two rounds on these connections
            self.instructions = pmu_instruction_pass(opened.pool, opened.count)
        opened.pool.finish_stream()
        if counting and self.instructions is None:  # without: valgrind, connections ended
            counter = self.instruction_counter or shared_counter(self.settings.timeout)
            self.instructions = counter.count(self.mode, self.size)

    def record(self) -> BenchmarkRecord:
        """What the run measured, as the typed record of :mod:`pytest_netcopy.results.record`."""
        opened = self.opened
        measured = throughput(self.mode.name, self.size, self.threads, opened.count, self.rounds)
        setup = Setup(
            placement=self.placement.as_dict(),
            sink_recv_buffer=self.sink.recv_buffer if self.sink is not None else None,
            tcp_nodelay=self.settings.nodelay,
            round_target_seconds=self.settings.round_time,
            tcp_congestion=opened.pool.congestion_used,
            zerocopy=zerocopy_totals(self.zerocopy_before, self.zerocopy_after),
            peer=self.sink is not None and not self.sink.local_threads,
            target=self.settings.target,
        )
        counters = counter_figures(
            opened.counters.per_round, self.rounds, measured.bytes_per_round, self.syscalls
        )
        if self.sink is None:  # transmit only: no sink, so no sink figures (never a 0)
            per_byte = replace(counters.per_byte, sink_cpu_ns_per_byte=None)
            counters = replace(counters, sink_counters={}, per_byte=per_byte)
        control = self._control_figures(opened, counters.rounds_cpu_ns_per_byte)
        return BenchmarkRecord(
            measured, setup, counters, control, self.user, self.instructions, self.gate_rounds,
            tcp_info=tcp_info_figures(self.threads, self.rounds), transport=self.mode.transport,
            udp=self._udp_figures(opened.pool),
        )  # fmt: skip

    def _udp_figures(self, pool: SenderPool) -> UdpFigures | None:
        if not isinstance(pool, DatagramPool):
            return None
        return udp_figures(self.rounds, self.udp_rate or {}, pool.sink_rcvbufs)

    def _control_figures(
        self, opened: Connections, cpu: list[float | None] | None
    ) -> ControlFigures | None:
        if opened.control is None:
            return None
        per_round = opened.control.per_round
        control_cpu = (
            per_round_cpu_ns_per_byte(per_round, self.control_rounds[0].bytes)
            if per_round
            else None
        )
        return compare_to_control(self.rounds, cpu, self.control_rounds, control_cpu)

    def integrity_failure(self, error: str) -> IntegrityFailure:
        return IntegrityFailure(self.mode.name, self.size, self.threads, error)

    def fallback_hint(self) -> str | None:
        """The counters' hint for the user, when they had to fall back (also once closed)."""
        return self.opened.counters.fallback_hint()
