"""BGP mode's feed: from BGP objects, Services, slices and nodes to this node's Desired, the prefixes each change
touched, the BGPAnnounced condition of the Services it writes, and an Event per new config problem."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from ironlb.api.conditions import bgp_announced_in
from ironlb.api.constants import BGP_PASSWORD_SECRET_TYPE
from ironlb.api.reasons import BGPAnnounceReason, BGPConfigReason, ConditionType
from ironlb.common.named_secrets import SYNCED
from ironlb.core.bgp.diff import PeerChanged, diff
from ironlb.core.bgp.model import Attributes, Desired
from ironlb.core.election import elect
from ironlb.speaker.control.bgpfeed import BgpFeed
from ironlb.speaker.control.status import StatusReporter
from ironlb.speaker.state.bgpview import carriers
from ironlb.speaker.state.incremental import IncrementalDesired
from tests.unit.speaker.state.test_incremental import endpoint_slice, node, pool, service

ME = "n1"
ALIVE = frozenset({"n1", "n2", "n3"})
CLUSTER_IP, LOCAL_IP = "203.0.113.1", "203.0.113.2"


class Api:
    """Records condition patches."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def patch(self, resource: Any, name: str, body: dict[str, Any], namespace: str, **_: Any) -> dict[str, Any]:
        self.patches.append((name, body))
        return {}


class Recorder:
    """Records Events."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, Any, str]] = []

    def submit(self, ref: Any, reason: Any, message: str, **_: Any) -> None:
        self.events.append((ref, reason, message))

    async def record(self, ref: Any, reason: Any, message: str, **_: Any) -> None:
        self.events.append((ref, reason, message))


class Driver:
    """Records each Desired handed to FRR's driver and the prefixes it said were touched."""

    def __init__(self) -> None:
        self.calls: list[tuple[Desired, set[str] | None]] = []

    async def update(self, desired: Desired, touched: set[str] | None = None) -> None:
        self.calls.append((desired, touched))


def bgp_peer(name: str = "tor", zone: str | None = None, **spec: Any) -> dict[str, Any]:
    selectors = [{"matchLabels": {"zone": zone}}] if zone else []
    return {"metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "192.0.2.254", "nodeSelectors": selectors,
                     **spec}}


