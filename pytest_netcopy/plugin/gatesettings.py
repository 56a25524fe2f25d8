"""The gate's options, resolved and checked at configure time (the baseline loaded).

A bad rule, a baseline that names no file, a broken baseline file, or different
machines under ``--netcopy-gate-strict-machine`` stop the session before any
benchmark runs, as a :class:`pytest.UsageError` naming the option, the value
and the problem. The options themselves are rows of
:data:`pytest_netcopy.plugin.options.SPECS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_netcopy.gate.catalog import check_rules
from pytest_netcopy.gate.compare import machine_differences
from pytest_netcopy.gate.policy import DEFAULT_RULES, DEFAULT_SPEED_TOLERANCE
from pytest_netcopy.gate.rules import Rule
from pytest_netcopy.gate.sequential import Budget
from pytest_netcopy.instruments.machine import machine_facts
from pytest_netcopy.plugin.options import OPTIONS, Source, given, parse_value, resolve_spec
from pytest_netcopy.results.baseline import BaselineError, local_machine_id, resolve_baseline
from pytest_netcopy.results.runs import Run, RunFileError, load_run

BASELINE = OPTIONS["baseline"]
GATE = OPTIONS["gate"]
TWO_SIDED = OPTIONS["gate_two_sided"]
STRICT_MACHINE = OPTIONS["gate_strict_machine"]
SPEED_TOLERANCE = OPTIONS["gate_speed_tolerance"]
ALLOW_EMPTY = OPTIONS["gate_allow_empty"]
STRICT = OPTIONS["gate_strict"]
MAX_ROUNDS = OPTIONS["gate_max_rounds"]
MAX_SECONDS = OPTIONS["gate_max_seconds"]


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
    #: pass a gate that judged nothing (else it fails), and the phrase naming the source
    allow_empty: bool = False
    allow_empty_source: str = ALLOW_EMPTY.cli
    #: this machine's facts (machine_info["netcopy"] keys), for the current run
    machine: dict[str, Any] = field(default_factory=dict)
    #: undecided rows fail the gate too, and the phrase naming the source
    strict: bool = False
    strict_source: str = STRICT.cli
    #: how far extra rounds may go for an undecided benchmark
    budget: Budget = field(default_factory=Budget)

    @property
    def active(self) -> bool:
        return self.baseline is not None


@dataclass(frozen=True)
class GateSwitch:
    """``--netcopy-gate`` over its sources: on or off, and whose rules."""

    enabled: bool = False
    #: the source that turned it on or off (None: no source gave one)
    source: Source | None = None
    rules: tuple[Rule, ...] = DEFAULT_RULES
    rules_source: str = "default"


def _path_hint(source: Source) -> str:
    """A bad rule from the command line may be a test path the switch took as its value."""
    if source.kind != "cli" or ":" in source.raw:
        return ""
    return (
        f"; if {source.raw!r} is a test path, {GATE.cli} took it as its rules: write "
        f"{GATE.cli}=RULES, or put a bare {GATE.cli} after the paths"
    )


def resolve_switch(config: pytest.Config, modes: Sequence[str] | None = None) -> GateSwitch:
    """On/off from the first source that gives a value; rules from the first that gives rules.

    Rules naming an unknown metric, or a mode not in ``modes``, are a UsageError.
    """
    switch: Source | None = None
    enabled = False
    for source in given(config, GATE):
        on, rules = parse_value(GATE, source, _path_hint)
        try:
            check_rules(rules or (), modes)
        except ValueError as exc:
            raise pytest.UsageError(f"{source.phrase}={source.raw!r}: {exc}") from None
        if switch is None:
            switch, enabled = source, on
        if rules is not None:
            return GateSwitch(enabled, switch, rules, source.phrase)
    return GateSwitch(enabled, switch)


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


def _refuse_without_baseline(switch: GateSwitch, flags: list[tuple[bool, Source]]) -> None:
    """What the command line or the environment asked for needs a baseline.

    An ini value is a project default for runs that give one.
    """
    asked = [switch.source] if switch.enabled and switch.source is not None else []
    asked += [source for on, source in flags if on]
    explicit = [source.phrase for source in asked if source.kind in ("cli", "env")]
    if explicit:
        raise pytest.UsageError(
            f"{explicit[0]} needs a baseline to compare with, and none was given: add "
            f"{BASELINE.cli}=PATH_OR_ID (a pytest-benchmark JSON file, or a saved run such "
            "as '*base'; save one first with --benchmark-save=base)"
        )


def load_baseline(config: pytest.Config, value: str, source: Source) -> tuple[Path, Run]:
    """The baseline file a value names (a path, or a saved-run query) and its run."""
    try:
        is_file = Path(value).is_file()
    except OSError:  # e.g. a name too long to be a path: then it is a query
        is_file = False
    storage = Path(".benchmarks") if is_file else _storage_dir(config, value, source.phrase)
    try:
        path = resolve_baseline(value, storage, local_machine_id())
        return path, load_run(path)
    except BaselineError as exc:
        raise pytest.UsageError(f"{source.phrase}={exc}") from None
    except RunFileError as exc:
        raise pytest.UsageError(f"{source.phrase}={value!r}: {exc}") from None


def _check_machine(baseline: Run, path: Path, facts: dict[str, Any], source: Source) -> None:
    """Under --netcopy-gate-strict-machine, a baseline from another machine is refused."""
    current = Run(Path("this session"), {"netcopy": facts}, {}, None, [])
    differences = machine_differences(baseline, current)
    if differences:
        listed = "; ".join(str(d) for d in differences)
        raise pytest.UsageError(
            f"{source.phrase}: refusing to compare with the baseline {path}, which comes "
            f"from another machine: {listed}; save a baseline on this machine "
            f"(--benchmark-save=NAME), or leave out {STRICT_MACHINE.cli}"
        )


def resolve_gate(config: pytest.Config, modes: Sequence[str] | None = None) -> GateSettings:
    """Resolve and check the gate's options; load the baseline. Raises pytest.UsageError.

    ``modes``: the session's mode registry, which a rule's ``@MODE`` must name.
    """
    switch = resolve_switch(config, modes)
    two_sided, two_sided_source = resolve_spec(config, TWO_SIDED)
    strict, strict_source = resolve_spec(config, STRICT_MACHINE)
    allow_empty, allow_empty_source = resolve_spec(config, ALLOW_EMPTY)
    strict_gate, strict_gate_source = resolve_spec(config, STRICT)
    max_rounds, _ = resolve_spec(config, MAX_ROUNDS)
    max_seconds, _ = resolve_spec(config, MAX_SECONDS)
    tolerance, _ = resolve_spec(config, SPEED_TOLERANCE)
    value, baseline_source = resolve_spec(config, BASELINE)
    if not value:
        flags = [(two_sided, two_sided_source), (strict, strict_source)]
        flags += [(allow_empty, allow_empty_source), (strict_gate, strict_gate_source)]
        _refuse_without_baseline(switch, flags)
        return GateSettings()
    path, baseline = load_baseline(config, str(value), baseline_source)
    facts = machine_facts()
    if strict:
        _check_machine(baseline, path, facts, strict_source)
    return GateSettings(
        baseline=baseline,
        baseline_path=path,
        enabled=switch.enabled,
        rules=switch.rules,
        rules_source=switch.rules_source,
        two_sided=bool(two_sided),
        strict_machine=bool(strict),
        speed_tolerance=tolerance,
        allow_empty=bool(allow_empty),
        allow_empty_source=allow_empty_source.phrase,
        machine=facts,
        strict=bool(strict_gate),
        strict_source=strict_gate_source.phrase,
        budget=Budget(max_rounds=int(max_rounds), max_seconds=float(max_seconds)),
    )
