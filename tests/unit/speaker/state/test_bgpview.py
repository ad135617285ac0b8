"""BGP mode's view of one Service: a node's announcements and the carriers of its IPs, asked apart or together."""

from __future__ import annotations

import pytest

from ironlb.api.bgp import BGPAdvertisementConfig, BGPConfig, BGPPeerConfig
from ironlb.api.reasons import BGPAnnounceReason
from ironlb.speaker.state.bgpview import BgpSetting, announcements, announcements_and_carriers, carriers
from ironlb.speaker.state.snapshot import NodeInfo, ServiceInfo

ZONE_A = ({"matchLabels": {"zone": "a"}},)
SETTING = BgpSetting(
    config=BGPConfig(
        peers={"tor-a": BGPPeerConfig("tor-a", 64513, 64512, address="198.18.39.1", node_selectors=ZONE_A),
               "spine": BGPPeerConfig("spine", 64513, 64512, address="198.18.39.9")},
        advertisements={"all": BGPAdvertisementConfig("all", pools=("p",)),
                        "tor-only": BGPAdvertisementConfig("tor-only", pools=("p",), peers=("tor-a",),
                                                           aggregation_length=24, local_pref=200)}),
    nodes={name: NodeInfo(name, {"zone": zone}) for name, zone in (("n1", "a"), ("n2", "b"), ("n3", "a"))})
DUAL = ("198.18.64.10", "2001:db8:ffff::a")


@pytest.mark.parametrize("info", [
    ServiceInfo("ns/cluster", DUAL, "p", "Cluster", frozenset({"n2"})),
    ServiceInfo("ns/local", DUAL, "p", "Local", frozenset({"n1", "n2"})),
    ServiceInfo("ns/no-endpoint", DUAL, "p", "Local", frozenset()),
    ServiceInfo("ns/no-pool", DUAL, None, "Cluster", frozenset({"n1"})),
])
@pytest.mark.parametrize("node", ["n1", "n2", "n3", "gone"])
def test_together_is_the_same_as_apart(info: ServiceInfo, node: str) -> None:
    together = announcements_and_carriers(info, {}, node, SETTING)
    assert together == (announcements(info, {}, node, SETTING), *carriers(info, {}, SETTING))


def test_the_carriers_name_each_node_and_its_peers() -> None:
    info = ServiceInfo("ns/local", DUAL, "p", "Local", frozenset({"n1", "n2"}))
    mine, reason, found = announcements_and_carriers(info, {}, "n1", SETTING)
    assert reason is BGPAnnounceReason.ADVERTISED
    assert found == {ip: {"n1": ("spine", "tor-a"), "n2": ("spine",)} for ip in DUAL}
    assert sorted(a.prefix for a in mine) == ["198.18.64.0/24", "198.18.64.10/32", "2001:db8:ffff::a/128",
                                              "2001:db8:ffff::a/128"]
