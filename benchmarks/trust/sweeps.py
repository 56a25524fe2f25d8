"""The runs of a trust batch: the pytest command of one sweep (plain or gated), run in
its own process group, and where a batch keeps its runs (``--keep DIR``)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Required, TypedDict, Unpack

from pytest_netcopy.gate.rules import Rule, format_rules
from pytest_netcopy.plugin.options import OPTIONS

#: benchmarks/
HERE = Path(__file__).resolve().parents[1]
ROOT = HERE.parent

SWEEP = HERE / "test_sweep.py"

BUILD_DIR = HERE / "trust"

MODE = "two_copy"

SIZES = (4096, 65536)

#: seconds to wait for the noisy neighbour to stop, after SIGTERM and again after SIGKILL
STOP_TIMEOUT = 5.0

#: the kept runs of pair NN: NN-a.json, NN-b.json, NN-<build letter>.json
PAIR_RE = re.compile(r"^(\d+)-a\.json$")


@dataclass(frozen=True)
class Build:
    """A regressed build: its plugin module in benchmarks/trust/, its letter in --keep."""

    name: str
    module: str
    letter: str
    label: str


BUILDS = {
    "extra_copy": Build("extra_copy", "extra_copy", "c", "one more copy per message"),
    "sndbuf": Build("sndbuf", "small_sndbuf", "s", "send buffer capped (SO_SNDBUF)"),
}

REGRESSIONS = {
    "extra_copy": ("extra_copy",),
    "sndbuf": ("sndbuf",),
    "both": ("extra_copy", "sndbuf"),
}


#: the longest one pytest process of the sweep may take (a full default sweep: ~10 min)
RUN_TIMEOUT = 3600.0


@dataclass(frozen=True)
class GatedSession:
    """What makes a run a gated pytest session: its baseline and the gate's options
    (the plugin's own option names, from its table of options)."""

    baseline: Path
    rules: tuple[Rule, ...]
    max_rounds: int | None = None
    max_seconds: float | None = None
    #: --speed-tolerance as given (None: the plugin's default)
    speed_tolerance: str | None = None

    def options(self) -> list[str]:
        opts = [
            f"{OPTIONS['baseline'].cli}={self.baseline}",
            f"{OPTIONS['gate'].cli}={format_rules(self.rules)}",
        ]
        if self.max_rounds is not None:
            opts.append(f"{OPTIONS['gate_max_rounds'].cli}={self.max_rounds}")
        if self.max_seconds is not None:
            opts.append(f"{OPTIONS['gate_max_seconds'].cli}={self.max_seconds:g}")
        if self.speed_tolerance is not None:
            opts.append(f"{OPTIONS['gate_speed_tolerance'].cli}={self.speed_tolerance}")
        return opts


class Sweep(TypedDict, total=False):
    """How one pytest process of the sweep runs: the keywords of :func:`sweep_command` and
    :func:`run_sweep`."""

    #: a regressed build (None: the plugin as it is) and the user's pytest options
    build: Required[Build | None]
    extra: Required[Sequence[str]]
    #: the build's NETCOPY_EXTRA_COPIES (default 1)
    copies: int
    #: the default grid instead of the sweep's sizes and mode (default False)
    full: bool
    #: a gated session (default None: ungated)
    gated: GatedSession | None


def sweep_command(out: Path, **how: Unpack[Sweep]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one pytest process of the sweep (``full``: the
    default grid; ``gated``: a gated session); its JSON goes to ``out``."""
    build, full, gated = how["build"], how.get("full", False), how.get("gated")
    cmd = [sys.executable, "-m", "pytest", str(HERE if full else SWEEP), "-q",
           "-p", "no:cacheprovider", f"--benchmark-json={out}"]  # fmt: skip
    if full:
        cmd += ["-p", "no:xdist"]
    else:
        cmd += ["--netcopy-sizes=" + ",".join(str(s) for s in SIZES), "--netcopy-threads=1",
                f"--netcopy-modes={MODE}"]  # fmt: skip
    # the gate's user-instruction count runs by itself only in a gated session; the
    # ungated runs are compared offline, so ask for it (baselines for a gate should be
    # saved the same way). Before the user's options, which may override it.
    cmd.append("--netcopy-instructions=on")
    # the trust checks are about streams: request/response (in the default patterns
    # since issue 16) has its own noise and no control (docs/gate.md)
    cmd.append("--netcopy-patterns=stream")
    if gated is not None:
        cmd += gated.options()
    cmd += how["extra"]
    env = dict(os.environ)
    if build is not None:
        cmd += ["-p", build.module]
        env["NETCOPY_EXTRA_COPIES"] = str(how.get("copies", 1))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(BUILD_DIR), env.get("PYTHONPATH", "")) if p
        )
    return cmd, env


def killpg(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _run(cmd: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in its own process group; on a timeout, Ctrl-C or an error the whole
    group (pytest and its sinks) is killed."""
    with subprocess.Popen(
        list(cmd), cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        except BaseException as exc:
            killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=STOP_TIMEOUT)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise SystemExit(f"trust: the sweep took over {RUN_TIMEOUT:g} s: killed") from None
            raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)


#: pytest's outcome line (``1 failed, 1 passed in 3.2s``) when a test failed or erred
_FAILED_RE = re.compile(r"\b\d+ (failed|errors?)\b.*\bin \d+(\.\d+)?s\b")


def gate_line(stdout: str) -> str | None:
    """A gated session's verdict: the last line that starts with ``netcopy gate:``."""
    lines = [line.strip() for line in stdout.splitlines()]
    found = [line for line in lines if line.startswith("netcopy gate:")]
    return found[-1] if found else None


def run_sweep(out: Path, **how: Unpack[Sweep]) -> str | None:
    """One pytest process of the sweep; its JSON goes to ``out``. Returns a gated
    session's last line (its gate's verdict), None for an ungated run. A gated session
    that exits 1 with no test failed is the gate failing, not an error."""
    cmd, env = sweep_command(out, **how)
    gated = how.get("gated")
    proc = _run(cmd, env)
    line = gate_line(proc.stdout) if gated is not None else None
    failed_gate = proc.returncode == 1 and line is not None
    ok = proc.returncode == 0 or (failed_gate and not _FAILED_RE.search(proc.stdout))
    if not ok or not out.is_file() or (gated is not None and line is None):
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise SystemExit(
            f"trust: the sweep failed (exit {proc.returncode}): {shlex.join(cmd)}\n{tail}"
        )
    return line


def pair_paths(folder: Path, index: int) -> dict[str, Path]:
    """The runs of pair ``index`` in ``folder``, by letter: a, b and each build's."""
    letters = ("a", "b", *(b.letter for b in BUILDS.values()))
    return {letter: folder / f"{index:02d}-{letter}.json" for letter in letters}


def comparisons(paths: Mapping[str, Path], builds: Sequence[Build]) -> list[tuple[str, Path, Path]]:
    """(check, baseline, current) of a pair: A vs B (``same``), B vs each regressed build."""
    return [("same", paths["a"], paths["b"])] + [
        (b.name, paths["b"], paths[b.letter]) for b in builds
    ]


def kept_pairs(folder: Path) -> list[int]:
    """The indices of the pairs kept in ``folder`` (an ``NN-a.json`` and its ``NN-b.json``)."""
    found = (PAIR_RE.match(p.name) for p in folder.iterdir())
    indices = sorted(int(m.group(1)) for m in found if m)
    return [i for i in indices if pair_paths(folder, i)["b"].is_file()]


def kept_sweeps(folder: Path) -> list[Path]:
    return sorted(folder.glob("sweep-*.json"))
