"""The ``netcopy`` fixture: one benchmark through pytest-benchmark, and the session it runs in.

The steps of a benchmark are :class:`pytest_netcopy.bench.run.BenchmarkRun`'s;
this module resolves what to run, hands the rounds to pytest-benchmark and
turns the netcopy errors into a skip or a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_netcopy.bench.rr import RrRun
from pytest_netcopy.bench.run import BenchmarkRun, Decide
from pytest_netcopy.bench.settings import Settings
from pytest_netcopy.instruments.link import route_facts
from pytest_netcopy.results.schema import group_id
from pytest_netcopy.send.modes import Mode, ModeRegistry, ModeUnsupported, SendOne
from pytest_netcopy.sink.wire import check_datagram_size, check_size
from pytest_netcopy.transport.blackhole import Blackhole, ProbeResult
from pytest_netcopy.transport.errors import IntegrityError, TransferError
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pipe import PipePeer
from pytest_netcopy.transport.placement import Placement


@dataclass
class NetcopySession:
    """Run state of one pytest session (kept in ``config.stash``)."""

    settings: Settings
    registry: ModeRegistry
    placement: Placement
    sink: SinkProcess | None = None
    #: the last peer started (its facts outlive close)
    peer_used: SinkProcess | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    hints: set[str] = field(default_factory=set)
    #: how a failed transfer reads to the user: the plugin names its options here
    explain: Callable[[TransferError], str] = str
    #: the gate's decision whether a benchmark needs more rounds (None: no gate, none run)
    decide_rounds: Decide | None = None
    #: the transmit-only topology (target blackhole), built on first use, and its probe
    blackhole: Blackhole | None = None
    probe: ProbeResult | None = None

    def get_blackhole(self) -> Blackhole:
        """The session's blackhole topology: built (and probed) once, torn down by close."""
        if self.blackhole is None:
            hole = Blackhole(timeout=self.settings.timeout).open()
            self.blackhole = hole  # close() tears it down, even when the probe fails
            self.probe = hole.probe()
        return self.blackhole

    def get_sink(self) -> SinkProcess:
        if self.sink is None:
            self.sink = self.peer_used = self._new_peer()
        self.sink.ensure_running()
        return self.sink

    def _new_peer(self) -> SinkProcess:
        """The peer the settings ask for: a pipe peer with ``peer`` set, else a local sink."""
        s = self.settings
        if s.peer:
            return PipePeer(
                command=s.peer, python=s.peer_python, address=s.peer_address,
                cpus=s.peer_cpus, timeout=s.timeout, recv_buffer=s.recv_buffer,
            )  # fmt: skip
        return SinkProcess(
            timeout=s.timeout,
            recv_buffer=s.recv_buffer,
            cpus=self.placement.sink_cpus if self.placement.pinned else (),
        )

    def peer_facts(self, placement: dict[str, object]) -> dict[str, Any]:
        """``machine_info["netcopy"]`` ``peer`` (None: a local sink) and ``link`` for both ends;
        the peer's CPUs go into ``placement``."""
        sink = self.peer_used
        address = sink.host if sink is not None else "127.0.0.1"
        near = route_facts(address)
        if not isinstance(sink, PipePeer):
            return {"peer": None, "link": {"sender": near, "peer": near}}
        placement["peer_cpus"] = sink.peer_cpus
        return {"peer": sink.peer_info(), "link": {"sender": near, "peer": sink.link}}

    def target_facts(self) -> dict[str, Any]:
        """``machine_info["netcopy"]["target"]``: the target, and for the blackhole how it was
        built and what its zero-copy probe saw (``copies``: the kernel's honest line)."""
        facts: dict[str, Any] = {"name": self.settings.target}
        if self.blackhole is not None:
            facts["topology"] = self.blackhole.facts()
        if self.probe is not None:
            facts["probe"] = self.probe.as_dict()
            facts["copies"] = self.probe.reason
        return facts

    def refused_strangers(self) -> int:
        """Connections the session's sinks refused without the token (asks a running sink)."""
        if self.sink is None:
            return 0
        self.sink.ping(min(self.settings.timeout, 5.0))
        return self.sink.refused

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        if self.blackhole is not None:
            self.blackhole.close()
            self.blackhole = None


@dataclass
class RunResult:
    """What ``netcopy.run`` returns: the figures also stored in ``extra_info``."""

    extra_info: dict[str, Any]

    @property
    def intact(self) -> bool:
        """No corrupted byte: the sink verified every byte (a corrupted one fails the run
        before this), or, transmit only, nothing received anything to corrupt (see
        :attr:`transmit_only`: no verdict, nothing verified)."""
        return self.extra_info["integrity"]["ok"] is not False

    @property
    def transmit_only(self) -> bool:
        """The blackhole target's result: nothing received, the payload was not verified."""
        return self.extra_info.get("target") == "blackhole"

    @property
    def throughput_gbps(self) -> float:
        return float(self.extra_info["throughput_gbps"])

    def __getitem__(self, key: str) -> Any:
        return self.extra_info[key]


