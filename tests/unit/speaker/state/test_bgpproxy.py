"""Paths on the carriers' behalf through the speaker's BGP feed: which next hop each node sends the router for a
Cluster and a Local Service, how the alive set moves them, and how FRR is told (render and read back)."""

from __future__ import annotations

import pytest

from ironlb.core.bgp.diff import NetworkAdded, diff
from ironlb.core.bgp.model import Announcement, Attributes, Desired, Peer
from ironlb.speaker.bgp.readback import read_desired
from ironlb.speaker.bgp.render import render
from tests.unit.speaker.control.test_bgpfeed import CLUSTER_IP, LOCAL_IP, World
from tests.unit.speaker.state.test_incremental import node

ADDRESS = {"n1": "192.0.2.1", "n2": "192.0.2.2", "n3": "192.0.2.3"}
EVERYONE = frozenset(ADDRESS)


def proxy_world(me: str, alive: frozenset[str] = EVERYONE) -> World:
    """The feed's test world (Cluster Service with an endpoint on n2, Local one on n2), nodes at their own
    addresses, the option on."""
    world = World(me=me)
    world.feed.proxy_next_hops = True
    for index, (name, zone) in enumerate((("n1", "a"), ("n2", "a"), ("n3", "b")), start=1):
        world.event("nodes", "MODIFIED", node(name, zone=zone, address=index))
    follow(world, alive)
    return world


def follow(world: World, alive: frozenset[str]) -> set[str] | None:
    """A pass with ALIVE as the fast plane's alive set; the prefixes it touched."""
    world.view.set_alive(alive)
    world.view.publish()
    world.feed.follow(world.view, world.view.take_changed(), alive)
    return world.take()


def next_hops(world: World) -> dict[str, str | None]:
    """Prefix -> the next hop this node sends the router."""
    return {prefix: attrs.next_hop for (_, prefix), attrs in world.routes().items()}


@pytest.mark.parametrize(("me", "expected"), [
    # The ring n1 n2 n3: each carries the one before it. Local: n2 alone has an endpoint, the others carry it.
    ("n1", {f"{CLUSTER_IP}/32": ADDRESS["n3"], f"{LOCAL_IP}/32": ADDRESS["n2"]}),
    ("n2", {f"{CLUSTER_IP}/32": ADDRESS["n1"]}),
    ("n3", {f"{CLUSTER_IP}/32": ADDRESS["n2"], f"{LOCAL_IP}/32": ADDRESS["n2"]}),
])
async def test_no_node_sends_its_own_next_hop(me: str, expected: dict[str, str]) -> None:
    assert next_hops(proxy_world(me)) == expected


async def test_a_death_the_heartbeats_saw_moves_the_paths_over_live_sessions_at_once() -> None:
    world = proxy_world("n1")
    touched = follow(world, EVERYONE - {"n3"})  # no Service or slice changed: only the alive set
    assert next_hops(world) == {f"{CLUSTER_IP}/32": ADDRESS["n2"], f"{LOCAL_IP}/32": ADDRESS["n2"]}
    assert touched == {f"{CLUSTER_IP}/32"}
    follow(world, EVERYONE)
    assert next_hops(world)[f"{CLUSTER_IP}/32"] == ADDRESS["n3"]


async def test_the_last_survivor_sends_its_own_path() -> None:
    world = proxy_world("n1", frozenset({"n1"}))
    assert next_hops(world) == {f"{CLUSTER_IP}/32": None}


async def test_off_each_node_sends_only_its_own_path() -> None:
    world = World()
    assert next_hops(world) == {f"{CLUSTER_IP}/32": None}


def test_frr_gets_the_next_hop_in_the_prefixs_route_map_and_reads_it_back() -> None:
    peer = Peer("tor", 64513, 64512, address="192.0.2.254")
    attrs = Attributes.of(200, next_hop=ADDRESS["n3"])
    desired = Desired.of([peer], announcements=[Announcement(f"{CLUSTER_IP}/32", frozenset({"tor"}), attrs)])
    commands = [c for batch in render(diff(Desired(), desired)) for c in batch.commands]
    assert f"route-map ILB-A-{attrs.group} permit 10" in commands and f"set ip next-hop {ADDRESS['n3']}" in commands
    assert Attributes.of(200).group != attrs.group  # a path moved to another node's next hop is one command
    assert [c for c in diff(desired, Desired.of([peer], announcements=[Announcement(
        f"{CLUSTER_IP}/32", frozenset({"tor"}), Attributes.of(200))])) if isinstance(c, NetworkAdded)]
    running = "\n".join(["router bgp 64513", " neighbor 192.0.2.254 remote-as 64512",
                         " neighbor 192.0.2.254 description ilb:tor", " !",
                         " address-family ipv4 unicast",
                         f"  network {CLUSTER_IP}/32 route-map ILB-A-{attrs.group}",
                         "  neighbor 192.0.2.254 activate",
                         "  neighbor 192.0.2.254 route-map ILB-IN in",
                         "  neighbor 192.0.2.254 route-map ILB-OUT-tor out",
                         " exit-address-family", "exit", "!",
                         f"route-map ILB-A-{attrs.group} permit 10", " set local-preference 200",
                         f" set ip next-hop {ADDRESS['n3']}", "exit", "!"])
    assert read_desired(running).announcements == desired.announcements
