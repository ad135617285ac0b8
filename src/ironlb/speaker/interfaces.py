"""Usable interfaces, tracked from netlink events (pyroute2), not by polling."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable

from pyroute2 import IPRoute

from ironlb.speaker.announcer import Interface

log = logging.getLogger(__name__)
IFF_UP, IFF_LOOPBACK = 0x1, 0x8
# Kinds that never face the clients' segment: bridges themselves and tunnels/virtual devices.
EXCLUDED_KINDS = {"bridge", "vxlan", "geneve", "ipip", "gre", "sit", "tun", "wireguard", "dummy", "bond_slave"}


def usable(links: Iterable, addrs: Iterable, exclude: set[str]) -> dict[str, Interface]:
    """Interfaces worth answering on: up, Ethernet, not loopback, not a bridge or a bridge port."""
    link_local: dict[int, str] = {}
    for a in addrs:
        addr = a.get_attr("IFA_ADDRESS")
        if a["family"] == 10 and addr and addr.startswith("fe80:"):
            link_local.setdefault(a["index"], addr)
    out: dict[str, Interface] = {}
    for link in links:
        name, mac = link.get_attr("IFLA_IFNAME"), link.get_attr("IFLA_ADDRESS")
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        if (not name or name in exclude or not mac or len(mac) != 17 or link["flags"] & IFF_LOOPBACK
                or not link["flags"] & IFF_UP or link.get_attr("IFLA_MASTER") or kind in EXCLUDED_KINDS):
            continue
        out[name] = Interface(name, link["index"], mac, link_local.get(link["index"]))
    return out


class InterfaceTracker:
    """Calls `on_change(interfaces)` on the loop whenever the usable set changes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[dict[str, Interface]], None],
                 exclude: Iterable[str] = ()) -> None:
        self.loop, self.on_change, self.exclude = loop, on_change, set(exclude)
        self.current: dict[str, Interface] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netlink", daemon=True)

    def start(self) -> dict[str, Interface]:
        """Read the interfaces now, then follow netlink events in the background."""
        with IPRoute() as ipr:
            self.current = usable(ipr.get_links(), ipr.get_addr(), self.exclude)
        self._thread.start()
        return self.current

    def _run(self) -> None:
        with IPRoute() as ipr:
            ipr.bind()  # link and address groups
            while not self._stop.is_set():
                try:
                    events = ipr.get()
                except Exception:
                    log.warning("netlink read failed", exc_info=True)
                    continue
                if not any(e["event"] in ("RTM_NEWLINK", "RTM_DELLINK", "RTM_NEWADDR", "RTM_DELADDR")
                           for e in events):
                    continue
                with IPRoute() as query:
                    fresh = usable(query.get_links(), query.get_addr(), self.exclude)
                if fresh != self.current:
                    self.current = fresh
                    self.loop.call_soon_threadsafe(self.on_change, dict(fresh))

    def stop(self) -> None:
        """Stop following events (the thread ends at the next event)."""
        self._stop.set()
