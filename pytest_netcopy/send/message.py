"""The message: 8 separately allocated fields, stamped per send.

The wire format (template, stamp place) is defined once, in :mod:`.sink`; this
module builds the sender's side of it.
"""

from __future__ import annotations

import struct

from pytest_netcopy.sink.wire import FIELDS, STAMP_MASK, check_size, message_template

__all__ = ["FIELDS", "Message", "check_size", "stamp_into"]

#: ``stamp_into(field0, 0, seq & STAMP_MASK)`` writes a message's sequence stamp.
stamp_into = struct.Struct("<I").pack_into


class Message:
    """One message of ``size`` bytes as 8 heap-allocated fields of ``size/8`` bytes.

    ``fields`` are independent bytearrays (as a C struct of 8 pointers would
    be); ``views`` are memoryviews of them, ready to be an iovec.
    """

    __slots__ = ("field_size", "fields", "size", "views")

    def __init__(self, conn_id: int, size: int) -> None:
        check_size(size)
        self.size = size
        self.field_size = size // FIELDS
        template = message_template(conn_id, size)
        f = self.field_size
        self.fields = [bytearray(template[i * f : (i + 1) * f]) for i in range(FIELDS)]
        self.views = [memoryview(b) for b in self.fields]

    def copy(self) -> Message:
        """Another message with its own 8 fields, same content (no template rebuild)."""
        other = Message.__new__(Message)
        other.size, other.field_size = self.size, self.field_size
        other.fields = [bytearray(f) for f in self.fields]
        other.views = [memoryview(b) for b in other.fields]
        return other

    def stamp(self, seq: int) -> None:
        stamp_into(self.fields[0], 0, seq & STAMP_MASK)

    def release(self) -> None:
        for v in self.views:
            v.release()

    def tobytes(self) -> bytes:
        return b"".join(self.fields)
