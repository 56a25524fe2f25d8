"""Anchor our request/response round trips against sockperf's on the same CPUs (issue 16).

For each size (64, 4096, 65000 B by default; sockperf 3.7's TCP server drops the
connection at 65536 B, so "64 KiB" is 65,000 B on both sides) each side's round trips
go into one histogram (HdrHistogram, 3 significant digits, the same for every side):

- sockperf: ``sockperf server --tcp`` pinned to CPU 1, ``sockperf ping-pong --tcp -m SIZE
  -t SECONDS --full-rtt --full-log FILE`` pinned to CPU 0; every logged round trip (after
  sockperf's own 400 ms warm-up) goes into the histogram.
- ours: ``pytest benchmarks/ -p no:xdist --netcopy-patterns=rr --netcopy-modes=two_copy
  --netcopy-rr-threads=1 --netcopy-sizes=SIZE --netcopy-response-size=SIZE
  --netcopy-rr-transactions=N`` (sender on CPU 0, sink on CPU 1): its benchmark
  histogram, decoded from the JSON. sockperf's server echoes the whole message, so our
  response is as large as the request.
- ``--plain``: also a bare Python ping-pong (same CPUs and sizes, echo, no checks): the
  floor any Python harness starts from on this machine. Its ratios to sockperf are
  printed, and ours to it (``ours/plain``): what the harness itself adds.

This VM's round trip is mostly an idle vCPU's wake-up and it drifts by 10-25 % within a
minute, with stretches of seconds where the tail is several times longer; two
back-to-back runs compare two machine states as much as two programs. So the sides share
the time finely:

- ``--method time-shared`` (the default): one run of ours (and one of the bare loop) is
  started, and stopped and continued (SIGSTOP/SIGCONT to its process group) in turns of
  ``--quantum`` seconds; between them sockperf runs of ``--seconds``. sockperf is never
  stopped (stopped and continued, its log showed no gap and its run grew longer: its own
  clock cannot be trusted across a stop), so each of its turns is a whole short run
  against one server. Turns go
  in ABBA order (sockperf, ours, bare loop, bare loop, ours, sockperf, ...) until ours has
  finished, so each side samples the same stretches of the machine a second or so apart.
  Only one side ever runs. A round trip in flight when a side is stopped lasts the stop:
  one per turn, about 0.02 % of its round trips, far beyond p99.
- ``--method slices``: whole runs of each side, ``--slices K`` of them per size in ABBA
  order (runs of seconds: a stretch of a bad tail can fall on one side only).

Prints p50/p99 of both and our ratio (``spread``: the lowest and highest p50 of
sockperf's runs); ``--pairs N`` runs N pairs back to back and counts the pairs that met
the issue's bar (p50 within 1.15x, p99 within 1.3x at every size). ``--json`` keeps every
figure and each side's merged histogram (encoded). Needs the Debian package sockperf and
taskset (util-linux).

    python benchmarks/rr_anchor.py --pairs 3 --plain
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from pytest_netcopy.plugin.parsers import positive_float
from pytest_netcopy.transport.rr import new_histogram, record_all

HERE = Path(__file__).resolve().parent
#: the issue's bar: our p50 within 1.15x of sockperf's, our p99 within 1.3x
P50_BAR, P99_BAR = 1.15, 1.3
#: a time-shared pair's size gives up after this long (ours has its own timeouts too)
TIME_SHARED_LIMIT = 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sockperf_server() -> Iterator[int]:
    """``sockperf server --tcp`` on CPU 1 while the block runs: its port."""
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "1", "sockperf", "server", "--tcp", "-i", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def sockperf_client(port: int, size: int, seconds: int) -> list[int]:
    """One ``sockperf ping-pong`` of ``seconds`` on CPU 0: its round trips (ns)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "full.csv"
        proc = subprocess.run(
            ["taskset", "-c", "0", "sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1",
             "-p", str(port), "-m", str(size), "-t", str(seconds), "--full-rtt",
             "--full-log", str(log)],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
        if proc.returncode:
            raise RuntimeError(f"sockperf ping-pong -m {size} failed: {proc.stdout[-400:]}")
        return full_log_round_trips(log.read_text())


def sockperf_slice(size: int, seconds: int) -> list[int]:
    """sockperf ping-pong's round trips (ns), from its full log (``--full-rtt``)."""
    with sockperf_server() as port:
        return sockperf_client(port, size, seconds)


def full_log_round_trips(text: str) -> list[int]:
    """The round trips (ns) in a sockperf ``--full-log`` file written with ``--full-rtt``.

    The file is sockperf's summary, then a header line ``packet, txTime(sec),
    rxTime(sec), rtt(usec)`` and a row per message; its rtt is the whole round trip."""
    if "rtt(usec)" not in text:
        raise RuntimeError(f"sockperf's full log has no rtt column:\n{text[-2000:]}")
    rows = text.split("rtt(usec)", 1)[1].splitlines()
    times = [round(float(r.split(",")[3]) * 1e3) for r in rows if r.count(",") == 3]
    if not times:
        raise RuntimeError(f"sockperf logged no round trips:\n{text[-2000:]}")
    return times


class Stop(Exception):
    """Raised in the bare loop by SIGTERM (the time-shared run's end)."""


def plain_slice(size: int, transactions: int | None) -> list[int]:
    """A bare Python ping-pong on the same CPUs (the floor of any Python harness): ns.

    Server (a forked child) on CPU 1, client on CPU 0, TCP_NODELAY, ``size``-byte requests
    and responses, no checks; 1,000 round trips of warm-up are not kept. ``transactions``
    None: until a :class:`Stop` (the round trip it cut short is not kept)."""
    listener = socket.create_server(("127.0.0.1", 0))
    pid = os.fork()
    if pid == 0:  # the server: answer every request until EOF
        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.sched_setaffinity(0, {1})
            conn = listener.accept()[0]
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            view = memoryview(bytearray(size))
            while (got := conn.recv_into(view, size)) > 0:
                while got < size and (more := conn.recv_into(view[got:], size - got)) > 0:
                    got += more
                conn.sendall(view[:got])
            conn.close()
        except BaseException:
            code = 1
        os._exit(code)
    os.sched_setaffinity(0, {0})
    times: list[int] = []
    try:
        with socket.create_connection(listener.getsockname(), timeout=30) as sock:
            listener.close()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            message, back = bytes(size), memoryview(bytearray(size))
            clock, keep = time.perf_counter_ns, times.append
            rounds = itertools.count() if transactions is None else range(transactions + 1000)
            with contextlib.suppress(Stop):
                for _ in rounds:
                    t0 = clock()
                    sock.sendall(message)
                    got = 0
                    while got < size:
                        got += sock.recv_into(back[got:], size - got)
                    keep(clock() - t0)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        os.waitpid(pid, 0)
    return times[1000:]


def plain_worker(size: int, out: Path) -> int:
    """The bare loop as its own process (time-shared runs): until SIGTERM, then its round
    trips (ns, int64) into ``out``."""

    def stop(signum: int, frame: Any) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, stop)
    times = array("q", plain_slice(size, None))
    with out.open("wb") as file:
        times.tofile(file)
    return 0


