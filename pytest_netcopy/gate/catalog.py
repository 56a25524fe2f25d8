"""The names a gate rule may use: every metric a netcopy result can record, and modes.

A metric is a number in a benchmark's extra_info (docs/results-schema.md),
named by its key; dots walk into objects. A rule naming anything else could
never judge a row, so :func:`check_rules` refuses it (a misspelt
``throughput_gpbs`` would otherwise pass every time as "not comparable").
Likewise a rule's ``@MODE`` must name a known mode, where the caller knows
them (the plugin's mode registry, or the modes of the two runs compared).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pytest_netcopy.gate.rules import Rule

__all__ = ["METRICS", "RR_FIGURES", "check_rules", "is_metric"]

#: the perf events the counters issue records (instruments/counters.py EVENTS)
_EVENTS = (
    "task-clock", "context-switches", "cpu-migrations", "page-faults", "cycles",
    "instructions", "cache-misses", "L1-dcache-load-misses", "LLC-load-misses",
)  # fmt: skip
#: the sink reports only these (thread CPU time and context switches)
_SINK_EVENTS = ("task-clock", "context-switches")
#: a counter's numbers
_COUNTER_FIELDS = ("value", "running_fraction")
#: the syscalls the untimed syscall pass counts (bench/passes.py), plus their total
_SENDER_SYSCALLS = ("total", "sendto", "sendmsg", "recvmsg", "poll", "setsockopt")
_SINK_SYSCALLS = ("total", "recvfrom")


#: the request/response figures (``extra_info["rr"]``), single values per benchmark
_RR_FIELDS = (
    "transactions", "transactions_per_second", "p50_us", "p90_us", "p99_us", "p999_us",
    "p9999_us", "max_us", "mean_us", "stddev_us",
)  # fmt: skip
#: the figures only a request/response result records: a rule on them judges only those
RR_FIGURES = ("rr_p50_us", "rr_p99_us", "rr")


#: top-level metric -> None (a number) or what may follow it: a mapping of the
#: next name to what may follow that. An object with a ``total`` may stand alone.
METRICS: Mapping[str, Mapping[str, object] | None] = {
    **dict.fromkeys(
        (
            "throughput_gbps", "throughput_gbps_per_connection", "ns_per_message",
            "messages_per_second", "messages_per_round", "messages_per_connection",
            "bytes_per_round", "steal_ms", "cpu_ns_per_byte", "sink_cpu_ns_per_byte",
            "cycles_per_byte", "instructions_per_byte", "ipc", "context_switches_per_mb",
            "user_cpu_ns_per_byte", "throughput_vs_control", "cpu_vs_control",
            "sink_recv_buffer", "round_target_seconds",
            "user_instructions_per_message",
            # issue 16: request/response, per-round lists in rounds.rr_p50_us / rr_p99_us
            "rr_p50_us", "rr_p99_us",
        )
    ),
    "rr": dict.fromkeys(_RR_FIELDS),
    "syscalls_per_message": dict.fromkeys(_SENDER_SYSCALLS),
    "sink_syscalls_per_message": dict.fromkeys(_SINK_SYSCALLS),
    "counters": {e: dict.fromkeys(_COUNTER_FIELDS) for e in _EVENTS},
    "sink_counters": {e: dict.fromkeys(_COUNTER_FIELDS) for e in _SINK_EVENTS},
    "zerocopy": dict.fromkeys(
        ("sends", "completions", "copied", "enobufs", "notifications", "copied_fraction")
    ),
    "integrity": dict.fromkeys(("verified_bytes",)),
    "control": dict.fromkeys(
        ("messages_per_round", "throughput_gbps", "cpu_ns_per_byte", "verified_bytes")
    ),
    "user_time": dict.fromkeys(("rounds", "sample_period_ns", "samples", "lost", "throttled")),
}  # fmt: skip


def is_metric(name: str) -> bool:
    """Whether ``name`` names a number a netcopy result can record."""
    node: object = METRICS
    parts = name.split(".")
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    # a number, or an object compared by its total
    return node is None or (isinstance(node, Mapping) and "total" in node)


def _expected_metrics() -> str:
    objects = [k for k, v in METRICS.items() if v is not None and "total" not in v]
    return (
        f"expected one of: {', '.join(METRICS)} (dots walk into objects, e.g. "
        f"syscalls_per_message.sendmsg, counters.task-clock.value; {', '.join(objects)} "
        "need a name after a dot)"
    )


def check_rules(rules: Iterable[Rule], modes: Sequence[str] | None = None) -> None:
    """Raise ValueError naming the first rule with an unknown metric, or (when ``modes``
    is given) an unknown mode."""
    for rule in rules:
        if not is_metric(rule.metric):
            raise ValueError(
                f"bad gate rule {str(rule)!r}: unknown metric {rule.metric!r}; "
                f"{_expected_metrics()}"
            )
        unknown = [m for m in rule.modes if modes is not None and m not in modes]
        if unknown:
            raise ValueError(
                f"bad gate rule {str(rule)!r}: unknown mode {unknown[0]!r}; expected modes "
                f"from: {', '.join(modes or ())}"
            )
