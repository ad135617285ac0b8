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


def test_a_session_without_multiprotocol_carries_only_its_familys_ip() -> None:
    split = BgpSetting(
        config=BGPConfig(
            peers={"v4": BGPPeerConfig("v4", 64513, 64512, address="192.0.2.254", disable_mp=True),
                   "v6": BGPPeerConfig("v6", 64513, 64512, address="2001:db8::fe", disable_mp=True)},
            advertisements={"all": BGPAdvertisementConfig("all", pools=("p",))}),
        nodes={"n1": NodeInfo("n1", {})})
    info = ServiceInfo("ns/dual", DUAL, "p", "Cluster", frozenset({"n1"}))
    mine, reason, found = announcements_and_carriers(info, {}, "n1", split)
    assert reason is BGPAnnounceReason.ADVERTISED
    assert found == {DUAL[0]: {"n1": ("v4",)}, DUAL[1]: {"n1": ("v6",)}}
    assert [(a.prefix, a.peers) for a in mine] == [(f"{DUAL[0]}/32", frozenset({"v4"})),
                                                   (f"{DUAL[1]}/128", frozenset({"v6"}))]