def ours_argv(size: int, transactions: int, out: Path, extra: list[str]) -> list[str]:
    """Our rr two_copy at ``size`` over one connection, ``size``-byte responses, JSON to out."""
    return [
        sys.executable, "-m", "pytest", str(HERE), "-p", "no:xdist", "-p", "no:cacheprovider",
        "-q", "--netcopy-patterns=rr", "--netcopy-modes=two_copy", "--netcopy-rr-threads=1",
        f"--netcopy-sizes={size}", f"--netcopy-response-size={size}",
        f"--netcopy-rr-transactions={transactions}", f"--benchmark-json={out}", *extra,
    ]  # fmt: skip


def ours_histogram(out: Path) -> Any:
    """The benchmark histogram of our run's JSON."""
    rr = json.loads(out.read_text())["benchmarks"][0]["extra_info"]["rr"]
    return HdrHistogram.decode(rr["histogram"])


def ours_slice(size: int, transactions: int, extra: list[str]) -> Any:
    """Our rr two_copy at ``size`` over one connection, ``size``-byte responses: its histogram."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rr.json"
        subprocess.run(
            ours_argv(size, transactions, out, extra),
            check=True, stdout=subprocess.DEVNULL, timeout=900,
        )  # fmt: skip
        return ours_histogram(out)


class Paused:
    """A process (group) that runs only in its turns: SIGCONT, ``quantum`` seconds, SIGSTOP.

    Started at its first turn, so it never runs beside another side. A round trip in flight
    when it is stopped lasts the stop: one per turn, far beyond p99 (docs/latency.md)."""

    def __init__(self, name: str, argv: list[str], quantum: float, log: Path) -> None:
        self.name, self.argv, self.quantum, self.log = name, argv, quantum, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.turns = 0

    def turn(self) -> None:
        self.turns += 1
        if self.proc is None:
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(
                    self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        else:
            self._signal(signal.SIGCONT)
        try:
            self.proc.wait(timeout=self.quantum)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGSTOP)

    def finished(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def result(self) -> None:
        """Raise RuntimeError unless it ended with exit status 0."""
        assert self.proc is not None
        if self.proc.returncode:
            tail = self.log.read_text(errors="replace")[-600:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {tail}")

    def end(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 30) -> None:
        """Send ``sig`` to the process (KILL: its group), let it run, wait for the group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                self._signal(sig)
            else:
                self.proc.send_signal(sig)
            self._signal(signal.SIGCONT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._signal(signal.SIGKILL)  # what the group left behind (the sink, a server)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def take_turns(
    turns: list[Callable[[], None]], finished: Callable[[], bool], what: str,
    limit: float = TIME_SHARED_LIMIT,
) -> int:  # fmt: skip
    """Take ``turns`` in ABBA order (A B C, C B A, ...) until ``finished``, checked before
    every turn; RuntimeError naming ``what`` after ``limit`` seconds. The turns taken."""
    deadline, taken = time.monotonic() + limit, 0
    for step in itertools.count():
        for turn in turns if step % 2 == 0 else reversed(turns):
            if finished():
                return taken
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} had not finished after {limit:g} s")
            turn()
            taken += 1
    raise AssertionError("unreachable")


