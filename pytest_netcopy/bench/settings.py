"""The resolved, typed settings of a benchmark session.

The pytest plugin builds one from its options (CLI > environment > ini >
default, every value parsed and checked); the bench layer only reads it. Each
field is named as the option it comes from (``round_time`` is
``--netcopy-round-time``) and in the order of the plugin's option table,
which builds it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    #: message sizes, sender thread counts and mode names of the session's grid
    sizes: list[int]
    threads: list[int]
    modes: list[str]
    #: seconds one calibrated round should last at least
    round_time: float
    rounds: int
    warmup_rounds: int
    #: seconds any socket wait, round or sink start may take
    timeout: float
    #: "auto" (pin senders and the sink to different CPUs) or "off"
    pin: str
    nodelay: bool
    #: "auto", "system" or an algorithm name
    congestion: str
    #: perf events counted on the sender threads (empty: none)
    counters: list[str]
    recv_buffer: int
    user_rounds: int
    #: "bare_send" or "none"
    control: str
    #: a command prefix that runs the sink on the receiving host ("": the local sink)
    peer: str = ""
    peer_python: str = "python3"
    #: where the peer's sink listens ("": an ssh peer's SSH_CONNECTION server address)
    peer_address: str = ""
    #: the peer's CPUs for the sink ("": its last CPU)
    peer_cpus: str = ""
    #: the instruction-count pass (user_instructions_per_message): "on", "off", or "auto"
    #: (on when the gate is on; the plugin resolves it, the bench reads "auto" as off)
    instructions: str = "off"
    #: "sink" (a receiver verifies every byte) or "blackhole" (transmit only: UDP forwarded
    #: out of a namespace into a blackhole route, transport/blackhole.py; root only)
    target: str = "sink"
    #: the patterns of the grid: "stream" and/or "rr" (request/response, issue 16)
    patterns: tuple[str, ...] = ("stream", "rr")
    #: request/response: connection counts, response size, rates per connection (empty:
    #: closed loop), TCP_NODELAY, and the fewest transactions a benchmark's measured rounds hold
    rr_threads: tuple[int, ...] = (1, 4)
    response_size: int = 64
    rr_rate: tuple[float, ...] = ()
    rr_nodelay: bool = True
    rr_transactions: int = 20_000
    #: UDP senders' pace per flow: ("bits_per_second" | "datagrams_per_second", value), or
    #: None: calibrated to the sink (bench/udprate.py)
    udp_rate: tuple[str, float] | None = None
