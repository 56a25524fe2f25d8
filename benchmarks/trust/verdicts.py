"""What the gate said about a pair of kept runs: per size, the verdict as the gate gives
it (offline from the two files, or as a gated session's last line says), the smallest
change it could have seen, what the speed guard did, and the extra rounds taken."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_netcopy.gate.compare import benchmark_id, compare_runs
from pytest_netcopy.gate.metrics import control_speed_change
from pytest_netcopy.gate.outcome import GateOutcome
from pytest_netcopy.gate.policy import DEFAULT_SPEED_TOLERANCE, SPEED_INDEPENDENT
from pytest_netcopy.gate.row import REGRESSION, Row
from pytest_netcopy.gate.rules import Rule
from pytest_netcopy.results.runs import Result, Run, load_run
from trust.sweeps import MODE, Build, comparisons

UNDECIDED_VERDICTS = ("undecided", "not comparable")

Speeds = dict[int, list[float]]


def verdict_of(rows: Sequence[Row]) -> tuple[str, str]:
    """One benchmark's verdict over its rows, as the gate gives them, and the detail:
    ``regression`` (on which metrics); else ``undecided`` (which metrics, why); else
    ``no regression`` (the smallest change each metric could have seen)."""
    bad = [r for r in rows if r.verdict == REGRESSION]
    if bad:
        return "regression", ", ".join(f"{r.metric} {pct(r.change)}" for r in bad)
    open_ = [r for r in rows if r.verdict in UNDECIDED_VERDICTS]
    if open_:
        return "undecided", "; ".join(
            f"{r.metric}: {getattr(r, 'why', '') or r.reason}" for r in open_
        )
    seen = [f"{r.metric} {_mdc_text(r)}" for r in rows]
    return "no regression", ", ".join(seen)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _mdc_text(row: Row) -> str:
    mdc = getattr(row, "detectable", None)
    if mdc is None:
        return "(no detectable change shown)"
    return f"<{mdc:.1%}" if row.rule.percent else f"<{mdc:g}"


def size_text(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


#: a benchmark id on the gate's last line (``two_copy-4096B-1t``)
_BENCH_RE = re.compile(r"[A-Za-z0-9_]+-\d+B-\d+t")


def _top_level(text: str) -> list[str]:
    """``text`` split at ``;`` outside parentheses, with the parenthesised parts left out."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and ch == ";":
            parts.append(current.strip())
            current = ""
        elif depth == 0:
            current += ch
    return [*parts, current.strip()]


def session_verdicts(line: str) -> dict[str, str]:
    """The verdict of each benchmark a gated session's last line names: ``regression``
    (named as a regression), else ``undecided``; under ``"*"`` the verdict of those it
    does not name (``no regression``; ``undecided`` when the gate judged nothing)."""
    body = line.removeprefix("netcopy gate:").strip()
    verdicts = {"*": "undecided" if body.startswith("nothing judged") else "no regression"}
    for part in _top_level(body):
        if re.match(r"\d+ regressions? in ", part):
            word = "regression"
        elif re.match(r"\d+ undecided\b", part):
            word = "undecided"
        else:
            continue
        for bench in _BENCH_RE.findall(part):
            verdicts.setdefault(bench, word)
    return verdicts


def speed_rules(rules: Sequence[Rule]) -> bool:
    """Whether any rule for MODE judges a speed figure (one the speed guard may drop)."""
    return any(r.applies_to(MODE) and r.figure not in SPEED_INDEPENDENT for r in rules)


def guard_state(
    outcome: GateOutcome, old: Result, new: Result, rules: Sequence[Rule], tolerance: float | None
) -> str:
    """What the speed guard did with one benchmark's speed figures: ``kept`` (the control's
    medians within the tolerance, no guard, or no control: judged on every round, as the
    guard by medians did before issue 12), ``matched`` (medians apart, judged on the rounds
    at a common speed: the guard by rounds), ``dropped`` (not judged), ``n/a`` (no rule
    on a speed figure)."""
    if not speed_rules(rules):
        return "n/a"
    if benchmark_id(new.key) in outcome.speed_changed:
        return "dropped"
    speed = control_speed_change(old, new)
    if tolerance is None or speed is None or abs(speed.change) <= tolerance + 1e-9:
        return "kept"
    return "matched"


