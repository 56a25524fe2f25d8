"""The plugin's options: one table, one resolver (CLI > environment > ini > default).

Every option has an ini twin (``--netcopy-sizes`` / ``netcopy_sizes``) and an
environment variable (``NETCOPY_SIZES``). Values are parsed and checked once,
in ``pytest_configure``; a bad one is a :class:`pytest.UsageError` that names
where it came from, the value, and what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_netcopy.instruments.counters import EVENTS, parse_counter_selection
from pytest_netcopy.sink import DEFAULT_RECV_BUFFER, FIELDS, MIN_SIZE

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
}
MAX_SIZE = 64 << 20
MAX_THREADS = 256


def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError("expected a byte count such as 4096, 4K or 64KiB")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _split(text: str) -> list[str]:
    items = [t.strip() for t in re.split(r"[,\s]+", text) if t.strip()]
    if not items:
        raise ValueError("expected a non-empty comma-separated list")
    return items


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for item in _split(text):
        try:
            size = parse_bytes(item)
        except ValueError:
            raise ValueError(
                f"{item!r} is not a size: expected byte counts such as 256,4096,64K"
            ) from None
        if size < MIN_SIZE or size % FIELDS or size > MAX_SIZE:
            raise ValueError(
                f"{item} is not a usable message size: expected a multiple of {FIELDS} "
                f"(8 fields of size/8 bytes) from {MIN_SIZE} B to {MAX_SIZE >> 20} MiB"
            )
        if size not in sizes:
            sizes.append(size)
    return sizes


def parse_threads(text: str) -> list[int]:
    out = []
    for item in _split(text):
        if not item.isdigit() or not 1 <= int(item) <= MAX_THREADS:
            raise ValueError(
                f"{item!r} is not a thread count: expected whole numbers from 1 to {MAX_THREADS}"
            )
        if int(item) not in out:
            out.append(int(item))
    return out


def parse_modes(text: str) -> list[str]:
    out = []
    for item in _split(text):
        if not item.isidentifier():
            raise ValueError(f"{item!r} is not a mode name")
        if item not in out:
            out.append(item)
    return out


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("expected a positive number of seconds")
    return value


def _timeout(text: str) -> float:
    value = _positive_float(text)
    if value < 0.001:
        raise ValueError("expected at least 0.001 seconds (below that the kernel waits forever)")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise ValueError(f"expected a whole number >= {minimum}")
        return int(text)

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text.strip().lower()

    return parse


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _congestion(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,15}", value):
        raise ValueError("expected auto, system, or an algorithm name such as cubic")
    return value


def _recv_buffer(text: str) -> int:
    value = parse_bytes(text)
    if not 4096 <= value <= 256 << 20:
        raise ValueError("expected a byte count from 4K to 256M")
    return value


@dataclass(frozen=True)
class Spec:
    name: str  # settings attribute and ini name suffix
    parse: Callable[[str], Any]
    default: str
    metavar: str
    help: str
    flag: bool = False  # a CLI switch (store_const "true")

    @property
    def cli(self) -> str:
        return "--netcopy-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "netcopy_" + self.name

    @property
    def env(self) -> str:
        return "NETCOPY_" + self.name.upper()


SPECS: tuple[Spec, ...] = (
    Spec("sizes", parse_sizes, "256,1024,4096,16384,65536", "SIZES",
         "message sizes in bytes (multiples of 8, >= 64; K/KiB suffixes allowed)"),
    Spec("threads", parse_threads, "1,2,4,8", "COUNTS",
         "sender thread counts (one connection each)"),
    Spec("modes", parse_modes, "two_copy,one_copy,zero_copy", "MODES",
         "send modes to benchmark (built in: two_copy, one_copy, zero_copy; "
         "conftests add more with the pytest_netcopy_add_modes hook)"),
    Spec("round_time", _positive_float, "0.05", "SECONDS",
         "calibrate messages per round so one round lasts at least about this long"),
    Spec("rounds", _count(1), "10", "N", "measured rounds per benchmark"),
    Spec("warmup_rounds", _count(0), "1", "N",
         "untimed rounds after calibration; the first also lengthens a short calibrated "
         "count, so one runs even at 0"),
    Spec("timeout", _timeout, "60", "SECONDS",
         "limit for every socket wait, round and sink start; a stuck sink fails the test"),
    Spec("pin", _choice("auto", "off"), "auto", "auto|off",
         "pin sender threads and the sink to different CPUs when there are two or more"),
    Spec("nodelay", parse_bool, "false", "BOOL",
         "set TCP_NODELAY (Nagle off); the reference left Nagle on", flag=True),
    Spec("congestion", _congestion, "auto", "NAME",
         "TCP congestion control of the sender sockets: auto (cubic where allowed, "
         "else the system default), system, or a name from "
         "net.ipv4.tcp_available_congestion_control"),
    Spec("counters", parse_counter_selection, "default", "EVENTS",
         "perf counters on the sender threads: default (all), none, or a comma list of "
         + ", ".join(EVENTS)),
    Spec("recv_buffer", _recv_buffer, str(DEFAULT_RECV_BUFFER), "BYTES",
         "size of the sink's fixed recv_into buffer"),
    Spec("user_rounds", _count(0), "6", "N",
         "untimed rounds after the measured ones that sample the sender threads' user-mode "
         "CPU time (user_cpu_ns_per_byte: the cost of the sender's own code, which the speed "
         "of the kernel's network path does not move); the 10 kHz sampling timer would slow "
         "a measured round by 10-20% on a VM. 0: none"),
    Spec("control", _choice("bare_send", "none"), "bare_send", "bare_send|none",
         "a control send (the message already one buffer: stamp it, sendall) measured on the "
         "same connections around every measured round; the *_vs_control figures divide by "
         "it, so what the machine is doing at the time cancels out. none: no control (about "
         "40% less time)"),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    sizes: list[int]
    threads: list[int]
    modes: list[str]
    round_time: float
    rounds: int
    warmup_rounds: int
    timeout: float
    pin: str
    nodelay: bool
    congestion: str
    counters: list[str]
    recv_buffer: int
    control: str
    user_rounds: int
    sources: dict[str, str]

    def describe(self, name: str) -> str:
        return self.sources.get(name, name)


def add_spec(parser: pytest.Parser, spec: Spec) -> None:
    """Add one option (CLI and ini) to the netcopy group."""
    group = parser.getgroup("netcopy", "pytest-netcopy: benchmark Linux send paths")
    help_text = f"{spec.help}. Default: {spec.default!r} (ini: {spec.ini}, env: {spec.env})."
    help_text = help_text.replace("%", "%%")  # argparse formats help with %
    if spec.flag:
        group.addoption(
            spec.cli, action="store_const", const="true", default=None,
            dest=spec.ini, help=help_text,
        )  # fmt: skip
    else:
        group.addoption(
            spec.cli, action="store", default=None, dest=spec.ini,
            metavar=spec.metavar, help=help_text,
        )  # fmt: skip
    parser.addini(spec.ini, help=f"{spec.help} (like {spec.cli})", default=None)


def add_options(parser: pytest.Parser) -> None:
    for spec in SPECS:
        add_spec(parser, spec)


def raw_value(config: pytest.Config, spec: Spec) -> tuple[str, str]:
    """The raw value of an option and a phrase naming where it came from."""
    value = config.getoption(spec.ini, None)
    if value is not None:
        return str(value), spec.cli
    if spec.env in os.environ:
        return os.environ[spec.env], f"environment variable {spec.env}"
    ini = config.getini(spec.ini)
    if ini not in (None, "", []):
        where = f" in {config.inipath}" if config.inipath else ""
        return str(ini), f"ini option {spec.ini}{where}"
    return spec.default, f"default of {spec.cli}"


def resolve_spec(config: pytest.Config, spec: Spec) -> tuple[Any, str]:
    """Parse one option (CLI > env > ini > default); a bad value is a UsageError."""
    raw, source = raw_value(config, spec)
    try:
        return spec.parse(raw), source
    except ValueError as exc:
        raise pytest.UsageError(f"{source}={raw!r}: {exc}") from None


def resolve(config: pytest.Config) -> Settings:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        values[spec.name], sources[spec.name] = resolve_spec(config, spec)
    return Settings(**values, sources=sources)
