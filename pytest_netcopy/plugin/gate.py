"""The regression gate inside a pytest session (--netcopy-baseline, --netcopy-gate).

The comparison itself is :func:`pytest_netcopy.gate.core.compare_runs`, the same
as ``netcopy compare``; this module only wires it into pytest:

* options, checked at configure time: a bad rule, a baseline that names no
  file, a broken baseline file, or different machines under
  ``--netcopy-gate-strict-machine`` stop the session before any benchmark
  runs, as a :class:`pytest.UsageError` naming the option, the value and the
  problem;
* ``@pytest.mark.netcopy(gate="RULES")``: rules for one test's benchmarks,
  checked at collection;
* the current run is built in memory from the session's results (no
  ``--benchmark-json`` needed), compared at ``pytest_sessionfinish``, shown
  at the end of the terminal summary, and a failed gate turns an OK exit
  status into TESTS_FAILED (no traceback); the gate's verdict is the last
  line of the output, after pytest's own "N passed" line.

docs/gate.md describes the rules and the statistics.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_netcopy.gate.core import (
    ABSOLUTE_RULES_EXAMPLE,
    DEFAULT_RULES,
    DEFAULT_SPEED_TOLERANCE,
    GateOutcome,
    MachineMismatch,
    Rule,
    compare_runs,
    control_metrics,
    format_rules,
    has_control,
    machine_differences,
    parse_rules,
    parse_speed_tolerance,
)
from pytest_netcopy.instruments.machine import machine_facts
from pytest_netcopy.plugin.options import Spec, add_spec, parse_bool, resolve_spec
from pytest_netcopy.results.baseline import BaselineError, local_machine_id, resolve_baseline
from pytest_netcopy.results.runs import Result, Run, RunFileError, load_run

if TYPE_CHECKING:
    from pytest_netcopy.bench.runner import NetcopySession

__all__ = [
    "BASELINE",
    "GATE",
    "STRICT_MACHINE",
    "TWO_SIDED",
    "GatePlugin",
    "GateSettings",
    "add_options",
    "parse_gate",
    "resolve_gate",
]

BenchmarkKey = tuple[str, int, int]

_ON = ("", "1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def parse_gate(text: str) -> tuple[bool, tuple[Rule, ...] | None]:
    """A value of ``--netcopy-gate`` / ``netcopy_gate`` / ``NETCOPY_GATE``.

    Empty or a true word: on, with the rules of the next source (or the
    defaults); a false word: off; anything else: on, with these rules
    (``(True, rules)``). A bad rule raises ValueError naming it.
    """
    word = text.strip().lower()
    if word in _ON:
        return True, None
    if word in _OFF:
        return False, None
    rules = parse_rules(text)
    return True, (tuple(rules) or None)


def _baseline_value(text: str) -> str:
    return text.strip()


BASELINE = Spec(
    "baseline", _baseline_value, "", "PATH_OR_ID",
    "compare this session's benchmarks with a baseline: a pytest-benchmark JSON file, or a "
    "run saved in --benchmark-storage, selected as --benchmark-compare does ('0001', '*base', "
    "'MACHINE/0001'); the table comes at the end, the exit status changes only with "
    "--netcopy-gate; empty: no comparison",
)  # fmt: skip
GATE = Spec(
    "gate", parse_gate, "", "RULES",
    "fail the session (exit status 1) on a significant regression against --netcopy-baseline. "
    "RULES (optional, METRIC:-N% a drop of more than N percent is bad, METRIC:+N% a rise, "
    "METRIC:+N in the metric's units; spaces or commas between) replace the defaults "
    f"{format_rules(DEFAULT_RULES)!r}; 'off' turns an ini/env gate off",
)  # fmt: skip
TWO_SIDED = Spec(
    "gate_two_sided", parse_bool, "false", "BOOL",
    "with --netcopy-gate, also fail on an improvement beyond the threshold "
    "(the baseline is stale: save a new one)",
    flag=True,
)  # fmt: skip
STRICT_MACHINE = Spec(
    "gate_strict_machine", parse_bool, "false", "BOOL",
    "refuse to compare with a baseline from another machine (kernel release, CPU model or "
    "CPU count differ); without it the differences are printed above the table",
    flag=True,
)  # fmt: skip


SPEED_TOLERANCE = Spec(
    "gate_speed_tolerance", parse_speed_tolerance, f"{DEFAULT_SPEED_TOLERANCE:.0%}", "PCT|off",
    "a benchmark whose control send ran more than PCT faster or slower than in the baseline "
    "was measured with the machine at another speed: its speed-dependent rows are 'not "
    "comparable' instead of judged (user CPU and syscall counts are judged anyway); off: "
    "judge at any speed",
)  # fmt: skip


def add_options(parser: pytest.Parser) -> None:
    """Add the gate's options to the netcopy group."""
    add_spec(parser, BASELINE)
    # --netcopy-gate is a switch that optionally takes rules, which add_spec
    # cannot express: the same dest/ini/env names and help layout, by hand.
    group = parser.getgroup("netcopy", "pytest-netcopy: benchmark Linux send paths")
    group.addoption(
        GATE.cli, action="store", nargs="?", const="", default=None, dest=GATE.ini,
        metavar=GATE.metavar,
        help=GATE.help.replace("%", "%%")
        + f". Put a bare {GATE.cli} after the test paths, or it takes the next one as its "
        f"rules. Default: off (ini: {GATE.ini}, env: {GATE.env}).",
    )  # fmt: skip
    parser.addini(
        GATE.ini,
        help=f"gate rules, or true/false (like {GATE.cli}; applies to runs given a baseline)",
        default=None,
    )
    add_spec(parser, TWO_SIDED)
    add_spec(parser, STRICT_MACHINE)
    add_spec(parser, SPEED_TOLERANCE)


