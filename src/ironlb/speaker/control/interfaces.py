"""Usable interfaces and the node's own MACs, tracked from rtnetlink events (netlink.py), not by polling."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from ironlb.common.throttle import Throttle
from ironlb.speaker.control.netlink import RtNetlink
from ironlb.speaker.fast.announcer import Interface
from ironlb.speaker.fast.l2.responder import MacSet

log = logging.getLogger(__name__)
IFF_UP, IFF_LOOPBACK, IFF_LOWER_UP = 0x1, 0x8, 0x10000
MAC_MEMORY_S = 10.0  # a deleted link's frames may still sit in a socket queue: its MAC stays "ours" this long
AF_INET6 = 10
# Kinds that never face the clients' segment: bridges themselves and tunnels/virtual devices.
EXCLUDED_KINDS = {"bridge", "vxlan", "geneve", "ipip", "gre", "sit", "tun", "wireguard", "dummy", "bond_slave"}
# Interfaces CNI plugins create per pod or for their own plumbing; never announced on unless an
# L2Advertisement names them.
CNI_PREFIXES = ("veth", "cali", "lxc", "cilium_", "flannel", "cni", "weave", "vxlan", "kube-ipvs", "nodelocaldns",
                "tunl", "docker", "genev", "antrea", "ovn-k8s", "kube-bridge", "nvkind")


class Skip(Enum):
    """Why an interface is not used (or not used by default)."""

    EXCLUDED = "excluded-by-flag"
    NOT_ETHERNET = "not-ethernet"
    LOOPBACK = "loopback"
    DOWN = "down"
    NO_CARRIER = "no-carrier"        # up, but the cable (or the veth's peer) is gone: nobody hears us there
    BRIDGE_PORT = "bridge-port"
    VIRTUAL_KIND = "virtual-kind"
    CNI_NAME = "cni-name"            # by default only
    VETH_WITHOUT_ADDRESS = "pod-veth"  # by default only: a node's uplink veth carries the node's address


def _mac_bytes(mac: str | None) -> bytes | None:
    try:
        raw = bytes.fromhex((mac or "").replace(":", ""))
    except ValueError:
        return None
    return raw if len(raw) == 6 else None


def excluded(name: str, patterns: Iterable[str]) -> bool:
    """Is interface NAME excluded by one of PATTERNS (exact names or shell globs: `docker*`, `eth[23]`)?"""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def classify(link: Any, addressed: set[int], exclude: set[str], ignore_carrier: bool = False) -> Skip | None:
    """None if the link is announced on by default; else why not (IGNORE_CARRIER: as if it had carrier)."""
    name, mac = link.get_attr("IFLA_IFNAME"), link.get_attr("IFLA_ADDRESS")
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    flags = link["flags"]
    checks = (
        (not name or excluded(name, exclude), Skip.EXCLUDED),
        (not mac or len(mac) != 17, Skip.NOT_ETHERNET),
        (flags & IFF_LOOPBACK, Skip.LOOPBACK),
        (not flags & IFF_UP, Skip.DOWN),
        (not ignore_carrier and not flags & IFF_LOWER_UP, Skip.NO_CARRIER),
        (link.get_attr("IFLA_MASTER"), Skip.BRIDGE_PORT),
        (kind in EXCLUDED_KINDS, Skip.VIRTUAL_KIND),
        (name and name.startswith(CNI_PREFIXES), Skip.CNI_NAME),
        (kind == "veth" and link["index"] not in addressed, Skip.VETH_WITHOUT_ADDRESS),
    )
    return next((why for failed, why in checks if failed), None)


OPTIONAL = {Skip.CNI_NAME, Skip.VETH_WITHOUT_ADDRESS}  # usable when named explicitly


def usable(links: Iterable, addrs: Iterable, exclude: set[str]) -> dict[str, Interface]:
    """Interfaces worth answering on: up, Ethernet, not loopback, not a bridge or a bridge port.

    CNI interfaces (pod veths and the like) are included with `by_default=False`: used only where an
    L2Advertisement names them."""
    link_local: dict[int, str] = {}
    addressed: set[int] = set()  # interfaces with an address a neighbour could use (not link-local)
    for a in addrs:
        addr = a.get_attr("IFA_ADDRESS")
        if a["family"] == AF_INET6 and addr and addr.startswith("fe80:"):
            link_local.setdefault(a["index"], addr)
        elif addr:
            addressed.add(a["index"])
    out: dict[str, Interface] = {}
    for link in links:
        why = classify(link, addressed, exclude)
        if why is None or why in OPTIONAL:
            name = link.get_attr("IFLA_IFNAME")
            out[name] = Interface(name, link["index"], link.get_attr("IFLA_ADDRESS"), link_local.get(link["index"]),
                                  by_default=why is None)
    return out


def lost_carrier(links: Iterable, addrs: Iterable, exclude: set[str]) -> frozenset[str]:
    """Interfaces that would be announced on by default but have no carrier (self-fencing reads this)."""
    addressed = {a["index"] for a in addrs if (v := a.get_attr("IFA_ADDRESS")) and not v.startswith("fe80:")}
    return frozenset(link.get_attr("IFLA_IFNAME") for link in links
                     if classify(link, addressed, exclude) is Skip.NO_CARRIER
                     and classify(link, addressed, exclude, ignore_carrier=True) is None)


def all_macs(links: Iterable) -> set[bytes]:
    """The MAC of every link, used or not (a frame from any of them is our own)."""
    return {m for link in links if (m := _mac_bytes(link.get_attr("IFLA_ADDRESS")))}


class InterfaceTracker:
    """Calls `on_change(interfaces)` on the loop whenever the usable set changes; keeps `macs` current."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[dict[str, Interface]], None],
                 exclude: Iterable[str] = (), macs: MacSet | None = None) -> None:
        self.loop, self.on_change, self.exclude = loop, on_change, set(exclude)
        self.macs = macs or MacSet()
        self.current: dict[str, Interface] = {}
        self.no_carrier: frozenset[str] = frozenset()  # default interfaces that lost carrier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netlink", daemon=True)
        self._errors = Throttle(30.0)
        self._seen: dict[bytes, float] = {}  # MAC -> when a link last had it

    def start(self) -> dict[str, Interface]:
        """Read the interfaces now, then follow netlink events in the background."""
        self.current = self._read()
        self._thread.start()
        return self.current

    def _read(self) -> dict[str, Interface]:
        with RtNetlink() as nl:
            links, addrs = nl.links(), nl.addresses()
            fresh = usable(links, addrs, self.exclude)
            self.no_carrier = lost_carrier(links, addrs, self.exclude)
        now = time.monotonic()
        for mac in all_macs(links):
            self._seen[mac] = now
        self._seen = {m: t for m, t in self._seen.items() if now - t < MAC_MEMORY_S}
        self.macs.macs = frozenset(self._seen)
        return fresh

    def _run(self) -> None:
        with RtNetlink.events_socket() as nl:
            while not self._stop.is_set():
                try:
                    changed = bool(nl.events())  # only link and address messages: any of them may change the set
                except Exception:  # e.g. ENOBUFS when events come faster than we read: some were lost
                    if self._errors.allow("events") is not None:
                        log.warning("netlink events lost; reading the interfaces again", exc_info=True)
                    changed = True
                    time.sleep(0.1)  # a socket that keeps failing must not spin a core
                if not changed:
                    continue
                try:
                    fresh = self._read()
                except Exception:  # links vanish mid-dump under churn: never let the thread die
                    if self._errors.allow("read") is not None:
                        log.warning("reading the interfaces failed; trying again at the next event", exc_info=True)
                    continue
                if fresh != self.current:
                    self.current = fresh
                    self.loop.call_soon_threadsafe(self.on_change, dict(fresh))

    def stop(self) -> None:
        """Stop following events (the thread ends at the next event)."""
        self._stop.set()
