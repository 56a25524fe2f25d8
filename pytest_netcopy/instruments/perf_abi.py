"""The perf_event_open ABI: syscall boundary, ``perf_event_attr``, sysfs/procfs.

Everything that touches the kernel goes through a :class:`PerfSys` (open /
ioctl / read / close, errors as :class:`OSError` with ``errno``), so the logic
in :mod:`pytest_netcopy.instruments.counters` runs unchanged against a fake in tests. The
sysfs/procfs readers here take their root directory as a parameter for the
same reason; :class:`TracepointKeeper` is fd bookkeeping on the same boundary.
Layout and constants: docs/perf-counters.md (checked with offsetof).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import platform
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

SYSCALL_NUMBERS = {"x86_64": 298, "aarch64": 241, "arm64": 241}

# perf_event_attr (6.3+ layout, 136 bytes; older kernels accept it while the tail is zero)
ATTR_SIZE = 136
OFF_TYPE, OFF_SIZE, OFF_CONFIG, OFF_READ_FORMAT, OFF_FLAGS = 0, 4, 8, 32, 40
OFF_SAMPLE_PERIOD, OFF_SAMPLE_TYPE = 16, 24
FLAG_DISABLED = 1 << 0
FLAG_INHERIT = 1 << 1
FLAG_EXCLUDE_KERNEL = 1 << 5
FLAG_EXCLUDE_HV = 1 << 6

FORMAT_TOTAL_TIME_ENABLED = 1
FORMAT_TOTAL_TIME_RUNNING = 2
FORMAT_ID = 4
FORMAT_GROUP = 8
GROUP_READ_FORMAT = FORMAT_TOTAL_TIME_ENABLED | FORMAT_TOTAL_TIME_RUNNING | FORMAT_ID | FORMAT_GROUP

IOC_ENABLE = 0x2400
IOC_DISABLE = 0x2401
IOC_RESET = 0x2403
IOC_FLAG_GROUP = 1  # never used: see docs/perf-counters.md (members of other PMUs read 0)
PERF_FLAG_FD_CLOEXEC = 8

TYPE_HARDWARE, TYPE_SOFTWARE, TYPE_TRACEPOINT, TYPE_HW_CACHE, TYPE_RAW = 0, 1, 2, 3, 4
PMU_TYPE_SHIFT = 32  # extended hardware type: config = pmu_type << 32 | id (5.13+)

TRACEFS_ROOTS = ("kernel/tracing", "kernel/debug/tracing")  # relative to the sysfs root
SYSCALL_NAME = re.compile(r"[a-z0-9_]+")

# errno at open -> what it means; any other errno is a real error (ESRCH, EMFILE, ...)
UNSUPPORTED_ERRNOS = frozenset({errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL, errno.ENODEV})
DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM})


class PerfSys(Protocol):
    """The syscall boundary. Each method raises OSError (with errno) on failure."""

    def open(self, attr: bytes, pid: int, cpu: int, group_fd: int, flags: int) -> int: ...

    def ioctl(self, fd: int, request: int, arg: int) -> None: ...

    def read(self, fd: int, nbytes: int) -> bytes: ...

    def close(self, fd: int) -> None: ...


class RingMemory(Protocol):
    """A sampling event's mapped ring buffer: readable and writable bytes, closable."""

    def __getitem__(self, index: slice) -> bytes: ...

    def __setitem__(self, index: slice, value: bytes) -> None: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class SamplingSys(PerfSys, Protocol):
    """The boundary for sampling events: PerfSys plus mapping an event's ring buffer."""

    def mmap(self, fd: int, length: int) -> RingMemory: ...


@dataclass(frozen=True)
class EventDef:
    """One event to open: a name, the perf type and config."""

    name: str
    type: int
    config: int

    @property
    def hardware(self) -> bool:
        return self.type in (TYPE_HARDWARE, TYPE_HW_CACHE)

    def on_pmu(self, pmu_type: int) -> EventDef:
        """The same event on one core PMU of a hybrid CPU (extended type, Linux 5.13+)."""
        return EventDef(self.name, self.type, (pmu_type << PMU_TYPE_SHIFT) | self.config)


def syscall_number(machine: str) -> int:
    """perf_event_open's number for ``platform.machine()``; RuntimeError elsewhere."""
    try:
        return SYSCALL_NUMBERS[machine]
    except KeyError:
        known = ", ".join(sorted(SYSCALL_NUMBERS))
        raise RuntimeError(
            f"perf_event_open: unsupported architecture {machine!r} (supported: {known})"
        ) from None