def time_shared(
    size: int, args: argparse.Namespace, tmp: Path
) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, int]]:
    """One pair at ``size``, time-shared: one run of ours (and of the bare loop) stopped and
    continued in turns of ``args.quantum`` s, between them sockperf runs of ``args.seconds``,
    in ABBA order until ours has finished. Each side's histogram, sockperf's runs, turns."""
    out = tmp / f"ours-{size}.json"
    ours = Paused(
        "our pytest run", ours_argv(size, args.transactions, out, args.pytest_args),
        args.quantum, tmp / "ours.log",
    )  # fmt: skip
    plain_out = tmp / f"plain-{size}.bin"
    plain = Paused(
        "the bare loop", [sys.executable, str(Path(__file__).resolve()), "--plain-worker",
                          str(size), str(plain_out)],
        args.quantum, tmp / "plain.log",
    )  # fmt: skip
    runs: list[list[int]] = []
    with sockperf_server() as port:
        turns: list[Callable[[], None]] = [
            lambda: runs.append(sockperf_client(port, size, args.seconds)),
            ours.turn,
        ]
        if args.plain:
            turns.append(plain.turn)
        try:
            take_turns(turns, ours.finished, f"{size} B: our run")
            ours.result()
            plain.end(signal.SIGTERM)
            if args.plain:
                plain.result()
        finally:
            ours.end()
            plain.end()
    got: dict[str, Any] = {"sockperf": merged(runs), "ours": ours_histogram(out)}
    if args.plain:
        got["plain_python"] = merged([list(array("q", plain_out.read_bytes()))])
    done = {"sockperf": len(runs), "ours": ours.turns, "plain_python": plain.turns}
    return got, {"sockperf": runs}, {k: v for k, v in done.items() if k in got}


def percentiles(histogram: Any) -> dict[str, float]:
    return {
        "p50_us": histogram.get_value_at_percentile(50.0) / 1e3,
        "p99_us": histogram.get_value_at_percentile(99.0) / 1e3,
        "transactions": histogram.get_total_count(),
    }


def interleave(arms: dict[str, Callable[[], Any]], slices: int) -> dict[str, list[Any]]:
    """Run each arm ``slices`` times, in ABBA order (A B C, C B A, ...): their slices."""
    got: dict[str, list[Any]] = {name: [] for name in arms}
    names = list(arms)
    for i in range(slices):
        for name in names if i % 2 == 0 else reversed(names):
            got[name].append(arms[name]())
    return got


def as_histogram(slice_: Any) -> Any:
    if isinstance(slice_, list):
        histogram = new_histogram()
        record_all(histogram, slice_)
        return histogram
    return slice_


def merged(slices: list[Any]) -> Any:
    total = new_histogram()
    for one in slices:
        total.add(as_histogram(one))
    return total


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def sizes_list(text: str) -> list[int]:
    """An argparse type: comma-separated sizes, 1..65535 B (sockperf's TCP server drops more)."""
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or not all(1 <= s < 65536 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated sizes of 1..65535 B "
            "(sockperf 3.7's TCP server drops 65,536 B)"
        )
    return sizes


