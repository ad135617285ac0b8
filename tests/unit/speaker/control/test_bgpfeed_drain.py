"""The BGPAnnounced condition names the carriers that drain: a scenario table for the condition, and the feed
reading every Node's drain facts (core.bgp.nodedrain) and this node's own SIGTERM."""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.api.conditions import bgp_announced_in, bgp_draining_in
from ironlb.api.reasons import BGPAnnounceReason, BGPDrainReason, ConditionType
from ironlb.core.election import elect
from ironlb.speaker.control.bgpfeed import bgp_condition
from tests.unit.speaker.control.test_bgpfeed import ALIVE, CLUSTER_IP, World
from tests.unit.speaker.state.test_incremental import node

IP4, IP6 = "203.0.113.5", "2001:db8::5"
FOUND = {IP4: {"node-1": ("router",), "node-2": ("router", "spine")}, IP6: {"node-2": ("router6",)}}
CORDONED, TERMINATING = BGPDrainReason.CORDONED, BGPDrainReason.TERMINATING
NONE_DRAINING = ("203.0.113.5 from node node-1 to peer router; 203.0.113.5 from node node-2 to peers router,spine; "
                 "2001:db8::5 from node node-2 to peer router6")


@pytest.mark.parametrize(("case", "draining", "reason", "message"), [
    ("none draining: the words as before", {}, BGPAnnounceReason.ADVERTISED, NONE_DRAINING),
    ("a node that carries nothing here", {"node-9": CORDONED}, BGPAnnounceReason.ADVERTISED, NONE_DRAINING),
    ("some draining", {"node-2": CORDONED}, BGPAnnounceReason.ADVERTISED,
     "203.0.113.5 from node node-1 to peer router; 203.0.113.5 from node node-2 to peers router,spine (draining: "
     "Cordoned); 2001:db8::5 from node node-2 to peer router6 (draining: Cordoned)"),
    ("every carrier of every IP draining, each for its reason", {"node-1": TERMINATING, "node-2": CORDONED},
     BGPAnnounceReason.DRAINING,
     "203.0.113.5 from node node-1 to peer router (draining: SpeakerTerminating); 203.0.113.5 from node node-2 to "
     "peers router,spine (draining: Cordoned); 2001:db8::5 from node node-2 to peer router6 (draining: Cordoned)"),
])
def test_the_condition_marks_draining_carriers(case: str, draining: dict[str, BGPDrainReason],
                                               reason: BGPAnnounceReason, message: str) -> None:
    said = bgp_condition((IP4, IP6), BGPAnnounceReason.ADVERTISED, FOUND, draining)
    assert (said.true, said.reason, said.message) == (True, reason, message), case  # still announced: True
    assert bgp_announced_in(said.message) == FOUND, case  # the same carriers, marked or not
    assert bgp_draining_in(said.message) == {n: r for n, r in draining.items() if n != "node-9"}, case


def test_one_ip_still_carried_by_a_serving_node_is_not_draining() -> None:
    found = {IP4: {"node-1": ("router",)}, IP6: {"node-2": ("router6",)}}
    said = bgp_condition((IP4, IP6), BGPAnnounceReason.ADVERTISED, found, {"node-2": CORDONED})
    assert said.reason is BGPAnnounceReason.ADVERTISED


def test_a_service_announced_nowhere_says_why_whoever_drains() -> None:
    said = bgp_condition((IP4,), BGPAnnounceReason.NO_ANNOUNCING_NODE, {}, {"node-1": CORDONED})
    assert said.true is False and said.reason is BGPAnnounceReason.NO_ANNOUNCING_NODE
    assert "draining" not in said.message


def cordoned(name: str, *taints: str, unschedulable: bool = True) -> dict[str, Any]:
    obj = node(name, zone="b" if name == "n3" else "a")
    obj["spec"] = {"unschedulable": unschedulable, "taints": [{"key": t, "effect": "NoExecute"} for t in taints]}
    return obj


def said(world: World) -> tuple[str, str, str]:
    """The cluster Service's condition as this node last said it: status, reason, message."""
    _, status, reason, message = world.feed.status._said[("ns/cluster", ConditionType.SERVICE_BGP_ANNOUNCED)][0]
    return status, reason, message


WRITER = elect("ns/cluster", ALIVE)  # the node that writes the cluster Service's condition


async def test_the_feed_marks_nodes_whose_node_says_they_go_and_unmarks_them_when_back() -> None:
    world = World(me=WRITER)
    world.event("nodes", "MODIFIED", cordoned("n2"))
    world.follow(set())
    status, reason, message = said(world)
    assert (status, reason) == ("True", BGPAnnounceReason.ADVERTISED.value)
    assert bgp_draining_in(message) == {"n2": CORDONED}
    assert set(bgp_announced_in(message)[CLUSTER_IP]) == {"n1", "n2", "n3"}
    world.event("nodes", "MODIFIED", cordoned("n1", "node.kubernetes.io/out-of-service"))
    world.event("nodes", "MODIFIED", cordoned("n3", "ToBeDeletedByClusterAutoscaler"))
    world.follow(set())
    status, reason, message = said(world)
    assert (status, reason) == ("True", BGPAnnounceReason.DRAINING.value)
    assert bgp_draining_in(message) == {"n1": BGPDrainReason.OUT_OF_SERVICE, "n2": CORDONED,
                                        "n3": BGPDrainReason.TO_BE_DELETED}
    for name in ("n1", "n2", "n3"):
        world.event("nodes", "MODIFIED", cordoned(name, unschedulable=False))
    world.follow(set())
    assert said(world)[1] == BGPAnnounceReason.ADVERTISED.value and "draining" not in said(world)[2]
    assert world.take() == set()  # the conditions only: no route of this node's changed


async def test_with_the_cordon_trigger_off_a_cordon_is_not_draining_a_taint_still_is() -> None:
    world = World(me=WRITER)
    world.feed.drain_on_cordon = False
    world.event("nodes", "MODIFIED", cordoned("n2", "node.kubernetes.io/unschedulable"))
    world.follow(set())
    assert bgp_draining_in(said(world)[2]) == {}
    world.event("nodes", "MODIFIED", cordoned("n2", "node.kubernetes.io/unschedulable",
                                              "node.cloudprovider.kubernetes.io/shutdown"))
    world.follow(set())
    assert bgp_draining_in(said(world)[2]) == {"n2": BGPDrainReason.CLOUD_SHUTDOWN}


async def test_a_node_cordoned_before_the_first_pass_is_marked_on_it() -> None:
    world = World(me=WRITER)
    world.feed._drains_read = False  # as a speaker whose Node events came before its first pass
    world.feed.draining.clear()
    world.view.apply("nodes", "MODIFIED", cordoned("n3"))
    world.follow(set())
    assert bgp_draining_in(said(world)[2]) == {"n3": CORDONED}


async def test_this_nodes_sigterm_marks_it_terminating_whatever_its_node_says() -> None:
    world = World(me=WRITER)
    world.event("nodes", "MODIFIED", cordoned(WRITER))
    world.follow(set())
    assert bgp_draining_in(said(world)[2]) == {WRITER: CORDONED}
    world.feed.terminating(world.view)
    world.follow(set())
    assert bgp_draining_in(said(world)[2]) == {WRITER: TERMINATING}
    world.event("nodes", "MODIFIED", cordoned(WRITER, unschedulable=False))  # uncordoned: still going away
    world.follow(set())
    assert bgp_draining_in(said(world)[2]) == {WRITER: TERMINATING}
