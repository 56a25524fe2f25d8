"""The link to the other end: the interface, its MTU, driver, speed and offloads.

Standard library only and importing nothing from the package: a pipe peer
(``transport/pipe.py``) ships this file's source ahead of the sink's, so the
sink's start-up report carries its side of the link; Python 3.8+. Read from
``/sys/class/net/IF`` and the legacy ``ETHTOOL_G*`` ioctls (``linux/ethtool.h``)
on an ``AF_INET`` socket; no ``ethtool`` binary. None: not known.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct

SIOCGIFADDR = 0x8915
SIOCETHTOOL = 0x8946
#: the legacy ethtool "get" commands of the offloads the send path's cost hangs on
OFFLOADS = {"sg": 0x18, "tso": 0x1E, "gso": 0x23, "gro": 0x2B, "tx-checksumming": 0x16}


def owner_of(address: str) -> str | None:
    """The interface holding ``address`` (IPv4: SIOCGIFADDR; IPv6: /proc/net/if_inet6)."""
    if ":" in address:
        want = socket.inet_pton(socket.AF_INET6, address).hex()
        with contextlib.suppress(OSError), open("/proc/net/if_inet6", encoding="ascii") as f:
            return next((w[5] for w in map(str.split, f) if w[0] == want), None)
        return None
    packed = socket.inet_aton(address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                ifreq = fcntl.ioctl(s, SIOCGIFADDR, struct.pack("40s", name.encode()))
                if ifreq[20:24] == packed:  # struct sockaddr_in at offset 16
                    return name
    return None


def source_for(destination: str) -> str | None:
    """This host's address on the route to ``destination`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((destination, 9))
        except OSError:
            return None
        return str(s.getsockname()[0])


def offload(s: socket.socket, name: str, command: int) -> bool | None:
    """One legacy ETHTOOL_G* feature of interface ``name``; None when the driver says nothing."""
    value = (ctypes.c_uint32 * 2)(command, 0)  # struct ethtool_value {cmd, data}
    ifreq = struct.pack("16sP24x", name.encode(), ctypes.addressof(value))
    try:
        fcntl.ioctl(s, SIOCETHTOOL, ifreq)  # the kernel fills ``value`` through the pointer
    except OSError:
        return None
    return bool(value[1])


def link_facts(address: str) -> dict[str, object]:
    """The interface holding ``address``: MTU, driver, speed (Mb/s), offloads."""
    name = owner_of(address)
    out: dict[str, object] = {"address": address, "interface": name, "mtu": None, "speed": None}
    out.update(dict.fromkeys(("driver", *OFFLOADS)))
    if name is None:
        return out
    base = f"/sys/class/net/{name}/"
    for key in ("mtu", "speed"):
        with contextlib.suppress(OSError, ValueError), open(base + key, encoding="ascii") as f:
            value = int(f.read())
            out[key] = value if value > 0 else None  # speed -1: unknown
    with contextlib.suppress(OSError):
        out["driver"] = os.path.basename(os.readlink(base + "device/driver"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for key, command in OFFLOADS.items():
            out[key] = offload(s, name, command)
    return out


def route_facts(destination: str) -> dict[str, object]:
    """This side of the link to ``destination``: :func:`link_facts` of the route's source."""
    source = source_for(destination)
    if source is None:
        return {"address": None, "interface": None}
    return link_facts(source)