def per_size(
    outcome: GateOutcome,
    size: int,
    *,
    guard: str = "kept",
    current: Result | None = None,
    session: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the gate said about the benchmark of one size: offline (``outcome``), or as the
    gated session's last line says (``session``, from :func:`session_verdicts`; the offline
    verdict is kept beside it). ``current``: the run's result (its extra rounds)."""
    bench = benchmark_id((MODE, size, 1))
    rows = [r for r in outcome.rows if r.benchmark == bench]
    verdict, detail = verdict_of(rows)
    got: dict[str, Any] = {"verdict": verdict, "detail": detail}
    if session is not None:
        said = session.get(bench, session["*"])
        got.update(verdict=said, offline_verdict=verdict, agree=said == verdict)
    rounds = current.extra.get("gate_rounds") if current is not None else None
    return {
        **got,
        "failed": got["verdict"] == "regression",
        "metrics": [r.metric for r in rows if r.verdict == REGRESSION],
        "change": {r.metric: r.change for r in rows},
        "p": {r.metric: r.p_value for r in rows},
        "verdicts": {r.metric: r.verdict for r in rows},
        "detectable": {r.metric: getattr(r, "detectable", None) for r in rows},
        "bad_change": {r.metric: r.rule.direction * r.change for r in rows if r.change is not None},
        "mdc_shown": got["verdict"] != "no regression"
        or all(getattr(r, "detectable", None) is not None for r in rows if r.p_value is not None),
        "speed_changed": bench in outcome.speed_changed,
        "guard": guard,
        "extra_rounds": dict(rounds) if isinstance(rounds, Mapping) else None,
    }


def control_speeds(run: Run) -> dict[int, float]:
    """The control send's median Gbps per size of a run."""
    out = {}
    for result in run.results:
        control = result.extra.get("control")
        gbps = control.get("throughput_gbps") if isinstance(control, dict) else None
        if isinstance(gbps, int | float):
            out[result.size] = float(gbps)
    return out


def judge_files(
    base: Path,
    new: Path,
    rules: Sequence[Rule],
    tolerance: float | None = DEFAULT_SPEED_TOLERANCE,
    session_line: str | None = None,
) -> dict[str, dict[str, Any]]:
    """What the gate says about each size of MODE at 1 thread that both runs have: the
    offline judging of the two files, or the gated session's verdicts (its last line)."""
    old_run, new_run = load_run(base), load_run(new)
    outcome = compare_runs(old_run, new_run, rules, speed_tolerance=tolerance)
    session = None if session_line is None else session_verdicts(session_line)
    old_by, new_by = old_run.by_key(), new_run.by_key()
    keys = sorted(k for k in new_by if k in old_by and k[0] == MODE and k[2] == 1)
    return {
        str(key[1]): per_size(
            outcome,
            key[1],
            guard=guard_state(outcome, old_by[key], new_by[key], rules, tolerance),
            current=new_by[key],
            session=session,
        )
        for key in keys
    }


def judge_pair(
    index: int,
    paths: Mapping[str, Path],
    builds: Sequence[Build],
    rules: Sequence[Rule],
    tolerance: float | None,
    sessions: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Every check of one pair whose two runs exist: offline, or from the gated sessions'
    last lines (``sessions``: check -> line)."""
    pair: dict[str, Any] = {"pair": index}
    for kind, base, new in comparisons(paths, builds):
        if not (base.is_file() and new.is_file()):
            continue
        line = (sessions or {}).get(kind)
        pair[kind] = judge_files(base, new, rules, tolerance, line)
        if line is not None:
            pair.setdefault("session_lines", {})[kind] = line
    return pair


def add_speeds(speeds: Speeds, paths: Sequence[Path]) -> None:
    for path in paths:
        if path.is_file():
            for size, gbps in control_speeds(load_run(path)).items():
                speeds.setdefault(size, []).append(gbps)
