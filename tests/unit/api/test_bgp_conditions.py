"""The Service's BGPAnnounced condition: which nodes carry each IP, to which peers, in one format."""

from __future__ import annotations

from ironlb.api.conditions import bgp_announced_in, bgp_announced_part, bgp_carriers, condition
from ironlb.api.reasons import BGPAnnounceReason, ConditionType


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