def bgp_ad(name: str = "all", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": {"ipAddressPools": ["p"], **spec}}


class SecretWatches:
    """The feed's Secret watches, driven by the test: each name's handler while it is watched."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {}

    def __call__(self, name: str, handler: Callable[[str, dict[str, Any]], None]) -> Any:
        self.handlers[name] = handler
        return SimpleNamespace(stop=lambda: self.handlers.pop(name))

    def send(self, name: str, password: str | None) -> None:
        """The watch of NAME lists the Secret with PASSWORD (None: no such Secret)."""
        if password is not None:
            data = {"password": base64.b64encode(password.encode()).decode()}
            self.handlers[name]("ADDED", {"metadata": {"name": name}, "type": BGP_PASSWORD_SECRET_TYPE, "data": data})
        self.handlers[name](SYNCED, {})


class World:
    """A view with three nodes, pool p, a Cluster Service (endpoint on n2) and a Local one (endpoint on n2)."""

    def __init__(self, peers: list[dict[str, Any]] | None = None, ads: list[dict[str, Any]] | None = None,
                 me: str = ME) -> None:
        self.view = IncrementalDesired(me)
        self.api, self.recorder, self.driver = Api(), Recorder(), Driver()
        status = StatusReporter(self.api, me, recorder=self.recorder)  # type: ignore[arg-type]
        self.secrets = SecretWatches()
        self.feed = BgpFeed(me, self.api, "ironlb", self.driver, status, lambda: None,  # type: ignore[arg-type]
                            watch_secret=self.secrets)
        for name, zone in (("n1", "a"), ("n2", "a"), ("n3", "b")):
            self.event("nodes", "ADDED", node(name, zone=zone))
        self.event("pools", "ADDED", pool("p"))
        for name, ip, policy in (("cluster", CLUSTER_IP, "Cluster"), ("local", LOCAL_IP, "Local")):
            self.event("services", "ADDED", service(name, (ip,), policy=policy))
            self.event("slices", "ADDED", endpoint_slice(f"{name}-1", name, ("n2",)))
        for obj in peers if peers is not None else [bgp_peer()]:
            self.feed.on_event("bgppeers", "ADDED", obj)
        for obj in ads if ads is not None else [bgp_ad()]:
            self.feed.on_event("bgpadvertisements", "ADDED", obj)
        self.follow(None)
        self.take()

    def take(self) -> set[str] | None:
        """The prefixes touched since the driver last took a Desired (as `run` takes them)."""
        touched, self.feed._touched = self.feed._touched, set()
        return touched

    def event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        self.view.apply(kind, event, obj)
        self.feed.on_view_event(kind, obj["metadata"]["name"], self.view)

    def follow(self, keys: set[str] | None) -> None:
        self.view.set_alive(ALIVE)
        self.view.publish()
        changed = self.view.take_changed()
        self.feed.follow(self.view, None if keys is None else keys | changed, ALIVE)

    def routes(self) -> dict[tuple[str, str], Attributes]:
        return self.feed.desired.routes()


async def test_a_cluster_service_is_announced_by_every_selected_node_a_local_one_only_where_its_endpoint_is() -> None:
    world = World()
    assert set(world.routes()) == {("tor", f"{CLUSTER_IP}/32")}
    assert [p.name for p in world.feed.desired.peers.values()] == ["tor"]
    reason, found = carriers(world.view.infos["ns/local"], None, world.feed.setting)
    assert reason is BGPAnnounceReason.ADVERTISED and found == {LOCAL_IP: {"n2": ("tor",)}}
    reason, found = carriers(world.view.infos["ns/cluster"], None, world.feed.setting)
    assert found == {CLUSTER_IP: {n: ("tor",) for n in ("n1", "n2", "n3")}}


async def test_an_endpoint_change_touches_only_its_service_prefix() -> None:
    world = World()
    world.event("slices", "MODIFIED", endpoint_slice("local-1", "local", ("n1",)))
    world.follow(set())
    assert ("tor", f"{LOCAL_IP}/32") in world.routes()
    assert world.take() == {f"{LOCAL_IP}/32"}
    world.event("slices", "MODIFIED", endpoint_slice("local-1", "local", (), unready=("n1",)))
    world.follow(set())
    assert ("tor", f"{LOCAL_IP}/32") not in world.routes() and world.take() == {f"{LOCAL_IP}/32"}


async def test_a_cluster_service_with_no_ready_endpoint_is_withdrawn() -> None:
    world = World()
    world.event("slices", "MODIFIED", endpoint_slice("cluster-1", "cluster", (), unready=("n2",)))
    world.follow(set())
    assert world.routes() == {}


@pytest.mark.parametrize(("peers", "ads", "routes"), [
    ([bgp_peer(zone="b")], None, set()),  # the peer selects other nodes: no session here
    (None, [bgp_ad(nodeSelectors=[{"matchLabels": {"zone": "b"}}])], set()),  # the advertisement selects others
    (None, [bgp_ad(ipAddressPools=["other"])], set()),  # the pool is not covered
    (None, [bgp_ad(peers=["elsewhere"])], set()),  # to a peer this node has not
    (None, [bgp_ad(aggregationLength=24)], {("tor", "203.0.113.0/24")}),
    ([bgp_peer(), bgp_peer("spine")], [bgp_ad(peers=["spine"])], {("spine", f"{CLUSTER_IP}/32")}),
])
async def test_which_peers_and_prefixes(peers: Any, ads: Any, routes: set[tuple[str, str]]) -> None:
    assert set(World(peers, ads).routes()) == routes


async def test_local_pref_and_communities_go_with_the_route() -> None:
    world = World(ads=[bgp_ad(localPref=200, communities=["65000:1", "large:65000:1:2"])])
    assert world.routes()[("tor", f"{CLUSTER_IP}/32")] == Attributes(200, ("65000:1",), ("65000:1:2",))


async def test_a_label_change_of_this_node_recomputes_everything() -> None:
    world = World(peers=[bgp_peer(zone="a")])
    assert world.routes()
    world.event("nodes", "MODIFIED", node("n1", zone="b"))
    world.follow(set())
    assert world.routes() == {} and world.feed.desired.peers == {} and world.take() is None


async def test_the_driver_gets_the_last_desired_with_every_prefix_touched_meanwhile() -> None:
    world = World()
    for ready in (("n1",), ()):
        world.event("slices", "MODIFIED", endpoint_slice("local-1", "local", ready))
        world.follow(set())
    world.feed._wake.set()
    task = asyncio.ensure_future(world.feed.run())
    await asyncio.sleep(0.01)
    task.cancel()
    desired, touched = world.driver.calls[-1]
    assert touched == {f"{LOCAL_IP}/32"} and ("tor", f"{LOCAL_IP}/32") not in desired.routes()


@pytest.mark.parametrize("me", sorted(ALIVE))
async def test_the_condition_names_nodes_and_peers_and_one_node_writes_it(me: str) -> None:
    world = World(me=me)
    await asyncio.sleep(0)
    await world.feed.status.flush()
    written = {name: body["status"]["conditions"][0] for name, body in world.api.patches}
    for name, ip, nodes in (("cluster", CLUSTER_IP, {"n1", "n2", "n3"}), ("local", LOCAL_IP, {"n2"})):
        assert (name in written) == (elect(f"ns/{name}", nodes) == me)
        if name in written:
            cond = written[name]
            assert cond["type"] == ConditionType.SERVICE_BGP_ANNOUNCED.value and cond["status"] == "True"
            assert set(bgp_announced_in(cond["message"])[ip]) == nodes


@pytest.mark.parametrize("me", sorted(ALIVE))
async def test_a_config_problem_is_kept_and_its_event_left_to_the_operator(me: str) -> None:
    world = World(ads=[bgp_ad(peers=["tor", "ghost"])], me=me)
    world.feed.on_event("bgppeers", "MODIFIED", bgp_peer())
    world.follow(None)
    assert not [e for e in world.recorder.events if e[1] is BGPConfigReason.PEER_NOT_FOUND]  # one writer: not here
    assert {p.reason for p in world.feed.problems} == {BGPConfigReason.PEER_NOT_FOUND}
    if me == ME:
        assert set(world.routes()) == {("tor", f"{CLUSTER_IP}/32")}  # still announced to the peer that exists


def secret_peers() -> list[dict[str, Any]]:
    """Two peers, each with its own password Secret."""
    return [bgp_peer("tor", passwordSecret={"name": "tor-pw"}),
            bgp_peer("spine", passwordSecret={"name": "spine-pw"}, peerAddress="192.0.2.253")]


async def test_a_rotated_password_secret_changes_only_the_peers_that_name_it() -> None:
    world = World(peers=secret_peers())
    assert set(world.secrets.handlers) == {"tor-pw", "spine-pw"}  # watched by name, read by no peer event
    world.secrets.send("tor-pw", "one")
    world.secrets.send("spine-pw", "other")
    world.follow(set())
    world.take()
    before = world.feed.desired
    assert {p.name: p.password for p in before.peers.values()} == {"tor": "one", "spine": "other"}
    world.secrets.send("tor-pw", "two")
    world.follow(set())
    assert world.take() == set()  # no Service recomputed, no prefix touched
    changes = diff(before, world.feed.desired, set())
    assert [(type(c), c.new.name, c.new.password) for c in changes] == [(PeerChanged, "tor", "two")]  # type: ignore
    world.feed.on_event("bgppeers", "DELETED", secret_peers()[1])
    assert set(world.secrets.handlers) == {"tor-pw"}  # a Secret no peer names is no longer watched


async def test_a_missing_secret_is_a_problem_once_its_watch_has_listed() -> None:
    world = World(peers=secret_peers()[:1])
    assert world.feed.problems == frozenset() and world.feed.desired.peers == {}
    world.secrets.send("tor-pw", None)
    world.follow(set())
    assert {p.reason for p in world.feed.problems} == {BGPConfigReason.PASSWORD_SECRET_NOT_FOUND}
    world.secrets.send("tor-pw", "one")
    world.follow(set())
    assert world.feed.problems == frozenset() and set(world.routes()) == {("tor", f"{CLUSTER_IP}/32")}


async def test_another_nodes_label_change_costs_only_what_a_selector_reads() -> None:
    world = World(peers=[bgp_peer(zone="a")])
    before = world.feed.desired
    world.event("nodes", "MODIFIED", {**node("n2", zone="a"), "metadata": {"name": "n2", "labels": {
        "zone": "a", "unrelated": "x"}}})
    world.follow(set())
    assert world.feed.desired is before and world.take() == set()  # no selector reads that label: nothing
    world.api.patches.clear()
    world.event("nodes", "MODIFIED", node("n2", zone="b"))  # n2 leaves the peer's zone
    world.follow(set())
    assert world.take() == set() and world.feed.desired is before  # this node announces what it did
    said = world.feed.status._said[("ns/cluster", ConditionType.SERVICE_BGP_ANNOUNCED)][0]
    assert set(bgp_announced_in(said[3])[CLUSTER_IP]) == {"n1"}  # the condition no longer names n2


async def test_a_bfd_profile_or_timer_change_touches_the_peer_and_no_service() -> None:
    world = World(peers=[bgp_peer(bfdProfile="fast")])
    world.feed.on_event("bfdprofiles", "ADDED", {"metadata": {"name": "fast"}, "spec": {"receiveInterval": 300}})
    world.follow(set())
    world.take()
    before = world.feed.desired
    world.feed.on_event("bfdprofiles", "MODIFIED", {"metadata": {"name": "fast"}, "spec": {"receiveInterval": 100}})
    world.feed.on_event("bgppeers", "MODIFIED", bgp_peer(bfdProfile="fast", holdTime="9s"))
    world.follow(set())
    assert world.take() == set()  # no Service recomputed, no prefix touched
    assert {type(c).__name__ for c in diff(before, world.feed.desired, set())} == {"ProfileSet", "PeerChanged"}
    world.feed.on_event("bgpadvertisements", "MODIFIED", bgp_ad(localPref=50))  # announcements read this one
    world.follow(set())
    assert world.take() is None


async def test_a_new_route_waits_for_the_gate_and_a_withdrawal_does_not() -> None:
    world = World()
    allowed: dict[str, bool] = {"ns/local": False}
    world.feed.may_announce = lambda key, ips: allowed.get(key, True)
    world.event("slices", "MODIFIED", endpoint_slice("local-1", "local", ("n1",)))  # our first local endpoint
    world.follow(set())
    assert ("tor", f"{LOCAL_IP}/32") not in world.routes() and not world.take()
    allowed["ns/local"] = True  # released: the pass decides it again
    world.follow({"ns/local"})
    assert ("tor", f"{LOCAL_IP}/32") in world.routes() and world.take() == {f"{LOCAL_IP}/32"}
    allowed["ns/local"] = allowed["ns/cluster"] = False
    world.event("slices", "MODIFIED", endpoint_slice("local-1", "local", (), unready=("n1",)))
    world.follow(set())
    assert ("tor", f"{LOCAL_IP}/32") not in world.routes()  # withdrawn at once
    world.event("slices", "MODIFIED", endpoint_slice("cluster-1", "cluster", ("n2", "n3")))
    world.follow(set())
    assert ("tor", f"{CLUSTER_IP}/32") in world.routes()  # announced already: the gate is not asked