class CtypesPerfSys:
    """The real boundary: libc ``syscall(2)`` through ctypes, plus os/fcntl."""

    def __init__(self, machine: str | None = None) -> None:
        self._nr = syscall_number(platform.machine() if machine is None else machine)
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        self._syscall.restype = ctypes.c_long

    def open(self, attr: bytes, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        buf = ctypes.create_string_buffer(attr, len(attr))  # the kernel may write size back
        ctypes.set_errno(0)
        fd = int(
            self._syscall(
                ctypes.c_long(self._nr),
                buf,
                ctypes.c_long(pid),
                ctypes.c_long(cpu),
                ctypes.c_long(group_fd),
                ctypes.c_ulong(flags),
            )
        )
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"perf_event_open: {os.strerror(err)}")
        return fd

    def ioctl(self, fd: int, request: int, arg: int) -> None:
        fcntl.ioctl(fd, request, arg)

    def read(self, fd: int, nbytes: int) -> bytes:
        return os.read(fd, nbytes)

    def close(self, fd: int) -> None:
        os.close(fd)

    def mmap(self, fd: int, length: int) -> RingMemory:
        return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def pack_attr(
    type_: int,
    config: int,
    *,
    disabled: bool = False,
    inherit: bool = False,
    exclude_kernel: bool = False,
    exclude_hv: bool = False,
    read_format: int = GROUP_READ_FORMAT,
    sample_period: int = 0,
    sample_type: int = 0,
) -> bytes:
    """A ``struct perf_event_attr``, native byte order: counting, or sampling every
    ``sample_period`` (events; ns for the clock events) when that is > 0."""
    flags = (
        (FLAG_DISABLED if disabled else 0)
        | (FLAG_INHERIT if inherit else 0)
        | (FLAG_EXCLUDE_KERNEL if exclude_kernel else 0)
        | (FLAG_EXCLUDE_HV if exclude_hv else 0)
    )
    buf = bytearray(ATTR_SIZE)
    struct.pack_into("=I", buf, OFF_TYPE, type_)
    struct.pack_into("=I", buf, OFF_SIZE, ATTR_SIZE)
    struct.pack_into("=Q", buf, OFF_CONFIG, config)
    struct.pack_into("=Q", buf, OFF_READ_FORMAT, read_format)
    struct.pack_into("=Q", buf, OFF_SAMPLE_PERIOD, sample_period)
    struct.pack_into("=Q", buf, OFF_SAMPLE_TYPE, sample_type)
    struct.pack_into("=Q", buf, OFF_FLAGS, flags)
    return bytes(buf)


@dataclass(frozen=True)
class GroupRead:
    """One PERF_FORMAT_GROUP read: times in ns, ``(value, id)`` per event in group order."""

    time_enabled: int
    time_running: int
    values: tuple[tuple[int, int], ...]


def group_read_size(nr: int) -> int:
    return 8 * (3 + 2 * nr)


def parse_group_read(data: bytes) -> GroupRead:
    if len(data) < 24:
        raise ValueError(f"short perf group read: {len(data)} bytes")
    nr, enabled, running = struct.unpack_from("=QQQ", data)
    if len(data) < group_read_size(nr):
        raise ValueError(f"short perf group read: {len(data)} bytes for {nr} events")
    flat = struct.unpack_from(f"={2 * nr}Q", data, 24)
    pairs = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(nr))
    return GroupRead(enabled, running, pairs)


@dataclass(frozen=True)
class CorePmu:
    name: str
    type: int
    cpus: str  # as in sysfs, e.g. "0-15"; "" for the plain ``cpu`` PMU


def discover_core_pmus(sysfs_root: str | Path = "/sys") -> list[CorePmu]:
    """Core (CPU) PMUs: ``cpu``, or each PMU with a ``cpus`` file (hybrid, arm).

    Uncore PMUs have ``cpumask`` instead of ``cpus`` and are left out, as are
    ``software``, ``tracepoint`` and friends. Unreadable entries are skipped.
    """
    devices = Path(sysfs_root) / "bus" / "event_source" / "devices"
    found = []
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name != "cpu" and not (entry / "cpus").exists():
            continue
        type_ = _read_int(entry / "type")
        if type_ is None:
            continue
        found.append(CorePmu(entry.name, type_, _read_text(entry / "cpus") or ""))
    return found