# ---------------------------------------------------------------------------
# Resolving the options


def _sources(config: pytest.Config, spec: Spec) -> list[tuple[str, str, str]]:
    """Every value given for ``spec``, highest precedence first: (raw, phrase, kind).

    The phrases are those of :func:`pytest_netcopy.plugin.options.raw_value`.
    """
    found = []
    value = config.getoption(spec.ini, None)
    if value is not None:
        found.append((str(value), spec.cli, "cli"))
    if spec.env in os.environ:
        found.append((os.environ[spec.env], f"environment variable {spec.env}", "env"))
    ini = config.getini(spec.ini)
    if ini not in (None, "", []):
        where = f" in {config.inipath}" if config.inipath else ""
        found.append((str(ini), f"ini option {spec.ini}{where}", "ini"))
    return found


@dataclass(frozen=True)
class GateSettings:
    """The gate's options, resolved and checked (baseline loaded)."""

    #: the loaded baseline, or None when no comparison was asked for
    baseline: Run | None = None
    baseline_path: Path | None = None
    #: fail the session on a regression (else: report only)
    enabled: bool = False
    rules: tuple[Rule, ...] = DEFAULT_RULES
    rules_source: str = "default"
    two_sided: bool = False
    strict_machine: bool = False
    speed_tolerance: float | None = DEFAULT_SPEED_TOLERANCE
    #: this machine's facts (machine_info["netcopy"] keys), for the current run
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.baseline is not None


def _storage_dir(config: pytest.Config, value: str, source: str) -> Path:
    """pytest-benchmark's --benchmark-storage as a folder (file storage only)."""
    storage = str(config.getoption("benchmark_storage", None) or "file://./.benchmarks")
    if "://" not in storage:
        return Path(storage)
    if storage.startswith("file://"):
        return Path(storage[len("file://") :])
    raise pytest.UsageError(
        f"{source}={value!r}: a saved run can only be looked up in file storage, and "
        f"--benchmark-storage={storage!r} is not one; give the baseline as a JSON file"
    )


def _resolve_gate_switch(
    config: pytest.Config,
) -> tuple[bool, str, str, tuple[Rule, ...], str]:
    """(enabled, its source phrase, its kind, rules, rules' source) from CLI > env > ini."""
    enabled: bool | None = None
    phrase, kind = "", ""
    rules: tuple[Rule, ...] | None = None
    rules_source = "default"
    for raw, source, where in _sources(config, GATE):
        try:
            on, given = parse_gate(raw)
        except ValueError as exc:
            hint = ""
            if where == "cli" and ":" not in raw:
                hint = (
                    f"; if {raw!r} is a test path, {GATE.cli} took it as its rules: write "
                    f"{GATE.cli}=RULES, or put a bare {GATE.cli} after the paths"
                )
            raise pytest.UsageError(f"{source}={raw!r}: {exc}{hint}") from None
        if enabled is None:
            enabled, phrase, kind = on, source, where
        if given is not None:
            rules, rules_source = given, source
            break
    return bool(enabled), phrase, kind, rules or DEFAULT_RULES, rules_source


