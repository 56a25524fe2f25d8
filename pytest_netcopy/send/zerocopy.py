"""MSG_ZEROCOPY completion accounting.

Every successful ``sendmsg(..., MSG_ZEROCOPY)`` on a socket gets the next
32-bit id (starting at 0, wrapping). The kernel reports completions on the
socket's error queue as ``struct sock_extended_err`` with origin
``SO_EE_ORIGIN_ZEROCOPY``: one notification covers the inclusive id range
``ee_info..ee_data`` (many sends coalesced into one notification, the range may
wrap past 2**32), and ``ee_code & SO_EE_CODE_ZEROCOPY_COPIED`` says the kernel
copied the data after all (always so on loopback and veth).

:class:`CompletionTracker` is pure bookkeeping over unwrapped 64-bit ids, so
it is property-tested without a socket.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

SO_ZEROCOPY = 60  # asm-generic; x86, arm and most others
MSG_ZEROCOPY = 0x4000000
SO_EE_ORIGIN_ZEROCOPY = 5
SO_EE_CODE_ZEROCOPY_COPIED = 1
IP_RECVERR = 11
IPV6_RECVERR = 25
SOL_IP = 0
SOL_IPV6 = 41
# struct sock_extended_err: ee_errno u32, ee_origin u8, ee_type u8, ee_code u8,
# ee_pad u8, ee_info u32, ee_data u32
EXTENDED_ERR = struct.Struct("=IBBBBII")
ID_MASK = 0xFFFFFFFF


class ZeroCopyError(RuntimeError):
    """The kernel's notifications do not add up (a bug here or in the kernel)."""


@dataclass(frozen=True)
class Notification:
    lo: int  # ee_info, 32-bit
    hi: int  # ee_data, 32-bit, inclusive
    copied: bool


def parse_errqueue_cmsgs(ancdata: list[tuple[int, int, bytes]]) -> list[Notification]:
    """Zero-copy notifications in the ancillary data of one MSG_ERRQUEUE read.

    Raises ZeroCopyError for an error-queue entry that is not a zero-copy
    completion (e.g. a real socket error), with its errno and origin.
    """
    out = []
    for level, kind, data in ancdata:
        if (level, kind) not in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
            continue
        errno_, origin, _type, code, _pad, info, data_ = EXTENDED_ERR.unpack_from(data)
        if origin != SO_EE_ORIGIN_ZEROCOPY or errno_ != 0:
            raise ZeroCopyError(
                f"unexpected error-queue entry: errno {errno_}, origin {origin}, code {code}"
            )
        out.append(Notification(info, data_, bool(code & SO_EE_CODE_ZEROCOPY_COPIED)))
    return out


class CompletionTracker:
    """Which zero-copy sends on one socket have completed.

    ``issue()`` hands out the id of the next successful send; ``add()`` takes
    one notification. ``done_below`` is the low-water mark: every id below it
    has completed, so a buffer whose last send id is below it may be reused.
    """

    def __init__(self) -> None:
        self.issued = 0
        self.done_below = 0
        self._ranges: list[tuple[int, int]] = []  # disjoint, sorted, half-open, above the mark
        self.completions = 0  # ids completed (each counted once)
        self.copied = 0  # ids whose notification said the kernel copied
        self.notifications = 0

    def issue(self) -> int:
        ident = self.issued
        self.issued += 1
        return ident

    @property
    def outstanding(self) -> int:
        return self.issued - self.completions

    def unwrap(self, ident32: int) -> int:
        """The issued id, nearest below the next one, whose low 32 bits are ``ident32``."""
        last = self.issued - 1
        return last - ((last - ident32) & ID_MASK)

    def add(self, note: Notification) -> int:
        """Account one notification; returns how many sends it completed."""
        length = ((note.hi - note.lo) & ID_MASK) + 1
        start = self.unwrap(note.lo)
        end = start + length  # half-open
        if start < 0 or end > self.issued:
            raise ZeroCopyError(
                f"completion for ids {note.lo}..{note.hi} but only {self.issued} sends issued"
            )
        if start < self.done_below or self._overlaps(start, end):
            raise ZeroCopyError(f"ids {note.lo}..{note.hi} completed twice")
        self.notifications += 1
        self.completions += length
        if note.copied:
            self.copied += length
        index = bisect.bisect_left(self._ranges, (start, end))
        self._ranges.insert(index, (start, end))
        self._merge_from_mark()
        return length

    def _overlaps(self, start: int, end: int) -> bool:
        index = bisect.bisect_left(self._ranges, (start, end))
        if index < len(self._ranges) and self._ranges[index][0] < end:
            return True
        return index > 0 and self._ranges[index - 1][1] > start

    def _merge_from_mark(self) -> None:
        ranges = self._ranges
        drop = 0
        while drop < len(ranges) and ranges[drop][0] == self.done_below:
            self.done_below = ranges[drop][1]
            drop += 1
        if drop:
            del ranges[:drop]

    def all_complete(self) -> bool:
        return self.done_below == self.issued
