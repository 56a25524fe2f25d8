"""Reading saved runs: pytest-benchmark JSON files that carry netcopy results.

One loader for every consumer (the gate, ``netcopy report``/``csv``/``plot``,
``netcopy compare``), so a broken or foreign file gets the same clear error
everywhere: :class:`RunFileError`, whose message names the file and says what
is wrong. Nothing here raises anything else for bad input.

The netcopy part of each benchmark lives in its ``extra_info`` (schema
``netcopy_schema: 1``, documented in the README); the run-level facts in
``machine_info["netcopy"]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_netcopy.results.machine import netcopy_facts
from pytest_netcopy.results.schema import REQUIRED_KEYS, SCHEMA_VERSION
from pytest_netcopy.results.validate import duplicate, problem, shown


class RunFileError(Exception):
    """A run file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Result:
    """One netcopy benchmark of a run: a mode at a size and thread count."""

    name: str
    group: str | None
    extra: Mapping[str, Any]
    stats: Mapping[str, Any]

    @property
    def mode(self) -> str:
        return str(self.extra["mode"])

    @property
    def size(self) -> int:
        return int(self.extra["size"])

    @property
    def threads(self) -> int:
        return int(self.extra["threads"])

    @property
    def key(self) -> tuple[str, int, int]:
        """What matches a benchmark across runs: (mode, size, threads)."""
        return (self.mode, self.size, self.threads)

    @property
    def variant(self) -> str:
        """``stream``, or a request/response benchmark's ``rr`` (on a schedule ``rr-1000tps``)."""
        if self.extra.get("pattern") != "rr":
            return "stream"
        rr = self.extra.get("rr")
        rate = rr.get("rate") if isinstance(rr, Mapping) else None
        offered = rate.get("offered_per_connection") if isinstance(rate, Mapping) else None
        return f"rr-{offered:g}tps" if isinstance(offered, int | float) else "rr"

    def metric(self, name: str) -> Any:
        return self.extra.get(name)

    def round_samples(self, name: str) -> list[float]:
        """Per-round values of a metric, or [] when not recorded: ``rounds[name]`` (the
        measured rounds), else ``pass_rounds[name]`` (the untimed rounds of a pass such as
        the user-time one)."""
        for section in ("rounds", "pass_rounds"):
            rounds = self.extra.get(section)
            values = rounds.get(name) if isinstance(rounds, Mapping) else None
            if values:
                return [float(v) for v in values if isinstance(v, int | float)]
        return []


@dataclass(frozen=True)
class Run:
    path: Path
    machine_info: Mapping[str, Any]
    commit_info: Mapping[str, Any]
    datetime: str | None
    results: list[Result] = field(default_factory=list)

    @property
    def netcopy_machine(self) -> Mapping[str, Any]:
        return netcopy_facts(self.machine_info)

    def by_key(self) -> dict[tuple[str, int, int], Result]:
        return {r.key: r for r in self.results}


def _fail(path: Path, problem: str) -> RunFileError:
    return RunFileError(f"{path}: {problem}")


def load_run(path: str | os.PathLike[str]) -> Run:
    """Load a pytest-benchmark JSON file and keep its netcopy benchmarks.

    Raises :class:`RunFileError` for a missing, unreadable, truncated or
    malformed file, for JSON that is not pytest-benchmark output, for a newer
    netcopy schema, and for a file with no netcopy benchmark in it.
    """
    p = Path(path)
    data = _read_json(p)
    results = [
        result
        for index, bench in enumerate(data["benchmarks"])
        if (result := _result(p, index, bench)) is not None
    ]
    seen: dict[tuple[Any, ...], str] = {}
    for result in results:
        variant = result.variant
        key = result.key if variant == "stream" else (*result.key, variant)
        twice = duplicate(key, result.name, seen)
        if twice is not None:
            raise _fail(p, f"benchmark {result.name}: {twice}")
    if not results:
        raise _fail(
            p,
            "has no netcopy benchmarks (no benchmark with extra_info.netcopy_schema); "
            "was it written by `pytest benchmarks/` with pytest-netcopy installed?",
        )
    machine = data.get("machine_info")
    commit = data.get("commit_info")
    return Run(
        path=p,
        machine_info=machine if isinstance(machine, dict) else {},
        commit_info=commit if isinstance(commit, dict) else {},
        datetime=data.get("datetime") if isinstance(data.get("datetime"), str) else None,
        results=results,
    )


def _read_json(p: Path) -> dict[str, Any]:
    """The file's pytest-benchmark object (with a ``benchmarks`` list), or why not."""
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(p, "no such file") from None
    except IsADirectoryError:
        raise _fail(p, "is a directory, expected a pytest-benchmark JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(p, f"cannot be read ({exc})") from None
    if not text.strip():
        raise _fail(p, "is empty, expected a pytest-benchmark JSON file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            p, f"is not valid JSON (truncated or corrupt?): {exc.msg} at line {exc.lineno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4300 digits
        raise _fail(p, f"is not usable JSON: {shown(str(exc))}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise _fail(
            p,
            "is not pytest-benchmark output (expected an object with a 'benchmarks' list, "
            "as written by --benchmark-json or --benchmark-save)",
        )
    return data


def _result(p: Path, index: int, bench: object) -> Result | None:
    """Benchmark ``index`` of the file as a netcopy Result; None when it is not netcopy's."""
    if not isinstance(bench, dict):
        raise _fail(p, f"benchmarks[{index}] is not an object")
    extra = bench.get("extra_info")
    if not isinstance(extra, dict) or "netcopy_schema" not in extra:
        return None  # a benchmark of some other suite: not ours to read
    name = _name(bench, index)
    schema = extra.get("netcopy_schema")
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise _fail(
            p, f"benchmark {name}: netcopy_schema={shown(schema)}: expected an integer >= 1"
        )
    if schema > SCHEMA_VERSION:
        raise _fail(
            p,
            f"benchmark {name}: netcopy_schema {schema} is newer than this pytest-netcopy "
            f"understands ({SCHEMA_VERSION}); upgrade pytest-netcopy",
        )
    missing = [k for k in REQUIRED_KEYS if k not in extra]
    if missing:
        raise _fail(p, f"benchmark {name}: extra_info lacks {', '.join(missing)}")
    wrong = problem(extra)
    if wrong is not None:
        raise _fail(p, f"benchmark {name}: {wrong}")
    stats = bench.get("stats")
    return Result(
        name=name,
        group=bench.get("group"),
        extra=extra,
        stats=stats if isinstance(stats, dict) else {},
    )


def _name(bench: Mapping[str, Any], index: int) -> str:
    """The benchmark's name for messages: as written when a printable string, else shown."""
    name = bench.get("name", f"benchmarks[{index}]")
    if isinstance(name, str) and name.isprintable() and name.strip():
        return name
    return f"benchmarks[{index}] (name {shown(name)})"