def tracepoint_id(name: str, sysfs_root: str | Path = "/sys") -> int | str:
    """The id of tracepoint ``<subsystem>/<event>``, or why not.

    Returns ``"not permitted"`` when tracefs is there but unreadable (root-only
    by default) and ``"not supported"`` when no mounted tracefs has the event.
    """
    status = "not supported"
    for rel in TRACEFS_ROOTS:
        root = Path(sysfs_root) / rel
        try:
            return int((root / "events" / name / "id").read_text().strip())
        except PermissionError:
            status = "not permitted"
        except (OSError, ValueError):
            continue
    return status


#: why syscalls went uncounted when no tracefs is mounted (the counts say ``not supported``)
TRACEFS_NOT_MOUNTED = "tracefs not mounted"
TRACEFS_HINTS = {
    TRACEFS_NOT_MOUNTED: "syscall counts need tracefs: mount -t tracefs nodev /sys/kernel/tracing "
    "(as root)",
    "not permitted": "tracefs is root-only here: run as root or make /sys/kernel/tracing readable",
}


def tracefs_problem(
    sysfs_root: str | Path = "/sys", listdir: Callable[[Path], object] = os.listdir
) -> str | None:
    """Why no tracepoint can be read: ``"tracefs not mounted"`` (no ``events`` under any
    tracefs root), ``"not permitted"`` (one is there but unreadable), else None."""
    problem = TRACEFS_NOT_MOUNTED
    for rel in TRACEFS_ROOTS:
        try:
            listdir(Path(sysfs_root) / rel / "events")
        except PermissionError:
            problem = "not permitted"
        except OSError:
            continue
        else:
            return None
    return problem


def tracefs_hint(
    sysfs_root: str | Path = "/sys", listdir: Callable[[Path], object] = os.listdir
) -> str | None:
    """The one-line reason and fix when tracefs cannot be read, else None."""
    problem = tracefs_problem(sysfs_root, listdir)
    if problem is None:
        return None
    return f"syscalls not counted ({problem}): {TRACEFS_HINTS[problem]}"


def read_procfs_int(procfs_root: str | Path, rel: str) -> int | None:
    return _read_int(Path(procfs_root) / rel)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def syscall_tracepoint_ids(names: Iterable[str], sysfs_root: str | Path) -> dict[str, int | str]:
    """``{name: id of syscalls/sys_enter_<name>, or the status string of tracepoint_id}``."""
    ids: dict[str, int | str] = {}
    for name in names:
        if not SYSCALL_NAME.fullmatch(name):
            raise ValueError(f"not a syscall name: {name!r}")
        ids[name] = tracepoint_id(f"syscalls/sys_enter_{name}", sysfs_root)
    return ids


def perf_machine_info(
    sysfs_root: str | Path = "/sys", procfs_root: str | Path = "/proc"
) -> dict[str, int | bool | list[str] | None]:
    """Run-level facts: perf_event_paranoid, the core PMUs, whether the NMI watchdog
    (which holds one hardware counter) is on. None where unreadable."""
    watchdog = read_procfs_int(procfs_root, "sys/kernel/nmi_watchdog")
    return {
        "kernel.perf_event_paranoid": read_procfs_int(
            procfs_root, "sys/kernel/perf_event_paranoid"
        ),
        "pmus": [p.name for p in discover_core_pmus(sysfs_root)],
        "nmi_watchdog": None if watchdog is None else watchdog != 0,
    }


class TracepointKeeper:
    """Keeps one disabled fd per syscall tracepoint open, for a whole session.

    Closing the last perf fd of a syscall tracepoint costs ~40 ms, and while any
    is open every syscall on the machine takes the slow path (12-14% on a send
    loop): hold them only across the untimed syscall passes, then close.
    """

    def __init__(self, sys: PerfSys | None = None, sysfs_root: str | Path = "/sys") -> None:
        self._sys: PerfSys = CtypesPerfSys() if sys is None else sys
        self._sysfs_root = sysfs_root
        self._fds: dict[str, int] = {}

    def hold(self, names: Iterable[str]) -> None:
        """Open a disabled event (pid 0: the calling thread) for each syscall not yet held.

        The tracepoint stays registered while the fd is open, even after that
        thread exits. Names without a readable tracepoint are skipped.
        """
        wanted = [n for n in names if n not in self._fds]
        for name, tp in syscall_tracepoint_ids(wanted, self._sysfs_root).items():
            if isinstance(tp, int):
                attr = pack_attr(TYPE_TRACEPOINT, tp, disabled=True)
                self._fds[name] = self._sys.open(attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC)

    @property
    def held(self) -> tuple[str, ...]:
        return tuple(self._fds)

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            self._sys.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
