"""The message format, stamping and the sink's verification, without sockets."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_netcopy.send.message import Message
from pytest_netcopy.sink import PARTS
from pytest_netcopy.sink import wire as sink
from pytest_netcopy.transport.pipe import shipped_source

sizes = st.integers(min_value=8, max_value=2048).map(lambda n: n * 8)


def stream(conn_id: int, size: int, first: int, count: int) -> bytearray:
    message = Message(conn_id, size)
    out = bytearray()
    for seq in range(first, first + count):
        message.stamp(seq)
        out += message.tobytes()
    message.release()
    return out


@settings(max_examples=60, deadline=None)
@given(
    size=sizes,
    conn_id=st.integers(0, 2**32 - 1),
    first=st.one_of(st.integers(0, 2**20), st.integers(2**32 - 600, 2**32 - 1)),
    count=st.integers(1, 40),
)
def test_stamped_messages_verify_intact(size: int, conn_id: int, first: int, count: int) -> None:
    data = stream(conn_id, size, first, count)
    verifier = sink.Verifier(conn_id, size, capacity=max(size * count, size))
    assert verifier.check(data, count, first) is None


@settings(max_examples=80, deadline=None)
@given(
    size=sizes,
    count=st.integers(1, 20),
    first=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_any_flipped_byte_is_located(
    size: int, count: int, first: int, data: st.DataObject
) -> None:
    buf = stream(7, size, first, count)
    index = data.draw(st.integers(0, len(buf) - 1))
    flip = data.draw(st.integers(1, 255))
    original = buf[index]
    buf[index] ^= flip
    found = sink.Verifier(7, size, capacity=size * count).check(buf, count, first)
    assert found == (index, original, original ^ flip)


def test_a_later_stamp_is_caught_in_field_zero() -> None:
    """A buffer rewritten with the next message's stamp before it went out."""
    size = 256
    buf = stream(1, size, 100, 3)
    buf[size : 2 * size] = stream(1, size, 102, 1)  # message 101 carries 102's stamp
    index, expected, received = sink.Verifier(1, size, size * 3).check(buf, 3, 100)
    assert index == size  # message 101, offset 0: the low stamp byte
    assert (expected, received) == (101 & 0xFF, 102 & 0xFF)


def test_fields_and_connections_differ() -> None:
    """A field sent in the wrong place, or from another connection, cannot pass."""
    t = sink.message_template(3, 1024)
    fields = [t[i * 128 : (i + 1) * 128] for i in range(8)]
    assert len(set(fields)) == 8
    assert sink.message_template(4, 1024) != t
    assert sink.message_template(3, 2048)[:1024] != t


@pytest.mark.parametrize("size", [0, 8, 56, 100, 1001])
def test_unusable_sizes_are_refused_with_the_reason(size: int) -> None:
    with pytest.raises(ValueError, match=rf"message size {size} B: expected a multiple of 8"):
        Message(0, size)


@pytest.mark.parametrize("part", ["__init__", "__main__", *PARTS])
def test_sink_imports_only_the_standard_library(part: str) -> None:
    """Each part of the sink: the standard library, and the sink's own earlier parts."""
    tree = ast.parse(Path(sink.__file__).with_name(f"{part}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the sink"
            module = node.module or ""
            if module.startswith("pytest_netcopy"):
                assert module.startswith("pytest_netcopy.sink."), module
                earlier = PARTS[: PARTS.index(part)] if part in PARTS else PARTS
                assert module.rsplit(".", 1)[1] in earlier, f"{part} imports a later part"
            else:
                imported.add(module.split(".")[0])
    outside = sorted(m for m in imported if m not in sys.stdlib_module_names and m != "__future__")
    assert outside == []


def test_the_shipped_sink_imports_nothing_from_the_package() -> None:
    tree = ast.parse(shipped_source())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in modules if m and m.startswith("pytest_netcopy")]
    assert tree.body[-1].test.comparators[0].value == "__main__"  # type: ignore[attr-defined]


def test_a_buffer_larger_than_65536_messages_verifies() -> None:
    """kmax above 65536 (e.g. --netcopy-recv-buffer=8M at 64 B) needs the long stamp column."""
    size, k, first = 64, 70_000, 65_000
    verifier = sink.Verifier(1, size, 8 << 20)
    assert verifier.kmax > 65_536
    assert verifier.check(stream(1, size, first, k), k, first) is None
