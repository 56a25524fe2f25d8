"""The terminal summary after a sweep: the report's notes, and why syscalls went uncounted."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from test_tables import result

from pytest_netcopy.plugin.summary import syscall_hint, write_summary
from pytest_netcopy.report.document import report_notes


class FakeTerminal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append(title)

    def write_line(self, line: str, **markup: bool) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def fake_session(results: list[dict[str, Any]]) -> Any:
    return cast(
        Any,
        SimpleNamespace(
            results=results,
            hints=set(),
            refused_strangers=lambda: 0,
            probe=None,
            settings=SimpleNamespace(congestion="system", nodelay=False, target="sink"),
        ),
    )


def sweep(**zero: Any) -> list[dict[str, Any]]:
    zc = result("zero_copy", 4096, 1, 2.0)
    zc["zerocopy"].update(zero)
    return [result("two_copy", 4096, 1, 3.0), zc]


def summary(results: list[dict[str, Any]], sysfs_root: Path) -> str:
    tr = FakeTerminal()
    write_summary(tr, fake_session(results), sysfs_root=sysfs_root)
    return tr.text


def readable_tracefs(tmp_path: Path) -> Path:
    (tmp_path / "sys" / "kernel" / "tracing" / "events").mkdir(parents=True)
    return tmp_path / "sys"


def test_summary_prints_the_reports_enobufs_and_all_copied_notes(tmp_path: Path) -> None:
    results = sweep(completions=10, copied=10, enobufs=3)
    notes = report_notes(results)
    assert any("ENOBUFS 3 times" in n for n in notes)
    assert any("100% of completions flagged COPIED" in n for n in notes)
    text = summary(results, readable_tracefs(tmp_path))
    for note in notes:
        assert f"netcopy: {note}" in text


def test_summary_has_no_notes_when_the_report_has_none(tmp_path: Path) -> None:
    results = sweep(completions=10, copied=0, enobufs=0)
    assert report_notes(results) == []
    text = summary(results, readable_tracefs(tmp_path))
    assert "ENOBUFS" not in text
    assert "COPIED" not in text


def uncounted(status: str) -> list[dict[str, Any]]:
    syscalls = {"sendto": None, "total": None, "not_counted": {"sendto": status}}
    return [result("two_copy", 4096, 1, 3.0, syscalls_per_message=syscalls)]


def test_summary_says_tracefs_is_not_mounted_and_how_to_mount_it(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    (sysfs / "kernel" / "tracing").mkdir(parents=True)
    text = summary(uncounted("not supported"), sysfs)
    assert (
        "netcopy: syscalls not counted (tracefs not mounted): syscall counts need tracefs: "
        "mount -t tracefs nodev /sys/kernel/tracing (as root)"
    ) in text


def test_syscall_hint_for_root_only_tracefs(tmp_path: Path) -> None:
    sysfs = readable_tracefs(tmp_path)

    def denied(path: Path) -> object:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    hint = syscall_hint(uncounted("not permitted"), sysfs, listdir=denied)
    assert hint == (
        "syscalls not counted (not permitted): tracefs is root-only here: "
        "run as root or make /sys/kernel/tracing readable"
    )


def test_no_syscall_hint_when_counted_or_tracefs_readable(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    counted = [result("two_copy", 4096, 1, 3.0, syscalls_per_message={"sendto": 1.0})]
    assert syscall_hint(counted, bare, listdir=os.listdir) is None
    assert syscall_hint(uncounted("not supported"), readable_tracefs(tmp_path)) is None
    assert "syscalls not counted" not in summary(counted, bare)
