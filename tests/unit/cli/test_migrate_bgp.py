"""MetalLB -> IronLB, BGP mode: BGPPeer (v1beta1 and v1beta2), BFDProfile and BGPAdvertisement carried field by field,
Community aliases written out, and a note for everything else."""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.api.bgp_parse import parse_config
from ironlb.cli.migrate import migrate

V1, V2 = "metallb.io/v1beta1", "metallb.io/v1beta2"


def obj(kind: str, name: str, spec: dict, api: str = V1, namespace: str = "metallb-system") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


PEER_V2 = {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1", "peerPort": 1179,
           "sourceAddress": "198.18.36.10", "routerID": "198.18.36.10", "holdTime": "9s", "keepaliveTime": "3s",
           "connectTime": "5s", "ebgpMultiHop": True, "bfdProfile": "fast", "enableGracefulRestart": True,
           "nodeSelectors": [{"matchLabels": {"rack": "r1"}}], "vrf": "red", "disableMP": True,
           "passwordSecret": {"name": "bgp-auth", "namespace": "metallb-system"}}
BFD = {"receiveInterval": 100, "transmitInterval": 100, "detectMultiplier": 3, "echoInterval": 50, "echoMode": False,
       "passiveMode": True, "minimumTtl": 254}
ADV = {"aggregationLength": 32, "aggregationLengthV6": 128, "localPref": 100, "communities": ["65000:1"],
       "ipAddressPools": ["p"], "ipAddressPoolSelectors": [{"matchLabels": {"tier": "a"}}],
       "nodeSelectors": [{"matchLabels": {"rack": "r1"}}], "peers": ["tor"],
       "serviceSelectors": [{"matchLabels": {"app": "web"}}]}


def test_every_field_of_the_three_kinds_is_carried() -> None:
    out = migrate([obj("BGPPeer", "tor", PEER_V2, api=V2), obj("BFDProfile", "fast", BFD),
                   obj("BGPAdvertisement", "adv", ADV)])
    peer, bfd, adv = out.objects
    assert peer == {"apiVersion": "ironlb.io/v1beta1", "kind": "BGPPeer", "metadata": {"name": "tor"},
                    "spec": {**PEER_V2, "passwordSecret": {"name": "bgp-auth"}}}
    assert (bfd["kind"], bfd["spec"]) == ("BFDProfile", BFD)
    assert (adv["kind"], adv["spec"]) == ("BGPAdvertisement", ADV)
    # The one note: the Secret must be copied to IronLB's namespace.
    assert out.notes == ["BGPPeer tor: its password Secret metallb-system/bgp-auth is read from IronLB's namespace: "
                         "copy it there (type kubernetes.io/basic-auth, key 'password')"]


def test_v1beta1_peer_and_v2_only_fields() -> None:
    v1 = {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1", "peerPort": 0, "holdTime": "90s",
          "password": "clear", "nodeSelectors": [{"matchExpressions": [{"key": "rack", "operator": "In",
                                                                         "values": ["r1"]}]}]}
    unnumbered = {"myASN": 64512, "dynamicASN": "external", "interface": "eth1", "peerASN": 0}
    out = migrate([obj("BGPPeer", "old", v1), obj("BGPPeer", "new", unnumbered, api=V2)])
    old, new = (o["spec"] for o in out.objects)
    assert old == {k: v for k, v in v1.items() if k != "peerPort"}  # 0: MetalLB's "not set"
    assert new == {"myASN": 64512, "dynamicASN": "external", "interface": "eth1"}
    assert out.notes == []


def test_what_cannot_be_carried_is_named() -> None:
    out = migrate([
        obj("BGPPeer", "tor", {**PEER_V2, "passwordSecret": {"name": "s"}, "localASN": 64600,
                               "dualStackAddressFamily": True, "holdTime": "90.5s"}, api=V2),
        obj("BFDProfile", "fast", {"future": 1}),
        obj("BGPAdvertisement", "adv", {"communities": ["65000:1", "unknown-alias"], "bogus": 1}),
        obj("BGPAdvertisement", "other", {}, api=V2),
    ])
    text = "\n".join(out.notes)
    assert "BGPPeer tor: spec.localASN is not carried" in text
    assert "BGPPeer tor: spec.holdTime is not carried: '90.5s' is not a whole number of seconds" in text
    assert "BGPPeer tor: its password Secret s is read from IronLB's namespace" in text
    assert "BFDProfile fast: spec.future is not carried" in text
    assert "BGPAdvertisement adv: community 'unknown-alias' is not carried" in text
    assert "BGPAdvertisement adv: spec.bogus is not carried" in text
    assert "BGPAdvertisement other (metallb.io/v1beta2): not a metallb.io/v1beta1 object" in text
    assert [o["spec"].get("communities") for o in out.objects if o["kind"] == "BGPAdvertisement"] == [["65000:1"]]
    assert "holdTime" not in out.objects[0]["spec"]