def positive_seconds(text: str) -> float:
    """An argparse type: seconds, more than 0 (the plugin's own check of its seconds)."""
    try:
        return positive_float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, more than 0") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=positive, default=1, help="pairs run back to back")
    parser.add_argument(
        "--sizes", type=sizes_list, default=[64, 4096, 65000], help="request sizes in bytes"
    )
    parser.add_argument(
        "--method", choices=("time-shared", "slices"), default="time-shared",
        help="time-shared (default): one run of ours stopped and continued in turns between "
        "short sockperf runs; slices: whole runs of each side alternated",
    )  # fmt: skip
    parser.add_argument(
        "--quantum", type=positive_seconds, default=0.6,
        help="time-shared: seconds of each turn of ours and the bare loop (default 0.6, "
        "what a 1 s sockperf run keeps after its warm-up)",
    )  # fmt: skip
    parser.add_argument(
        "--slices", type=positive, default=8,
        help="slices: runs per side and size in a pair, alternated ABBA (default 8)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=positive,
        help="sockperf -t per run (whole seconds; it keeps the time after a 400 ms warm-up); "
        "default 1 time-shared, 3 in slices",
    )  # fmt: skip
    parser.add_argument(
        "--transactions", type=positive,
        help="our --netcopy-rr-transactions per run (and the bare loop's in slices); default "
        "288,000 time-shared, 36,000 per slice: about as many round trips as sockperf logs "
        "at this VM's ~70 us (docs/latency.md)",
    )  # fmt: skip
    parser.add_argument(
        "--plain", action="store_true",
        help="also a bare Python ping-pong in every slice: the floor of a Python harness",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("pytest_args", nargs="*", help="more options for our run (after --)")
    args = parser.parse_args(argv)
    shared = args.method == "time-shared"
    if args.seconds is None:
        args.seconds = 1 if shared else 3
    if args.transactions is None:
        args.transactions = 288_000 if shared else 36_000
    for tool in ("sockperf", "taskset"):
        if shutil.which(tool) is None:
            print(f"rr_anchor: {tool} not found (Debian: sockperf, util-linux)", file=sys.stderr)
            return 2
    try:
        return batch(args)
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"rr_anchor: {exc}", file=sys.stderr)
        return 1


def batch(args: argparse.Namespace) -> int:
    """The pairs, each size's slices interleaved; a line per size and pair, the count met."""
    print(f"{'pair':>4} {'size':>6} {'sockperf p50':>12} {'ours p50':>9} {'ratio':>6} "
          f"{'sockperf p99':>12} {'ours p99':>9} {'ratio':>6} {'spread':>11}")  # fmt: skip
    rows, met = [], 0
    for pair in range(1, args.pairs + 1):
        ok = True
        for size in args.sizes:
            if args.method == "time-shared":
                with tempfile.TemporaryDirectory() as tmp:
                    whole, runs, turns = time_shared(size, args, Path(tmp))
                each = {name: [percentiles(as_histogram(one)) for one in r]
                        for name, r in runs.items()}  # fmt: skip
            else:
                arms: dict[str, Callable[[], Any]] = {
                    "sockperf": partial(sockperf_slice, size, args.seconds),
                    "ours": partial(ours_slice, size, args.transactions, args.pytest_args),
                }
                if args.plain:
                    arms["plain_python"] = partial(plain_slice, size, args.transactions)
                got = interleave(arms, args.slices)
                whole = {name: merged(slices) for name, slices in got.items()}
                each = {
                    name: [percentiles(as_histogram(one)) for one in slices]
                    for name, slices in got.items()
                }
                turns = {name: len(slices) for name, slices in got.items()}
            figures = {name: percentiles(h) for name, h in whole.items()}
            ref, ours = figures["sockperf"], figures["ours"]
            r50, r99 = ours["p50_us"] / ref["p50_us"], ours["p99_us"] / ref["p99_us"]
            ok = ok and r50 <= P50_BAR and r99 <= P99_BAR
            spread = [one["p50_us"] for one in each["sockperf"]]
            line = f"{pair:>4} {size:>6} {ref['p50_us']:>12.1f} {ours['p50_us']:>9.1f} {r50:>6.2f} "
            line += f"{ref['p99_us']:>12.1f} {ours['p99_us']:>9.1f} {r99:>6.2f} "
            line += f"{min(spread):>5.0f}-{max(spread):<5.0f}"
            if args.plain:
                plain = figures["plain_python"]
                line += f" plain {plain['p50_us'] / ref['p50_us']:.2f} "
                line += f"{plain['p99_us'] / ref['p99_us']:.2f}"
                # the harness's own cost: ours over the bare loop of the same slices
                line += f" ours/plain {ours['p50_us'] / plain['p50_us']:.2f} "
                line += f"{ours['p99_us'] / plain['p99_us']:.2f}"
            print(line, flush=True)
            rows.append(
                {"pair": pair, "size": size, "method": args.method, "turns": turns,
                 "merged": figures, "slices": each,
                 "histograms": {name: h.encode().decode("ascii") for name, h in whole.items()}}
            )  # fmt: skip
            if args.json:  # after every row: a long batch cut short keeps what it measured
                args.json.write_text(json.dumps(rows, indent=1))
        met += ok
    print(f"pairs within the bar (p50 <= {P50_BAR}x, p99 <= {P99_BAR}x at every size): "
          f"{met} of {args.pairs}")  # fmt: skip
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plain-worker"]:  # time-shared: the bare loop's own process
        sys.exit(plain_worker(int(sys.argv[2]), Path(sys.argv[3])))
    sys.exit(main())
