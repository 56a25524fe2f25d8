"""The sender threads' user-mode CPU time per byte, sampled in untimed rounds.

Why a figure of its own: the sender's own code (the copies, the framing, the
Python loop) runs in user mode; the kernel's network path runs in kernel
mode. On our VM the speed of the kernel path moves by tens of percent in
spells (docs/gate.md), and it drags every whole-thread figure with it. The
user-mode part does not move with it: 64 KiB two_copy measured 0.023-0.026
user ns per byte in four processes while its kernel part ran at 0.17 or 0.23,
and one more copy of each message raised it by 51-79% (the whole-thread CPU
per byte by 10%). So ``user_cpu_ns_per_byte`` is what a change to the sender's
own code moves, and little else does.

How: a counting ``task-clock`` ignores ``exclude_kernel`` (measured: the same
count with ``:u`` and ``:k``), a *sampling* one honours it. So one task-clock
event per sender thread samples every ``SAMPLE_PERIOD_NS`` of the thread's
CPU time with ``exclude_kernel=1``: only samples that interrupt user mode are
written. Each sample record is its 8-byte header (``sample_type`` 0) in the
event's ring buffer, drained after every round; user time ~ samples x period.
A throttled event (``PERF_RECORD_THROTTLE``) skipped samples, and a full ring
dropped some (the kernel reports those in a ``PERF_RECORD_LOST`` only once it
can store again, possibly in a later round): either way the figure is
withheld (status ``throttled`` or ``lost``), not guessed. The ring holds 4096
samples, ~0.4 s of user time per thread per round, so neither should happen.

Cost: a 10 kHz timer per thread slowed rounds by 16-21% on our VM (timer
interrupts exit to the host), so these rounds are never measured ones: they
run after the measured rounds, like the syscall pass (both in bench/passes.py;
this module only switches the samplers around a round and reads them).
"""

from __future__ import annotations

import errno
import mmap
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Self

from pytest_netcopy.instruments.perf_abi import (
    DENIED_ERRNOS,
    IOC_DISABLE,
    IOC_ENABLE,
    PERF_FLAG_FD_CLOEXEC,
    TYPE_SOFTWARE,
    UNSUPPORTED_ERRNOS,
    CtypesPerfSys,
    RingMemory,
    SamplingSys,
    pack_attr,
)
from pytest_netcopy.instruments.status import NOT_COUNTED, NOT_PERMITTED, NOT_SUPPORTED, OK

#: one sample per 100 us of a thread's CPU time: ~60 samples in the user part
#: of a 50 ms round at 64 KiB, hundreds at 4 KiB
SAMPLE_PERIOD_NS = 100_000
#: data pages of each ring (a power of two): 8 x 4 KiB holds 4096 samples,
#: a thread running 0.4 s of user time in one round
RING_PAGES = 8
TASK_CLOCK = 1

# struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size (4.1+)
META_HEAD = 1024
META_TAIL = 1032
META_LAYOUT = struct.Struct("=QQQQ")
RECORD_HEADER = struct.Struct("=IHH")  # type, misc, size
RECORD_LOST, RECORD_THROTTLE, RECORD_SAMPLE = 2, 5, 9

PERMISSION_HINT = (
    "sampling the sender threads needs kernel.perf_event_paranoid <= 2 (user-mode samples "
    "of one's own threads) and room under kernel.perf_event_mlock_kb for the ring buffers"
)


@dataclass
class Drained:
    """What one drain of a ring buffer found."""

    samples: int = 0
    lost: int = 0
    throttled: int = 0
    #: rounds whose ring was (nearly) full when drained: samples may have been
    #: dropped that no LOST record has reported yet
    full: int = 0

    def __add__(self, other: Drained) -> Drained:
        return Drained(
            self.samples + other.samples,
            self.lost + other.lost,
            self.throttled + other.throttled,
            self.full + other.full,
        )

    def add(self, other: Drained) -> None:
        """Count ``other`` in too."""
        self.samples += other.samples
        self.lost += other.lost
        self.throttled += other.throttled
        self.full += other.full

    @property
    def taken(self) -> int:
        """Samples the kernel took: stored ones and the ones it reported dropping."""
        return self.samples + self.lost


class SamplerError(Exception):
    """The samplers could not be switched or read; the pass gives no figure."""


def _ring_bytes(mem: RingMemory, offset: int, size: int, pos: int, n: int) -> bytes:
    start = pos % size
    if start + n <= size:
        return mem[offset + start : offset + start + n]
    first = mem[offset + start : offset + size]
    return first + mem[offset : offset + n - len(first)]


