"""The Service's BGPAnnounced condition: which nodes carry each IP, to which peers, in one format."""

from __future__ import annotations

import pytest

from ironlb.api.conditions import bgp_announced_in, bgp_announced_part, bgp_carriers, bgp_draining_in, condition
from ironlb.api.reasons import BGPAnnounceReason, BGPDrainReason, ConditionType


def status(true: bool, reason: BGPAnnounceReason, message: object) -> dict:
    cond = condition(ConditionType.SERVICE_BGP_ANNOUNCED, true, reason, "", since="t")
    return {"conditions": [cond | {"message": message}]}


MESSAGE = "; ".join([bgp_announced_part("198.18.36.5", "node-1", ("tor-a", "tor-b")),
                     bgp_announced_part("198.18.36.5", "node-2", ("tor-a",)),
                     bgp_announced_part("2001:db8:c1::5", "node-3", ("tor-v6",))])


def test_every_node_and_peer_of_an_ip_is_read_back() -> None:
    assert MESSAGE.startswith("198.18.36.5 from node node-1 to peers tor-a,tor-b; 198.18.36.5 from node node-2 to "
                              "peer tor-a")
    assert bgp_announced_in(MESSAGE) == {"198.18.36.5": {"node-1": ("tor-a", "tor-b"), "node-2": ("tor-a",)},
                                         "2001:db8:c1::5": {"node-3": ("tor-v6",)}}


def test_carriers_only_while_the_condition_is_true() -> None:
    assert bgp_carriers(status(True, BGPAnnounceReason.ADVERTISED, MESSAGE))["198.18.36.5"]["node-2"] == ("tor-a",)
    assert bgp_carriers(status(True, BGPAnnounceReason.DRAINING, MESSAGE)) != {}  # still carried, less preferred
    assert bgp_carriers(status(False, BGPAnnounceReason.NO_ESTABLISHED_SESSION, MESSAGE)) == {}
    assert bgp_carriers(status(True, BGPAnnounceReason.ADVERTISED, 7)) == {}
    assert bgp_carriers(None) == {}
    # The layer-2 condition is another condition: its words are not read as BGP's.
    l2 = {"conditions": [{"type": "ironlb.io/Announced", "status": "True", "message": MESSAGE}]}
    assert bgp_carriers(l2) == {}


@pytest.mark.parametrize("draining", [{}, {"node-2": BGPDrainReason.CORDONED},
                                      {"node-1": BGPDrainReason.TERMINATING, "node-2": BGPDrainReason.OUT_OF_SERVICE,
                                       "node-3": BGPDrainReason.NODE_DELETED}])
def test_the_draining_mark_round_trips_and_leaves_the_carriers_as_they_were(draining: dict) -> None:
    parts = [("198.18.36.5", "node-1", ("tor-a", "tor-b")), ("198.18.36.5", "node-2", ("tor-a",)),
             ("2001:db8:c1::5", "node-3", ("tor-v6",))]
    message = "; ".join(bgp_announced_part(ip, node, peers, draining.get(node)) for ip, node, peers in parts)
    assert bgp_announced_in(message) == bgp_announced_in(MESSAGE)
    assert bgp_draining_in(message) == draining
    assert bgp_carriers(status(True, BGPAnnounceReason.DRAINING, message)) == bgp_announced_in(MESSAGE)


def test_the_mark_reads_as_written_and_an_unknown_reason_is_left_out() -> None:
    part = bgp_announced_part("203.0.113.5", "node-2", ("router",), BGPDrainReason.CORDONED)
    assert part == "203.0.113.5 from node node-2 to peer router (draining: Cordoned)"
    assert bgp_draining_in(MESSAGE) == {}  # words written before the mark existed
    newer = "203.0.113.5 from node node-2 to peer router (draining: Hibernating)"
    assert bgp_announced_in(newer) == {"203.0.113.5": {"node-2": ("router",)}} and bgp_draining_in(newer) == {}