def per_message_stats(benchmark: Any, messages_per_round: int) -> None:
    """Make pytest-benchmark's stats of the rounds time per message: iterations = messages.

    Every mode's rounds are calibrated to the same length, so a slow mode's round
    holds fewer messages: ranked by round time (its table, ``--benchmark-sort``,
    ``--benchmark-compare-fail``) it could come out fastest. pytest-benchmark's
    own model is a round of ``iterations`` calls whose stats are per call; here
    a call is one message. Only a benchmark that succeeded is converted (its
    ``extra_info`` has the ``messages_per_round`` the stats are divided by).
    """
    meta = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if meta is None or messages_per_round < 1:
        return
    per_message = type(meta.stats)()
    for seconds in meta.stats.data:
        per_message.update(seconds / messages_per_round)
    meta.stats = per_message
    meta.iterations = messages_per_round


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
        #: the pattern and rate of the benchmark being run (set by :meth:`run`)
        self._point: tuple[str, float | None] = ("stream", None)

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
        pattern: str | None = None,
        rate: float | None = None,
    ) -> RunResult:
        """Benchmark ``mode`` at ``size`` bytes per message with ``threads`` connections.

        Without arguments, the parametrized ``netcopy_mode``/``netcopy_size``/
        ``netcopy_threads`` (and ``netcopy_pattern``/``netcopy_rr_rate``) of the test
        are used. ``pattern="rr"``: request/response, closed loop or at ``rate``
        transactions/s per connection (docs/latency.md). A corrupted payload or a
        failed transfer fails the test; a mode this machine cannot do skips it.
        """
        self._point = self._pattern_and_rate(pattern, rate)
        run = self._new_run(mode, size, threads)
        skip_reason, failure = self._measure(run)
        # outside the except blocks, so the report shows no exception chain
        if skip_reason is not None:
            pytest.skip(skip_reason)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        info = run.record().to_extra_info()
        per_message_stats(self._benchmark, int(info["messages_per_round"]))
        hint = run.fallback_hint()
        if hint:
            self._session.hints.add(hint)
        self._benchmark.extra_info.update(info)
        self._session.results.append(info)
        self.result = RunResult(info)
        return self.result

    def _new_run(
        self, mode: Mode | str | SendOne | None, size: int | None, threads: int | None
    ) -> BenchmarkRun:
        mode_obj = self._mode(mode)
        size = int(size if size is not None else self._defaults.get("size", 4096))
        threads = int(threads if threads is not None else self._defaults.get("threads", 1))
        check_size(size)
        if mode_obj.transport == "udp":
            check_datagram_size(size)
        if threads < 1:
            raise ValueError(f"threads={threads}: expected at least 1")
        session = self._session
        pattern, rate = self._point
        self._benchmark.group = group_id(size, threads, pattern=pattern, rate=rate)
        if pattern == "rr":
            hole = session.settings.target == "blackhole"  # no sink there: RrRun skips
            sink = None if hole else session.get_sink()
            s, place = session.settings, session.placement
            return RrRun(s, place, sink, mode_obj, size, threads, rate=rate)
        if session.settings.target == "blackhole":  # transmit only: no sink (issue 15)
            target = session.get_blackhole().target
            return BenchmarkRun(
                session.settings, session.placement, None, mode_obj, size, threads,
                transmit_only=target,
            )  # fmt: skip
        sink = session.get_sink()
        return BenchmarkRun(session.settings, session.placement, sink, mode_obj, size, threads)

    def _pattern_and_rate(
        self, pattern: str | None, rate: float | None
    ) -> tuple[str, float | None]:
        """The benchmark's pattern and rate: the arguments, else the test's parameters."""
        pattern = pattern if pattern is not None else self._defaults.get("pattern", "stream")
        rate = rate if rate is not None else self._defaults.get("rate")
        if pattern not in ("stream", "rr"):
            raise ValueError(f"pattern={pattern!r}: expected 'stream' or 'rr'")
        if rate is not None and (pattern != "rr" or not rate > 0):
            raise ValueError(f"rate={rate!r}: expected a rate above 0, with pattern='rr'")
        return str(pattern), None if rate is None else float(rate)

    def _measure(self, run: BenchmarkRun) -> tuple[str | None, str | None]:
        """Run the rounds through pytest-benchmark: (why to skip, why it failed), or Nones."""
        try:
            with run:
                self._benchmark.pedantic(
                    run.measured_round,
                    setup=run.before_round,
                    rounds=run.settings.rounds,
                    iterations=1,
                    warmup_rounds=0,
                )
                run.more_rounds(self._session.decide_rounds)
                run.passes()
        except ModeUnsupported as exc:
            return str(exc), None
        except IntegrityError as exc:
            self._benchmark.extra_info.update(run.integrity_failure(str(exc)).to_extra_info())
            return None, str(exc)
        except TransferError as exc:
            explained = self._session.explain(exc)
            wait = min(run.settings.timeout, 5.0)
            stuck = run.sink.replace_if_stuck(wait) if run.sink is not None else None
            if stuck is not None:
                explained = f"{stuck}\n{explained}"
            return None, f"netcopy {run.mode.name} {run.size} B x {run.threads}: {explained}"
        return None, None