def resolve_gate(config: pytest.Config) -> GateSettings:
    """Resolve and check the gate's options; load the baseline. Raises pytest.UsageError."""
    enabled, gate_source, gate_kind, rules, rules_source = _resolve_gate_switch(config)
    two_sided, two_sided_source = resolve_spec(config, TWO_SIDED)
    strict, strict_source = resolve_spec(config, STRICT_MACHINE)
    tolerance, _ = resolve_spec(config, SPEED_TOLERANCE)
    value, baseline_source = resolve_spec(config, BASELINE)
    if not _sources(config, BASELINE) or not value:
        # No baseline. What the command line or the environment asked for
        # needs one; an ini value is a project default for runs that give one.
        asked = [(gate_source, gate_kind)] if enabled else []
        for spec, on, source in ((TWO_SIDED, two_sided, two_sided_source),
                                 (STRICT_MACHINE, strict, strict_source)):  # fmt: skip
            if on:
                asked.append((source, _sources(config, spec)[0][2]))
        explicit = [source for source, kind in asked if kind in ("cli", "env")]
        if explicit:
            raise pytest.UsageError(
                f"{explicit[0]} needs a baseline to compare with, and none was given: add "
                f"{BASELINE.cli}=PATH_OR_ID (a pytest-benchmark JSON file, or a saved run such "
                "as '*base'; save one first with --benchmark-save=base)"
            )
        return GateSettings()
    value = str(value)
    try:
        is_file = Path(value).is_file()
    except OSError:  # e.g. a name too long to be a path: then it is a query
        is_file = False
    storage = Path(".benchmarks") if is_file else _storage_dir(config, value, baseline_source)
    try:
        path = resolve_baseline(value, storage, local_machine_id())
        baseline = load_run(path)
    except BaselineError as exc:
        raise pytest.UsageError(f"{baseline_source}={exc}") from None
    except RunFileError as exc:
        raise pytest.UsageError(f"{baseline_source}={value!r}: {exc}") from None
    facts = machine_facts()
    if strict:
        current = Run(Path("this session"), {"netcopy": facts}, {}, None, [])
        differences = machine_differences(baseline, current)
        if differences:
            listed = "; ".join(str(d) for d in differences)
            raise pytest.UsageError(
                f"{strict_source}: refusing to compare with the baseline {path}, which comes "
                f"from another machine: {listed}; save a baseline on this machine "
                f"(--benchmark-save=NAME), or leave out {STRICT_MACHINE.cli}"
            )
    return GateSettings(
        baseline=baseline,
        baseline_path=path,
        enabled=enabled,
        rules=rules,
        rules_source=rules_source,
        two_sided=bool(two_sided),
        strict_machine=bool(strict),
        speed_tolerance=tolerance,
        machine=facts,
    )


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


def marker_rules(item: pytest.Item) -> tuple[Rule, ...] | None:
    """The rules of ``@pytest.mark.netcopy(gate=...)`` on an item; UsageError when bad."""
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
    except ValueError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None
    if not rules:
        raise pytest.UsageError(
            f"{where}: no rule given; expected e.g. gate='throughput_gbps:-25%'"
        )
    return tuple(rules)


# ---------------------------------------------------------------------------
# The plugin object


class GatePlugin:
    """Registered by plugin.py in pytest_configure; compares the run with a baseline."""

    def __init__(self, config: pytest.Config, session: NetcopySession) -> None:
        self.config = config
        self.session = session
        # xdist workers: the controller checked the options and does the comparing
        worker = hasattr(config, "workerinput")
        self.settings = GateSettings() if worker else resolve_gate(config)
        check_control(self.settings, session.settings.control, session.settings.describe("control"))
        self._item_rules: dict[str, tuple[Rule, ...]] = {}
        #: benchmark key -> the marker's rules, from the items that ran
        self.overrides: dict[BenchmarkKey | str, tuple[Rule, ...]] = {}
        #: index in session.results -> the test's name
        self._names: dict[int, str] = {}
        self.outcome: GateOutcome | None = None
        self.error: str | None = None
        self._shown = False

    # -- before the run

    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        s = self.settings
        if not s.active:
            return None
        what = "on" if s.enabled else "off (report only)"
        extra = ", two-sided" if s.two_sided else ""
        extra += ", strict machine" if s.strict_machine else ""
        return [
            f"netcopy gate: {what}{extra}; baseline {s.baseline_path}; "
            f"rules {format_rules(s.rules)} ({s.rules_source})"
        ]

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            rules = marker_rules(item)
            if rules is not None:
                self._item_rules[item.nodeid] = rules

    # -- during the run: which test produced which results

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, None]:
        start = len(self.session.results)
        yield
        rules = self._item_rules.get(item.nodeid)
        for index in range(start, len(self.session.results)):
            self._names[index] = item.name
            if rules is not None:
                info = self.session.results[index]
                self.overrides[(str(info["mode"]), int(info["size"]), int(info["threads"]))] = rules

    # -- after the run

    def current_run(self) -> Run:
        """This session's netcopy results as a Run, like a saved one."""
        results = []
        for index, info in enumerate(self.session.results):
            name = self._names.get(index, f"[{info['mode']}-{info['size']}B-{info['threads']}t]")
            results.append(
                Result(name=name, group=f"{info['size']}B-{info['threads']}t", extra=info, stats={})
            )
        return Run(
            path=Path("this session"),
            machine_info={"netcopy": dict(self.settings.machine)},
            commit_info={},
            datetime=None,
            results=results,
        )

    def compare(self) -> GateOutcome | None:
        s = self.settings
        if s.baseline is None or not self.session.results:
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
    def failed(self) -> bool:
        if not self.settings.enabled:
            return False
        return self.error is not None or (self.outcome is not None and self.outcome.failed)

    def last_line(self) -> str:
        if self.error is not None:
            return self.error
        if self.outcome is None:
            return "netcopy gate: no netcopy benchmark ran in this session, nothing compared"
        line = self.outcome.summary()
        return line if self.settings.enabled else f"{line} (report only)"

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