def drain(mem: RingMemory, page_size: int = mmap.PAGESIZE) -> Drained:
    """Count the records between the ring's tail and head, then free them.

    Called only while the event is disabled, so the kernel is not writing.
    """
    head, tail, offset, size = META_LAYOUT.unpack(mem[META_HEAD : META_HEAD + META_LAYOUT.size])
    if size == 0:  # kernels before 4.1: the data pages follow the first page
        offset, size = page_size, len(mem) - page_size
    out = Drained()
    if head - tail > size - 64:  # no room left for the next records: some were dropped
        out.full = 1
    pos = tail
    while pos < head:
        kind, _misc, length = RECORD_HEADER.unpack(_ring_bytes(mem, offset, size, pos, 8))
        if length < RECORD_HEADER.size or pos + length > head:
            raise ValueError(f"perf ring buffer: a record of {length} bytes at {pos} (head {head})")
        if kind == RECORD_SAMPLE:
            out.samples += 1
        elif kind == RECORD_LOST:  # u64 id, u64 lost
            out.lost += struct.unpack("=QQ", _ring_bytes(mem, offset, size, pos + 8, 16))[1]
        elif kind == RECORD_THROTTLE:
            out.throttled += 1
        pos += length
    mem[META_TAIL : META_TAIL + 8] = struct.pack("=Q", head)
    return out


class UserTime:
    """A user-mode-only sampling task-clock on each of some threads."""

    def __init__(
        self,
        tids: Sequence[int],
        *,
        period_ns: int = SAMPLE_PERIOD_NS,
        sys: SamplingSys | None = None,
        pages: int = RING_PAGES,
        page_size: int = mmap.PAGESIZE,
    ) -> None:
        self.tids = list(tids)
        self.period_ns = period_ns
        self.sys: SamplingSys = CtypesPerfSys() if sys is None else sys
        self.pages = pages
        self.page_size = page_size
        self.fds: list[int] = []
        self.rings: list[RingMemory] = []
        self.status = NOT_COUNTED
        self.reason: str | None = None

    def open(self) -> None:
        attr = pack_attr(
            TYPE_SOFTWARE, TASK_CLOCK, disabled=True, exclude_kernel=True, exclude_hv=True,
            read_format=0, sample_period=self.period_ns,
        )  # fmt: skip
        step = "perf_event_open"
        try:
            for tid in self.tids:
                step = "perf_event_open"
                fd = self.sys.open(attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC)
                self.fds.append(fd)
                step = "mmap of its ring buffer"
                self.rings.append(self.sys.mmap(fd, (1 + self.pages) * self.page_size))
        except OSError as exc:
            self.close()
            code = exc.errno
            if code in DENIED_ERRNOS:
                self.status = NOT_PERMITTED
                hint = f" ({PERMISSION_HINT})"
            elif code in UNSUPPORTED_ERRNOS:
                self.status, hint = NOT_SUPPORTED, ""
            else:
                self.status, hint = NOT_COUNTED, ""
            name = errno.errorcode.get(code, str(exc)) if code else str(exc)
            self.reason = f"{step} of a user-mode task-clock sampler: {name}{hint}"
            return
        self.status = OK

    @contextmanager
    def region(self) -> Iterator[Drained]:
        """``with sampler.region() as got: <round>``: the samplers on around exactly the round.

        ``got`` holds what they recorded, all threads together, once the block
        has run. The block's own errors pass through; the samplers' (switching
        them, a record that makes no sense) are a SamplerError.
        """
        got = Drained()
        try:
            for ring in self.rings:
                drain(ring, self.page_size)  # nothing should be there; never count it
            for fd in self.fds:
                self.sys.ioctl(fd, IOC_ENABLE, 0)
        except (OSError, ValueError) as exc:
            self._disable()
            raise SamplerError(f"switching the samplers on: {exc}") from None
        try:
            yield got
        finally:
            disabled = self._disable()
        if disabled is not None:
            raise SamplerError(f"switching the samplers off: {disabled}")
        try:
            for ring in self.rings:
                got.add(drain(ring, self.page_size))
        except ValueError as exc:
            raise SamplerError(str(exc)) from None

    def _disable(self) -> OSError | None:
        """Switch every sampler off; the first error, if any (after trying them all)."""
        first = None
        for fd in self.fds:
            try:
                self.sys.ioctl(fd, IOC_DISABLE, 0)
            except OSError as exc:
                first = first or exc
        return first

    def close(self) -> None:
        rings, fds = self.rings, self.fds
        self.rings, self.fds = [], []
        for ring in rings:
            with suppress(OSError, ValueError, BufferError):
                ring.close()
        for fd in fds:
            with suppress(OSError):
                self.sys.close(fd)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
