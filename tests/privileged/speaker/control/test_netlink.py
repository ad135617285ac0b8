"""The rtnetlink reader against the kernel, in a network namespace of its own: the same interfaces as pyroute2 sees,
and the events a link or address change sends."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import subprocess
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from pyroute2 import IPRoute

from ironlb.speaker.control.interfaces import InterfaceTracker, Skip, all_macs, classify, lost_carrier, usable
from ironlb.speaker.control.netlink import LINK_AND_ADDRESS_GROUPS, Message, RtNetlink
from tests.privileged.wire import inside

pytestmark = pytest.mark.privileged  # root, network namespaces and ip(8)

EXCLUDE = {"pb0"}
# A small node, as ip(8) arguments run in order. Only documentation prefixes; fe80:: is link-local.
SETUP = [
    "link set lo up",
    "link add up0 type veth peer name up1",             # a node's uplink veth (addressed) and its bare peer
    "link add nc0 type veth peer name nc1",             # nc1 stays down: nc0 is up without carrier
    "link add pa0 type veth peer name pb0",             # pa0 is a bridge port; pb0 is excluded by name
    "link add vethx0 type veth peer name vethx1",       # CNI names
    "link add br0 type bridge",
    "link add link up0 name mv0 type macvlan",          # a device stacked on another
    "link add vx0 type vxlan id 42 dstport 4789",       # a tunnel
    "tuntap add tp0 mode tap",                          # a tap nobody holds open: up, no carrier, a virtual kind
    "link set pa0 master br0",
    *(f"link set {dev} up" for dev in ("up0", "up1", "nc0", "pa0", "pb0", "vethx0", "vethx1", "br0", "mv0", "vx0",
                                       "tp0")),
    "addr add 192.0.2.10/24 dev up0",
    "addr add fe80::10/64 dev up0 nodad",
    "addr add 198.51.100.5/24 dev nc0",
    "addr add 203.0.113.1/24 dev br0",
    "addr add 2001:db8::5/64 dev mv0 nodad",
]
# Kinds some kernels are built without (then left out): a dummy (a virtual kind) and a VLAN on the uplink.
OPTIONAL = {
    "dm0": ("link add dm0 type dummy", "link set dm0 up", "addr add 2001:db8::1/64 dev dm0 nodad"),
    "up0.100": ("link add link up0 name up0.100 type vlan id 100", "link set up0.100 up",
                "addr add 192.0.2.100/24 dev up0.100"),
}


def ip(netns: str, args: str) -> None:
    subprocess.run(["ip", "-n", netns, *args.split()], check=True, capture_output=True, timeout=30)


def supported(netns: str, add: str) -> bool:
    """Run ADD (a `link add`); False if this kernel lacks the kind."""
    done = subprocess.run(["ip", "-n", netns, *add.split()], capture_output=True, text=True, timeout=30)
    if done.returncode and "Unknown device type" in done.stderr:
        return False
    done.check_returncode()
    return True


@contextlib.contextmanager
def namespace(tag: str) -> Iterator[str]:
    """A fresh network namespace, deleted afterwards whatever happens."""
    netns = f"ilb-{tag}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True, timeout=30)
    try:
        yield netns
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)


def derived(links: list[Any], addrs: list[Any]) -> tuple:
    """What interfaces.py makes of LINKS and ADDRS, and the attributes it reads, per link and address."""
    addressed = {a["index"] for a in addrs if (v := a.get_attr("IFA_ADDRESS")) and not v.startswith("fe80:")}
    per_link = sorted((lk["index"], lk["flags"], lk.get_attr("IFLA_IFNAME"), lk.get_attr("IFLA_ADDRESS"),
                       lk.get_attr("IFLA_MASTER"), lk.get_attr("IFLA_CARRIER"), lk.get_attr("IFLA_OPERSTATE"),
                       (lk.get_attr("IFLA_LINKINFO") or Message()).get_attr("IFLA_INFO_KIND"),
                       classify(lk, addressed, EXCLUDE)) for lk in links)
    per_addr = sorted((a["index"], a["family"], a["prefixlen"], a["scope"], a.get_attr("IFA_ADDRESS"),
                       a.get_attr("IFA_LOCAL"), a.get_attr("IFA_LABEL")) for a in addrs)
    return usable(links, addrs, EXCLUDE), lost_carrier(links, addrs, EXCLUDE), all_macs(links), per_link, per_addr


def ours() -> tuple:
    with RtNetlink() as netlink:
        return derived(netlink.links(), netlink.addresses())


def pyroute2s() -> tuple:
    with IPRoute() as ipr:
        return derived(list(ipr.get_links()), list(ipr.get_addr()))


def test_the_reader_sees_what_pyroute2_sees() -> None:
    with namespace("nl") as netns:
        for args in SETUP:
            ip(netns, args)
        extra = {name for name, (add, *_) in OPTIONAL.items() if supported(netns, add)}
        for name in extra:
            for args in OPTIONAL[name][1:]:
                ip(netns, args)
        with inside(netns):
            for _ in range(50):  # carrier and operstate settle asynchronously: compare a moment both agree on
                before, theirs, after = ours(), pyroute2s(), ours()
                if before == after:
                    break
        assert before == theirs
    found, no_carrier, macs, per_link, _ = before
    assert {n for n, i in found.items() if i.by_default} == {"up0", "mv0"} | ({"up0.100"} & extra)
    assert {n for n, i in found.items() if not i.by_default} == {"up1", "vethx0", "vethx1"}
    assert found["up0"].link_local == "fe80::10" and no_carrier == {"nc0"}
    reasons = {name: why for _, _, name, *_, why in per_link}
    mac_of = {name: mac for _, _, name, mac, *_ in per_link}
    assert {bytes.fromhex(mac_of[n].replace(":", "")) for n in ("up0", "nc1", "pb0")} <= macs  # used or not
    assert {reasons[n] for n in ("br0", "vx0", *({"dm0"} & extra))} == {Skip.VIRTUAL_KIND}
    assert (reasons["pa0"], reasons["tp0"]) == (Skip.BRIDGE_PORT, Skip.NO_CARRIER)
    assert (reasons["nc1"], reasons["pb0"], reasons["lo"]) == (Skip.DOWN, Skip.EXCLUDED, Skip.LOOPBACK)


def wait_for(netlink: RtNetlink, want: set[tuple[str, str]], timeout: float = 5.0) -> set[tuple[str, str]]:
    """Read events until WANT, as (event, name), were all seen; what was seen of them."""
    seen: set[tuple[str, str]] = set()
    while want - seen and select.select([netlink], [], [], timeout)[0]:
        seen |= {(m["event"], m.get_attr("IFLA_IFNAME") or m.get_attr("IFA_LABEL") or "") for m in netlink.events()}
    return seen & want


def test_links_and_addresses_added_and_removed_are_events() -> None:
    with namespace("nlev") as netns, inside(netns), RtNetlink.events_socket() as netlink:
        ip(netns, "link add ev0 type veth peer name ev1")
        ip(netns, "addr add 192.0.2.7/24 dev ev0")
        added = {("RTM_NEWLINK", "ev0"), ("RTM_NEWADDR", "ev0")}
        assert wait_for(netlink, added) == added
        ip(netns, "link del ev0")
        removed = {("RTM_DELADDR", "ev0"), ("RTM_DELLINK", "ev0"), ("RTM_DELLINK", "ev1")}
        assert wait_for(netlink, removed) == removed


def burst(netns: str, names: Iterable[str]) -> None:
    batch = "".join(f"link add {n}a type veth peer name {n}b\n" for n in names)
    subprocess.run(["ip", "-n", netns, "-batch", "-"], input=batch, text=True, check=True, capture_output=True,
                   timeout=30)


def test_events_lost_to_a_full_buffer_surface_as_enobufs() -> None:
    with namespace("nlbuf") as netns, inside(netns), RtNetlink(LINK_AND_ADDRESS_GROUPS, rcvbuf=1) as netlink:
        burst(netns, (f"d{i}" for i in range(32)))  # far more than the smallest buffer holds, unread
        with pytest.raises(OSError) as raised:
            for _ in range(64):
                assert select.select([netlink], [], [], 5.0)[0], "no event and no error"
                netlink.events()
        assert raised.value.errno == errno.ENOBUFS


async def test_the_tracker_follows_a_new_interface() -> None:
    loop = asyncio.get_running_loop()
    changes: asyncio.Queue[dict] = asyncio.Queue()
    with namespace("nltr") as netns, inside(netns):
        tracker = InterfaceTracker(loop, changes.put_nowait)
        assert tracker.start() == {}  # the thread follows events in this namespace: it was started in it
        ip(netns, "link add tr0 type veth peer name tr1")
        ip(netns, "addr add 203.0.113.9/24 dev tr0")
        for dev in ("tr0", "tr1"):
            ip(netns, f"link set {dev} up")
        while "tr0" not in (found := await asyncio.wait_for(changes.get(), 5.0)) or not found["tr0"].by_default:
            pass
        assert found["tr0"].index == tracker.current["tr0"].index
        tracker.stop()
        ip(netns, "link del tr0")  # the event that lets the thread see the stop, close its socket and end
        tracker._thread.join(5.0)
        assert not tracker._thread.is_alive()
