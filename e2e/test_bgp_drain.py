"""Drain before break on cordon (lightweight lab with its router): a node cordoned while bgpclient probes a VIP
that every node announces loses no probe; the router sees the node's path less preferred (GRACEFUL_SHUTDOWN)
before it goes; its BGPNodeStatus says Drained (Cordoned); uncordoned, the node is a next hop again.

The speakers are restarted in BGP mode if the lab runs without its router (and back after).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from e2e.lab import bgp
from e2e.lab.config import NodeAddr
from e2e.testkit.bgpdrain import (
    ADDRESSES,
    PEER,
    POOL,
    GshutWatch,
    bgp_lab,
    bgp_manifests,
    cordon,
    probing,
    served_by_every_node,
    wait_for_next_hops,
)
from e2e.testkit.testing import Kube, wait_for
from ironlb.api.bgp_status import NodeBGPStatus
from ironlb.api.conditions import find
from ironlb.api.reasons import BGPDrainReason, ConditionType

pytestmark = pytest.mark.lab

FLOWS, RATE_HZ, PROBE_S = 32, 100.0, 14.0


@pytest.fixture(scope="module")
def drain_nodes(kube: Kube) -> Iterator[list[NodeAddr]]:
    with bgp_lab(kube, bgp_manifests(PEER, "drain", POOL, ADDRESSES)) as nodes:
        yield nodes


def drained_reason(kube: Kube, node: str) -> BGPDrainReason | None:
    """The reason of NODE's Drained condition in its BGPNodeStatus (None until there is one)."""
    res = kube.kubectl("get", "bgpnodestatus", node, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    found = find({"conditions": list(NodeBGPStatus.from_object(json.loads(res.stdout)).conditions)},
                 ConditionType.BGP_DRAINED)
    return BGPDrainReason(found["reason"]) if found else None


def test_a_cordoned_node_drains_without_loss_and_announces_again_once_uncordoned(
        kube: Kube, drain_nodes: list[NodeAddr], record_property: Callable[[str, object], None]) -> None:
    target, others = drain_nodes[-1], drain_nodes[:-1]
    with served_by_every_node(kube, drain_nodes) as ip:
        wait_for(lambda: drained_reason(kube, target.name) is BGPDrainReason.NOT_DRAINED, timeout=20,
                 what=f"{target.name}'s BGPNodeStatus: not drained")
        try:
            with probing(ip, PROBE_S, FLOWS, RATE_HZ) as run:
                time.sleep(1)
                gshut = GshutWatch(ip, target)
                cordoned = time.monotonic()
                cordon(kube, target)
                wait_for_next_hops(ip, others, timeout=20)
                gone_s = time.monotonic() - cordoned
                assert gshut.stop(), "the router never held the node's path with GRACEFUL_SHUTDOWN before it went"
                wait_for(lambda: drained_reason(kube, target.name) is BGPDrainReason.CORDONED, timeout=10,
                         what=f"{target.name}'s BGPNodeStatus: Drained, Cordoned")
                time.sleep(1)
                assert {n.ipv4 for n in others} == bgp.router_next_hops(f"{ip}/32"), "a cordoned node announced again"
                uncordoned = time.monotonic()
                cordon(kube, target, on=False)
                wait_for_next_hops(ip, drain_nodes, timeout=20)
                back_s = time.monotonic() - uncordoned
        finally:
            cordon(kube, target, on=False)
        seen = run.result
        assert seen is not None
    # The uncordon adds the node back to the router's ECMP set, which rehashes flows: a connection whose handshake
    # is in flight at that instant (its SYN to one node, its next packet to another) breaks, whatever the nodes
    # do. That is the router's hash, not the drain, so the uncordon may cost one such probe; the drain nothing.
    in_drain = [lost for lost in seen.lost if lost["start"] < uncordoned]
    print(f"\ncordon: {target.name}'s next hop gone after {gone_s:.2f} s, back {back_s:.2f} s after uncordon; "
          f"{seen.answered} of {seen.sent} probes answered, lost: {seen.lost} ({len(in_drain)} before the uncordon)")
    record_property("cordon_next_hop_gone_s", round(gone_s, 2))
    record_property("uncordon_next_hop_back_s", round(back_s, 2))
    assert seen.sent >= PROBE_S * RATE_HZ * 0.9 and in_drain == [], seen.lost
    assert len(seen.lost) <= 1 and seen.answered + len(seen.lost) == seen.sent, seen.lost
    wait_for(lambda: drained_reason(kube, target.name) is BGPDrainReason.NOT_DRAINED, timeout=10,
             what=f"{target.name}'s BGPNodeStatus: not drained again")
