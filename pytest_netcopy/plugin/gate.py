"""The regression gate inside a pytest session (--netcopy-baseline, --netcopy-gate).

The comparison itself is :func:`pytest_netcopy.gate.compare.compare_runs`, the same
as ``netcopy compare``; this module only wires it into pytest:

* options, checked at configure time (:mod:`pytest_netcopy.plugin.gatesettings`);
* ``@pytest.mark.netcopy(gate="RULES")``: rules for one test's benchmarks,
  checked at collection;
* the current run is built in memory from the session's results, each kept
  with the nodeid of its test (no ``--benchmark-json`` needed), compared at
  ``pytest_sessionfinish``, shown at the end of the terminal summary, and a
  failed gate turns an OK exit status into TESTS_FAILED (no traceback); the
  gate's verdict is the last line of the output, after pytest's own "N passed"
  line.

docs/gate.md describes the rules and the statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_netcopy.gate.catalog import check_rules
from pytest_netcopy.gate.compare import MachineMismatch, compare_runs, judge_benchmark, rules_for
from pytest_netcopy.gate.metrics import control_metrics, has_control
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.patterns import find_match
from pytest_netcopy.gate.policy import ABSOLUTE_RULES_EXAMPLE
from pytest_netcopy.gate.rules import Rule, format_rules, parse_rules
from pytest_netcopy.gate.sequential import next_rounds
from pytest_netcopy.plugin.gatesettings import (
    ALLOW_EMPTY,
    BASELINE,
    GATE,
    STRICT_MACHINE,
    TWO_SIDED,
    GateSettings,
    resolve_gate,
)
from pytest_netcopy.plugin.parsers import parse_gate
from pytest_netcopy.plugin.state import PluginState
from pytest_netcopy.results.runs import Result, Run
from pytest_netcopy.results.schema import group_id

__all__ = [
    "BASELINE",
    "GATE",
    "STRICT_MACHINE",
    "TWO_SIDED",
    "GatePlugin",
    "GateSettings",
    "check_control",
    "marker_rules",
    "parse_gate",
    "resolve_gate",
]

BenchmarkKey = tuple[str, int, int]


def check_control(settings: GateSettings, control: str, control_source: str) -> None:
    """A gate whose rules need the control send must have it on both sides (UsageError)."""
    if not settings.enabled:
        return
    needs = control_metrics(settings.rules)
    if not needs:
        return
    absolute = f"--netcopy-gate='{ABSOLUTE_RULES_EXAMPLE}'"
    if control == "none":
        raise pytest.UsageError(
            f"{control_source}='none': the gate rules ({settings.rules_source}) compare "
            f"{', '.join(needs)}, which only a run with the control send has; leave the "
            f"control on (bare_send), gate on absolute figures, e.g. {absolute}, or turn "
            "the gate off for this run (--netcopy-gate=off)"
        )
    baseline = settings.baseline
    if baseline is not None and not has_control(baseline):
        raise pytest.UsageError(
            f"the baseline {settings.baseline_path} has no control figures (made with "
            f"--netcopy-control=none or by an older pytest-netcopy), so the gate rules "
            f"({settings.rules_source}) on {', '.join(needs)} cannot compare anything: save a "
            f"new baseline (--benchmark-save=NAME), or gate on absolute figures, e.g. {absolute}"
        )


def marker_rules(item: pytest.Item, modes: Sequence[str] | None = None) -> tuple[Rule, ...] | None:
    """The rules of ``@pytest.mark.netcopy(gate=...)`` on an item; UsageError when bad
    (an unknown metric, or a mode not in ``modes``, too)."""
    marker = item.get_closest_marker("netcopy")
    if marker is None or marker.kwargs.get("gate") is None:
        return None
    raw = marker.kwargs["gate"]
    where = f"@pytest.mark.netcopy(gate={raw!r}) on {item.nodeid}"
    if not isinstance(raw, str):
        raise pytest.UsageError(
            f"{where}: expected a string of rules such as 'throughput_gbps:-25%'"
        )
    try:
        rules = parse_rules(raw)
        check_rules(rules, modes)
    except ValueError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None
    if not rules:
        raise pytest.UsageError(
            f"{where}: no rule given; expected e.g. gate='throughput_gbps:-25%'"
        )
    return tuple(rules)


class GatePlugin:
    """Registered by hooks.py in pytest_configure; compares the run with a baseline."""

    def __init__(self, config: pytest.Config, state: PluginState) -> None:
        self.config = config
        self.state = state
        # xdist workers: the controller checked the options and does the comparing
        worker = hasattr(config, "workerinput")
        self.modes = state.session.registry.names()
        self.settings = GateSettings() if worker else resolve_gate(config, self.modes)
        check_control(self.settings, state.session.settings.control, state.describe("control"))
        #: nodeid -> the rules of the test's marker
        self._item_rules: dict[str, tuple[Rule, ...]] = {}
        self.outcome: GateOutcome | None = None
        self.error: str | None = None
        self._shown = False
        #: the test running now (its marker's rules judge its looks)
        self._nodeid = ""

    # -- before the run

    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        s = self.settings
        if not s.active:
            return None
        what = "on" if s.enabled else "off (report only)"
        extra = ", two-sided" if s.two_sided else ""
        extra += ", strict machine" if s.strict_machine else ""
        extra += ", strict (undecided fails)" if s.strict else ""
        lines = [
            f"netcopy gate: {what}{extra}; baseline {s.baseline_path}; "
            f"rules {format_rules(s.rules)} ({s.rules_source})"
        ]
        if self.rounds_callback() is not None:
            lines.append(
                f"netcopy gate: a benchmark still undecided after its rounds measures more, up "
                f"to {s.budget.max_rounds} rounds / {s.budget.max_seconds:g} s"
            )
        return lines

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            rules = marker_rules(item, self.modes)
            if rules is not None:
                self._item_rules[item.nodeid] = rules

    # -- while a benchmark runs: more rounds when undecided

    def rounds_callback(self) -> Callable[[dict[str, Any], float], tuple[int, str, int]] | None:
        """What the bench asks after a benchmark's rounds (NetcopySession.decide_rounds);
        None without a gate on, a baseline, or a budget beyond --netcopy-rounds."""
        s = self.settings
        if not s.enabled or s.baseline is None:
            return None
        if s.budget.max_rounds <= self.state.session.settings.rounds:
            return None
        return self.decide_rounds

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._nodeid = item.nodeid

    def decide_rounds(self, info: dict[str, Any], elapsed: float) -> tuple[int, str, int]:
        """One look at a benchmark's figures so far: how many more rounds, and why."""
        s = self.settings
        top = s.budget.max_rounds
        record = info.get("gate_rounds")
        if not isinstance(record, dict) or s.baseline is None:
            return 0, "no look", top
        record["max_rounds"] = top  # the look's level comes from the budget
        current = Result(name=self._nodeid, group=None, extra=info, stats={})
        old = find_match(s.baseline, current)  # issue 16: a stream never stands in for an RR
        if old is None:
            return 0, "not in the baseline", top
        marker = self._item_rules.get(self._nodeid)
        rules = rules_for(current.key, s.rules, {current.key: marker} if marker else None)
        rows = judge_benchmark(old, current, rules, speed_tolerance=s.speed_tolerance)
        rounds = info.get("rounds") or {}
        growing = [name for name, values in rounds.items() if values]
        measured = len(rounds.get("seconds") or [])
        add, why = next_rounds(rows, growing, measured, record["looks"][0], elapsed, s.budget)
        return add, why, top

    # -- after the run

    @property
    def overrides(self) -> dict[BenchmarkKey | str, tuple[Rule, ...]]:
        """Benchmark key -> the marker's rules of the test that ran it."""
        found: dict[BenchmarkKey | str, tuple[Rule, ...]] = {}
        for recorded in self.state.recorded:
            rules = self._item_rules.get(recorded.nodeid)
            if rules is not None:
                info = recorded.info
                found[(str(info["mode"]), int(info["size"]), int(info["threads"]))] = rules
        return found

    def current_run(self) -> Run:
        """This session's netcopy results as a Run, like a saved one."""
        results = [
            Result(
                name=recorded.name,
                group=group_id(recorded.info["size"], recorded.info["threads"]),
                extra=recorded.info,
                stats={},
            )
            for recorded in self.state.recorded
        ]
        return Run(
            path=Path("this session"),
            machine_info={"netcopy": dict(self.settings.machine)},
            commit_info={},
            datetime=None,
            results=results,
        )

    def compare(self) -> GateOutcome | None:
        s = self.settings
        if s.baseline is None or not self.state.recorded:
            return None
        try:
            outcome = compare_runs(
                s.baseline,
                self.current_run(),
                s.rules,
                two_sided=s.two_sided,
                strict_machine=s.strict_machine,
                overrides=self.overrides,
                speed_tolerance=s.speed_tolerance,
                strict=s.strict,
            )
        except MachineMismatch as exc:  # checked at configure time; kept for safety
            self.error = f"netcopy gate: {exc}"
            return None
        if not s.enabled:
            outcome.notes.append(
                f"report only: {GATE.cli} is off, so this comparison does not change the "
                "exit status"
            )
        return outcome

    @property
    def empty(self) -> bool:
        """Nothing was judged: no netcopy benchmark ran, or the comparison judged no row."""
        return self.error is None and (self.outcome is None or self.outcome.empty)

    @property
    def failed(self) -> bool:
        if not self.settings.enabled:
            return False
        if self.empty:
            return not self.settings.allow_empty
        return self.error is not None or (self.outcome is not None and self.outcome.failed)

    def last_line(self) -> str:
        if self.error is not None:
            return self.error
        if self.outcome is None:
            line = "netcopy gate: no netcopy benchmark ran in this session, nothing judged"
        else:
            line = self.outcome.summary()
        if not self.settings.enabled:
            return line if self.outcome is None else f"{line} (report only)"
        if not self.empty:
            return line
        if self.settings.allow_empty:
            return f"{line} (allowed by {self.settings.allow_empty_source})"
        return f"{line}; a gate that judged nothing fails ({ALLOW_EMPTY.cli} accepts it)"

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, Any, None]:
        # tryfirst wrapper: outside the terminal reporter's, so the comparison
        # is ready for the terminal summary, and the verdict can be written
        # after pytest's own "N passed" line.
        if self.settings.active and not self.config.option.collectonly:
            self.outcome = self.compare()
            if self.failed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        yield
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if self._shown and tr is not None:
            tr.write_line(self.last_line(), bold=True, **self._colour())

    def _colour(self) -> dict[str, bool]:
        if self.failed:
            return {"red": True}
        if self.settings.enabled:
            return {"green": True}
        return {"yellow": True}

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        s = self.settings
        if not s.active or self.config.option.collectonly:
            return
        tr = terminalreporter
        title = "netcopy gate" if s.enabled else "netcopy comparison (report only)"
        tr.write_sep("-", f"{title}: this session vs baseline {s.baseline_path}")
        if self.outcome is not None:
            body = self.outcome.render().rpartition("\n")[0]
            if body:
                tr.write_line(body)
        self._shown = True  # the verdict line follows at the very end