OWN_FAMILY = {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1"}


@pytest.mark.parametrize(("stored", "disable_mp"), [
    # MetalLB 0.15 and later: its CRD stores dualStackAddressFamily (false by default) and ignores disableMP.
    ({**OWN_FAMILY, "dualStackAddressFamily": False, "disableMP": False}, True),
    ({**OWN_FAMILY, "dualStackAddressFamily": True, "disableMP": True}, False),
    ({"myASN": 64512, "dynamicASN": "external", "interface": "eth1", "dualStackAddressFamily": False}, None),
    # Before 0.15 (no dualStackAddressFamily): both families unless disableMP, as in IronLB.
    ({**OWN_FAMILY, "disableMP": False}, False),
    ({**OWN_FAMILY, "disableMP": True}, True),
])
def test_a_peers_address_families_are_carried_as_disable_mp(stored: dict[str, Any], disable_mp: bool | None) -> None:
    """A session keeps to the families MetalLB gave it: dualStackAddressFamily becomes disableMP, with no note."""
    out = migrate([obj("BGPPeer", "tor", stored, api=V2)])
    assert out.notes == []
    assert out.objects[0]["spec"].get("disableMP") == disable_mp
    cfg = parse_config(out.objects, [], [], secrets={}, pools={})
    assert cfg.problems == [] and cfg.peers["tor"].disable_mp is bool(disable_mp)


def test_community_aliases_are_written_out() -> None:
    community = obj("Community", "names", {"communities": [{"name": "no-export", "value": "65535:65281"},
                                                           {"name": "gold", "value": "large:65000:1:1"}]})
    out = migrate([obj("BGPAdvertisement", "adv", {"communities": ["no-export", "gold", "65535:65281", "1:1"]}),
                   community])
    assert out.objects[0]["spec"]["communities"] == ["65535:65281", "large:65000:1:1", "1:1"]  # no duplicate
    assert out.notes == ["Community names: not carried as an object (IronLB has no Community kind): its aliases are "
                         "written out as values in the BGPAdvertisements that use them"]


def test_a_pool_with_a_bgp_advertisement_needs_no_l2_one() -> None:
    pool = obj("IPAddressPool", "p", {"addresses": ["198.18.36.0/24"]})
    assert not any("no L2Advertisement" in n for n in migrate([pool, obj("BGPAdvertisement", "a", {})]).notes)
    assert any("no L2Advertisement or BGPAdvertisement" in n for n in migrate([pool]).notes)


@pytest.mark.parametrize("api", [V1, V2])
def test_what_is_carried_reads_back_as_the_speakers_configuration(api: str) -> None:
    """The migrated objects are what IronLB's own parser takes: no problem, the same values."""
    peer = {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1", "holdTime": "9s", "bfdProfile": "fast",
            "password": "clear"}
    out = migrate([obj("BGPPeer", "tor", peer, api=api), obj("BFDProfile", "fast", BFD),
                   obj("BGPAdvertisement", "adv", {**ADV, "ipAddressPools": [], "serviceSelectors": []})])
    by_kind = {o["kind"]: [o] for o in out.objects}
    cfg = parse_config(by_kind["BGPPeer"], by_kind["BFDProfile"], by_kind["BGPAdvertisement"], secrets={}, pools={})
    assert cfg.problems == []
    tor = cfg.peers["tor"]
    assert (tor.hold_time_s, tor.keepalive_time_s, tor.password, tor.bfd.receive_interval_ms) == (9, 3, "clear", 100)
    assert [str(c) for c in cfg.advertisements["adv"].communities] == ["65000:1"]
