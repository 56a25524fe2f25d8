"""The plugin's options: one table, one resolver (CLI > environment > ini > default).

Every option has an ini twin (``--netcopy-sizes`` / ``netcopy_sizes``) and an
environment variable (``NETCOPY_SIZES``). Values are parsed and checked once,
in ``pytest_configure``; a bad one is a :class:`pytest.UsageError` that names
where it came from, the value, and what was expected. The benchmark's options
are the fields of :class:`~pytest_netcopy.bench.settings.Settings`, by name;
the gate's follow them in the same table (:mod:`pytest_netcopy.plugin.gatesettings`
reads those).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from pytest_netcopy.bench.settings import Settings
from pytest_netcopy.bench.udprate import parse_udp_rate
from pytest_netcopy.gate.policy import DEFAULT_RULES, DEFAULT_SPEED_TOLERANCE, parse_speed_tolerance
from pytest_netcopy.gate.rules import format_rules
from pytest_netcopy.gate.sequential import DEFAULT_MAX_ROUNDS, DEFAULT_MAX_SECONDS
from pytest_netcopy.instruments.counters import EVENTS, parse_counter_selection
from pytest_netcopy.plugin.parsers import (
    choice,
    congestion,
    count,
    parse_bool,
    parse_gate,
    parse_modes,
    parse_sizes,
    parse_threads,
    positive_float,
    recv_buffer,
    stripped,
    timeout,
)
from pytest_netcopy.plugin.rrparsers import (
    parse_on_off,
    parse_patterns,
    parse_rates,
    parse_response_size,
    parse_rr_threads,
)
from pytest_netcopy.sink.wire import DEFAULT_RECV_BUFFER
from pytest_netcopy.transport.pipe import is_ssh, parse_address, parse_cpus, parse_peer

__all__ = [
    "OPTIONS",
    "SPECS",
    "Source",
    "Spec",
    "add_options",
    "given",
    "parse_modes",
    "parse_sizes",
    "parse_threads",
    "parse_value",
    "resolve",
    "resolve_spec",
]

GROUP = ("netcopy", "pytest-netcopy: benchmark Linux send paths")


@dataclass(frozen=True)
class Spec:
    name: str  # settings attribute and ini name suffix
    parse: Callable[[str], Any]
    default: str
    metavar: str
    help: str
    flag: bool = False  # a CLI switch (store_const "true")
    #: a CLI switch that may also take a value (``--netcopy-gate[=RULES]``)
    optional_value: bool = False
    #: the help's "Default:" when it is not the default's repr
    shown_default: str | None = None
    #: a sentence the CLI help adds after ``help``
    note: str = ""
    #: the ini option's help, when not ``help`` "(like --netcopy-...)"
    ini_help: str | None = None

    @property
    def cli(self) -> str:
        return "--netcopy-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "netcopy_" + self.name

    @property
    def env(self) -> str:
        return "NETCOPY_" + self.name.upper()


#: what a benchmark needs: the fields of Settings, one for one
BENCH_SPECS: tuple[Spec, ...] = (
    Spec("sizes", parse_sizes, "256,1024,4096,16384,65536", "SIZES",
         "message sizes in bytes (multiples of 8, >= 64; K/KiB suffixes allowed)"),
    Spec("threads", parse_threads, "1,2,4,8", "COUNTS",
         "sender thread counts (one connection each)"),
    Spec("modes", parse_modes, "two_copy,one_copy,zero_copy", "MODES",
         "send modes to benchmark (built in: two_copy, one_copy, zero_copy; "
         "conftests add more with the pytest_netcopy_add_modes hook)"),
    Spec("round_time", positive_float, "0.05", "SECONDS",
         "calibrate messages per round so one round lasts at least about this long"),
    Spec("rounds", count(1), "10", "N", "measured rounds per benchmark"),
    Spec("warmup_rounds", count(0), "1", "N",
         "untimed rounds after calibration; the first also lengthens a short calibrated "
         "count, so one runs even at 0"),
    Spec("timeout", timeout, "60", "SECONDS",
         "limit for every socket wait, round and sink start; a stuck sink fails the test"),
    Spec("pin", choice("auto", "off"), "auto", "auto|off",
         "pin sender threads and the sink to different CPUs when there are two or more"),
    Spec("nodelay", parse_bool, "false", "BOOL",
         "set TCP_NODELAY (Nagle off); the reference left Nagle on", flag=True),
    Spec("congestion", congestion, "auto", "NAME",
         "TCP congestion control of the sender sockets: auto (cubic where allowed, "
         "else the system default), system, or a name from "
         "net.ipv4.tcp_available_congestion_control"),
    Spec("counters", parse_counter_selection, "default", "EVENTS",
         "perf counters on the sender threads: default (all), none, or a comma list of "
         + ", ".join(EVENTS)),
    Spec("recv_buffer", recv_buffer, str(DEFAULT_RECV_BUFFER), "BYTES",
         "size of the sink's fixed recv_into buffer"),
    Spec("user_rounds", count(0), "6", "N",
         "untimed rounds after the measured ones that sample the sender threads' user-mode "
         "CPU time (user_cpu_ns_per_byte: the cost of the sender's own code, which the speed "
         "of the kernel's network path does not move); the 10 kHz sampling timer would slow "
         "a measured round by 10-20% on a VM. 0: none"),
    Spec("control", choice("bare_send", "none"), "bare_send", "bare_send|none",
         "a control send (the message already one buffer: stamp it, sendall) measured on the "
         "same connections around every measured round; the *_vs_control figures divide by "
         "it, so what the machine is doing at the time cancels out. none: no control (about "
         "40% less time)"),
    Spec("peer", parse_peer, "", "COMMAND",
         "run the sink on another host through a command that gives it a pipe, e.g. "
         "'ssh -T user@host', 'ip netns exec NS', 'kubectl exec -i POD --' (see "
         "docs/remote-peer.md); nothing is installed there; empty: a local sink"),
    Spec("peer_python", stripped, "python3", "PYTHON",
         "the Python the peer command runs (3.8 or newer; words allowed, e.g. 'python3 -I')"),
    Spec("peer_address", parse_address, "", "HOST",
         "the peer's IPv4 or IPv6 address the senders connect to; its sink listens only there. "
         "Required with --netcopy-peer, except over ssh (default: the server address of the "
         "session's SSH_CONNECTION)"),
    Spec("peer_cpus", parse_cpus, "", "LIST",
         "the peer's CPUs the sink is pinned to (comma list); empty: its last CPU"),
    Spec("instructions", choice("auto", "on", "off"), "auto", "auto|on|off",
         "count the sender's user-mode instructions per message in an untimed pass "
         "(user_instructions_per_message: from the PMU, else under valgrind; a count the "
         "machine's speed does not move); auto: when --netcopy-gate is on"),
    Spec("target", choice("sink", "blackhole"), "sink", "sink|blackhole",
         "where the senders send: sink (a receiver verifies every byte) or blackhole (transmit "
         "only: the UDP modes into a forwarding namespace that drops everything, the one path "
         "on one host where MSG_ZEROCOPY really skips the copy; nothing is verified; TCP modes "
         "skip; needs root, see docs/blackhole.md)"),
    Spec("patterns", parse_patterns, "stream,rr", "PATTERNS",
         "what a test taking netcopy_pattern runs: stream (rounds of messages one way), rr "
         "(request/response: one message, then the sink's response; round-trip percentiles, "
         "docs/latency.md), or both"),
    Spec("rr_threads", parse_rr_threads, "1,4", "COUNTS",
         "connection counts of the request/response grid (one sender thread each)"),
    Spec("response_size", parse_response_size, "64", "BYTES",
         "bytes of the sink's response to each request (a multiple of 8, >= 64, <= 64 MiB; "
         "the request's stamp and a per-connection content, verified at the sender)"),
    Spec("rr_rate", parse_rates, "", "RATES",
         "request/response on a fixed schedule: transactions per second per connection (a "
         "comma list sweeps); each round trip is timed from when it was due, so stalls are "
         "not hidden (docs/latency.md); empty or none: closed loop"),
    Spec("rr_nodelay", parse_on_off, "on", "on|off",
         "TCP_NODELAY on request/response connections (both ends); off turns Nagle back on "
         "(with delayed ACKs, ~40 ms stalls); recorded as rr.tcp_nodelay"),
    Spec("rr_transactions", count(1), "20000", "N",
         "the fewest transactions a request/response benchmark's measured rounds hold in all "
         "(p99.9 from fewer is noise); rounds are lengthened to reach it"),
    Spec("udp_rate", parse_udp_rate, "calibrate", "RATE",
         "pace of each UDP flow: bits per second (2G, 500M) or datagrams per second "
         "(100000dps); calibrate: the fastest rate the sink keeps up with at under 1% loss, "
         "found before each UDP benchmark and recorded as udp.rate (docs/udp.md)"),
)  # fmt: skip

#: the regression gate's (see docs/gate.md and plugin/gatesettings.py)
GATE_SPECS: tuple[Spec, ...] = (
    Spec("baseline", stripped, "", "PATH_OR_ID",
         "compare this session's benchmarks with a baseline: a pytest-benchmark JSON file, or a "
         "run saved in --benchmark-storage, selected as --benchmark-compare does ('0001', "
         "'*base', 'MACHINE/0001'); the table comes at the end, the exit status changes only "
         "with --netcopy-gate; empty: no comparison"),
    Spec("gate", parse_gate, "", "RULES",
         "fail the session (exit status 1) on a significant regression against "
         "--netcopy-baseline. RULES (optional, METRIC:-N% a drop of more than N percent is "
         "bad, METRIC:+N% a rise, METRIC:+N in the metric's units; spaces or commas between) "
         f"replace the defaults {format_rules(DEFAULT_RULES)!r}; 'off' turns an ini/env gate "
         "off",
         optional_value=True, shown_default="off",
         note="Put a bare --netcopy-gate after the test paths, or it takes the next one as "
         "its rules.",
         ini_help="gate rules, or true/false (like --netcopy-gate; applies to runs given a "
         "baseline)"),
    Spec("gate_two_sided", parse_bool, "false", "BOOL",
         "with --netcopy-gate, also fail on an improvement beyond the threshold "
         "(the baseline is stale: save a new one)", flag=True),
    Spec("gate_strict_machine", parse_bool, "false", "BOOL",
         "refuse to compare with a baseline from another machine (kernel release, CPU model "
         "or CPU count differ); without it the differences are printed above the table",
         flag=True),
    Spec("gate_speed_tolerance", parse_speed_tolerance, f"{DEFAULT_SPEED_TOLERANCE:.0%}",
         "PCT|off",
         "a benchmark whose control send ran more than PCT faster or slower than in the "
         "baseline was measured with the machine at another speed: its speed-dependent rows "
         "are 'not comparable' instead of judged (user CPU and syscall counts are judged "
         "anyway); off: judge at any speed"),
    Spec("gate_strict", parse_bool, "false", "BOOL",
         "with --netcopy-gate, also fail the session when a row is undecided (its interval "
         "on the change reaches beyond the threshold, too few rounds, another machine speed, "
         "not comparable); without it undecided rows are named on the last line and pass",
         flag=True),
    Spec("gate_max_rounds", count(0), str(DEFAULT_MAX_ROUNDS), "N",
         "with --netcopy-gate, a benchmark undecided after its --netcopy-rounds measures more "
         "rounds, looking again after each few, until decided or at N rounds in all (its "
         "false-alarm rate stays at the gate's alpha: docs/gate.md); N <= --netcopy-rounds: "
         "no extra rounds"),
    Spec("gate_max_seconds", positive_float, f"{DEFAULT_MAX_SECONDS:g}", "SECONDS",
         "with --netcopy-gate, the most time one benchmark's extra rounds may take"),
    Spec("gate_allow_empty", parse_bool, "false", "BOOL",
         "with --netcopy-gate, pass when the comparison judged nothing (no benchmark in both "
         "runs, or every row 'not comparable'), e.g. for a first run; without it such a gate "
         "fails the session", flag=True),
)  # fmt: skip

#: every option, in the order of ``pytest --help``
SPECS: tuple[Spec, ...] = BENCH_SPECS + GATE_SPECS
#: the same by name
OPTIONS: dict[str, Spec] = {spec.name: spec for spec in SPECS}


def add_spec(parser: pytest.Parser, spec: Spec) -> None:
    """Add one option (CLI and ini) to the netcopy group."""
    group = parser.getgroup(*GROUP)
    shown = spec.shown_default if spec.shown_default is not None else repr(spec.default)
    note = f" {spec.note}" if spec.note else ""
    help_text = f"{spec.help}.{note} Default: {shown} (ini: {spec.ini}, env: {spec.env})."
    help_text = help_text.replace("%", "%%")  # argparse formats help with %
    if spec.flag:
        group.addoption(
            spec.cli, action="store_const", const="true", default=None,
            dest=spec.ini, help=help_text,
        )  # fmt: skip
    elif spec.optional_value:
        group.addoption(
            spec.cli, action="store", nargs="?", const="", default=None, dest=spec.ini,
            metavar=spec.metavar, help=help_text,
        )  # fmt: skip
    else:
        group.addoption(
            spec.cli, action="store", default=None, dest=spec.ini,
            metavar=spec.metavar, help=help_text,
        )  # fmt: skip
    ini_help = spec.ini_help if spec.ini_help is not None else f"{spec.help} (like {spec.cli})"
    parser.addini(spec.ini, help=ini_help, default=None)


def add_options(parser: pytest.Parser) -> None:
    for spec in SPECS:
        add_spec(parser, spec)


# ---------------------------------------------------------------------------
# The resolver


@dataclass(frozen=True)
class Source:
    """One raw value of an option and where it came from."""

    raw: str
    #: names the place for a message: "--netcopy-sizes", "environment variable NETCOPY_SIZES",
    #: "ini option netcopy_sizes in /path/tox.ini", "default of --netcopy-sizes"
    phrase: str
    kind: Literal["cli", "env", "ini", "default"]


def given(config: pytest.Config, spec: Spec) -> Iterator[Source]:
    """Every value given for ``spec``, highest precedence first (never the default)."""
    value = config.getoption(spec.ini, None)
    if value is not None:
        yield Source(str(value), spec.cli, "cli")
    if spec.env in os.environ:
        yield Source(os.environ[spec.env], f"environment variable {spec.env}", "env")
    ini = config.getini(spec.ini)
    if ini not in (None, []) and (ini != "" or _refuses_empty(spec)):
        where = f" in {config.inipath}" if config.inipath else ""
        yield Source(str(ini), f"ini option {spec.ini}{where}", "ini")


def _refuses_empty(spec: Spec) -> bool:
    """Whether an empty value is an error (then an empty ini value is the same error; where
    the option takes an empty value, an empty ini line stays unset, as it always was)."""
    try:
        spec.parse("")
    except ValueError:
        return True
    return False


def raw_value(config: pytest.Config, spec: Spec) -> Source:
    """The value that counts: the first given, else the default."""
    for source in given(config, spec):
        return source
    return Source(spec.default, f"default of {spec.cli}", "default")


def parse_value(spec: Spec, source: Source, hint: Callable[[Source], str] | None = None) -> Any:
    """``spec.parse`` of a raw value; a bad one is a UsageError naming its source.

    ``hint(source)`` may add to the message.
    """
    try:
        return spec.parse(source.raw)
    except ValueError as exc:
        extra = hint(source) if hint is not None else ""
        raise pytest.UsageError(f"{source.phrase}={source.raw!r}: {exc}{extra}") from None


def resolve_spec(config: pytest.Config, spec: Spec) -> tuple[Any, Source]:
    """Parse one option (CLI > env > ini > default); a bad value is a UsageError."""
    source = raw_value(config, spec)
    return parse_value(spec, source), source


def resolve(config: pytest.Config) -> tuple[Settings, dict[str, str]]:
    """The benchmark's settings, and the phrase naming each one's source (by field name)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in BENCH_SPECS:
        values[spec.name], source = resolve_spec(config, spec)
        sources[spec.name] = source.phrase
    settings = Settings(**values)
    if settings.peer and not settings.peer_address and not is_ssh(shlex.split(settings.peer)):
        raise pytest.UsageError(
            f"{sources['peer']}={settings.peer!r} needs --netcopy-peer-address=HOST (the "
            "peer's address the senders can reach; only an ssh peer defaults to its "
            "SSH_CONNECTION server address)"
        )
    return settings, sources
