"""BGP mode's objects read together: typed configs, MetalLB's defaults, and every problem admission cannot see
reported as a BGPConfigReason (the object left out or changed as ironlb.api.bgp says)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ironlb.api.bgp import Community, DynamicASN, InvalidSpec, duration_seconds, parse_community
from ironlb.api.bgp_parse import parse_advertisement, parse_bfd_profile, parse_config
from ironlb.api.reasons import BGPConfigReason as R

SECRET_TYPE = "kubernetes.io/basic-auth"


def obj(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {k: v for k, v in spec.items() if v is not None}}


def peer(name: str = "tor", **fields: Any) -> dict[str, Any]:
    return obj(name, **{"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1", **fields})


def secret(password: str | None = "s3cret", type_: str = SECRET_TYPE) -> dict[str, Any]:
    data = {} if password is None else {"password": base64.b64encode(password.encode()).decode()}
    return {"type": type_, "data": data}


def pool(*addresses: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"addresses": list(addresses)}}


def config(peers=(), profiles=(), advertisements=(), secrets=None, pools=None):
    return parse_config(peers, profiles, advertisements, secrets=secrets or {}, pools=pools or {})


def reasons(cfg: Any) -> list[tuple[str, R]]:
    return [(p.name, p.reason) for p in cfg.problems]


# --- values -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "parts"), [
    ("65000:1", (65000, 1)), ("0:0", (0, 0)), ("65535:65535", (65535, 65535)),
    ("large:4294967295:0:1", (4294967295, 0, 1)),
])
def test_communities_read(text: str, parts: tuple[int, ...]) -> None:
    community = parse_community(text)
    assert community == Community(parts) and str(community) == text and community.large == (len(parts) == 3)


@pytest.mark.parametrize("text", ["65536:1", "1:65536", "1:2:3", "large:1:2", "large:4294967296:1:1", "no-export",
                                  " 1:2", "large:1:2:3:4", ""])
def test_bad_communities_refused(text: str) -> None:
    with pytest.raises(InvalidSpec, match="not a valid community"):
        parse_community(text)


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0), ("0s", 0), ("90s", 90), ("1m30s", 90), ("1h", 3600), ("1500ms500ms", 2), ("2.5m", 150),
])
def test_durations_in_whole_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize(("text", "why"), [
    ("90", "not a duration"), ("-9s", "not a duration"), ("9 s", "not a duration"), ("1d", "not a duration"),
    ("1.5s", "whole number"), ("500ms", "whole number"), ("", "not a duration"),
])
def test_bad_durations_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidSpec, match=why):
        duration_seconds(text)


# --- BFD profiles and advertisements alone --------------------------------------------------------------


def test_bfd_profile_defaults_are_frrs() -> None:
    profile = parse_bfd_profile(obj("fast"))
    assert (profile.receive_interval_ms, profile.transmit_interval_ms, profile.detect_multiplier) == (300, 300, 3)
    assert (profile.echo_interval_ms, profile.echo_mode, profile.passive_mode, profile.minimum_ttl) == (50, False,
                                                                                                        False, 254)
    fast = parse_bfd_profile(obj("fast", receiveInterval=100, transmitInterval=100, detectMultiplier=3,
                                 echoMode=True, minimumTtl=10))
    assert (fast.receive_interval_ms, fast.transmit_interval_ms, fast.echo_mode, fast.minimum_ttl) == (100, 100, True,
                                                                                                       10)


@pytest.mark.parametrize("spec", [{"receiveInterval": 9}, {"detectMultiplier": 256}, {"minimumTtl": 0},
                                  {"echoMode": "yes"}, {"transmitInterval": True}])
def test_bfd_profile_out_of_range_is_invalid(spec: dict[str, Any]) -> None:
    assert reasons(config(profiles=[obj("p", **spec)])) == [("p", R.INVALID_SPEC)]


def test_advertisement_defaults_are_metallbs() -> None:
    adv = parse_advertisement(obj("a"))
    assert (adv.aggregation_length, adv.aggregation_length_v6, adv.local_pref, adv.peers) == (32, 128, None, ())
    assert adv.announces_to("any") and adv.selects_node({}) and adv.selects_service({"app": "x"})
    assert adv.covers_pool("any", {})  # neither pools nor pool selectors: every pool
    picky = parse_advertisement(obj("b", peers=["tor"], ipAddressPools=["p"], localPref=0,
                                    nodeSelectors=[{"matchLabels": {"r": "1"}}],
                                    communities=["65000:1", "large:1:2:3"]))
    assert picky.announces_to("tor") and not picky.announces_to("other")
    assert picky.covers_pool("p", {}) and not picky.covers_pool("q", {})
    assert picky.selects_node({"r": "1"}) and not picky.selects_node({"r": "2"})
    assert picky.local_pref is None  # 0 is MetalLB's "not set"
    assert [str(c) for c in picky.communities] == ["65000:1", "large:1:2:3"]


@pytest.mark.parametrize("spec", [
    {"serviceSelectors": [{"matchLabels": {"app": "web"}}], "aggregationLength": 24},
    {"serviceSelectors": [{"matchLabels": {"app": "web"}}], "aggregationLengthV6": 64},
    {"aggregationLength": 33}, {"aggregationLengthV6": 0}, {"communities": ["no-export"]}, {"communities": "1:2"},
    {"peers": "tor"}, {"localPref": -1},
])
def test_invalid_advertisement_is_left_out(spec: dict[str, Any]) -> None:
    cfg = config(advertisements=[obj("a", **spec)])
    assert reasons(cfg) == [("a", R.INVALID_SPEC)] and cfg.advertisements == {}


# --- peers ------------------------------------------------------------------------------------------------


def test_a_minimal_peer() -> None:
    cfg = config(peers=[peer()])
    tor = cfg.peers["tor"]
    assert cfg.problems == []
    assert (tor.my_asn, tor.peer_asn, tor.address, tor.port) == (64512, 64513, "198.18.36.1", 179)
    assert (tor.hold_time_s, tor.keepalive_time_s, tor.bfd, tor.password) == (None, None, None, "")
    assert not tor.ibgp and tor.selects_node({"any": "node"})


@pytest.mark.parametrize(("timers", "hold", "keepalive"), [
    ({"holdTime": "90s"}, 90, 30), ({"keepaliveTime": "3s"}, 9, 3), ({"holdTime": "9s", "keepaliveTime": "1s"}, 9, 1),
    ({"holdTime": "0s"}, 0, 0), ({"holdTime": "0s", "keepaliveTime": "0s"}, 0, 0), ({"holdTime": "4s"}, 4, 1),
    ({"keepaliveTime": "30000s"}, 65535, 30000),  # derived, and capped at BGP's 16 bits
])
def test_timers_are_derived_as_metallb_does(timers: dict[str, str], hold: int, keepalive: int) -> None:
    tor = config(peers=[peer(**timers)]).peers["tor"]
    assert (tor.hold_time_s, tor.keepalive_time_s) == (hold, keepalive)


@pytest.mark.parametrize("fields", [
    {"myASN": None}, {"myASN": 0}, {"peerASN": None}, {"dynamicASN": "external"}, {"peerASN": None, "dynamicASN": "x"},
    {"peerAddress": None}, {"interface": "eth1"}, {"peerAddress": "tor1"}, {"routerID": "2001:db8::1"},
    {"holdTime": "2s"}, {"holdTime": "30s", "keepaliveTime": "30s"}, {"holdTime": "0s", "keepaliveTime": "1s"},
    {"keepaliveTime": "1.5s"}, {"connectTime": "0s"}, {"peerPort": 0}, {"peerASN": 64512, "ebgpMultiHop": True},
    {"peerASN": None, "dynamicASN": "internal", "ebgpMultiHop": True},
    {"password": "a", "passwordSecret": {"name": "s"}},
    {"passwordSecret": {}}, {"nodeSelectors": {"matchLabels": {}}}, {"vrf": 7}, {"ebgpMultiHop": "true"},
])
def test_invalid_peer_is_left_out(fields: dict[str, Any]) -> None:
    cfg = config(peers=[peer(**fields)], secrets={"s": secret()})
    assert reasons(cfg) == [("tor", R.INVALID_SPEC)] and cfg.peers == {}


def test_unnumbered_dynamic_ibgp_peer() -> None:
    tor = config(peers=[peer(peerASN=None, dynamicASN="internal", peerAddress=None, interface="eth1")]).peers["tor"]
    assert tor.dynamic_asn is DynamicASN.INTERNAL and tor.peer_asn is None and tor.interface == "eth1" and tor.ibgp


@pytest.mark.parametrize(("secrets", "reason"), [
    ({}, R.PASSWORD_SECRET_NOT_FOUND),
    ({"auth": secret(type_="Opaque")}, R.PASSWORD_SECRET_WRONG_TYPE),
    ({"auth": secret(password=None)}, R.PASSWORD_SECRET_NO_PASSWORD),
    ({"auth": {"type": SECRET_TYPE, "data": {"password": "not base64!"}}}, R.PASSWORD_SECRET_NO_PASSWORD),
    ({"auth": {"type": SECRET_TYPE, "data": {"password": base64.b64encode(b"\xff").decode()}}},
     R.PASSWORD_SECRET_NO_PASSWORD),
])
def test_a_password_secret_that_gives_no_password_leaves_the_peer_out(secrets: dict[str, Any], reason: R) -> None:
    cfg = config(peers=[peer(passwordSecret={"name": "auth"})], secrets=secrets)
    assert reasons(cfg) == [("tor", reason)] and cfg.peers == {}
    assert "auth" in cfg.problems[0].message


def test_passwords_from_the_spec_or_the_secret_and_never_in_repr() -> None:
    cfg = config(peers=[peer("a", passwordSecret={"name": "auth"}), peer("b", password="clear")],
                 secrets={"auth": secret("from-secret")})
    assert (cfg.peers["a"].password, cfg.peers["b"].password) == ("from-secret", "clear")
    assert "from-secret" not in repr(cfg) and "clear" not in repr(cfg)


def test_bfd_profile_resolved_missing_or_echo_turned_off_on_multihop() -> None:
    profiles = [obj("fast", receiveInterval=100), obj("echo", echoMode=True)]
    cfg = config(peers=[peer("a", bfdProfile="fast"), peer("b", bfdProfile="none"),
                        peer("c", bfdProfile="echo", ebgpMultiHop=True), peer("d", bfdProfile="echo")],
                 profiles=profiles)
    assert cfg.peers["a"].bfd is not None and cfg.peers["a"].bfd.receive_interval_ms == 100
    assert cfg.peers["b"].bfd is None  # kept, without BFD
    assert cfg.peers["c"].bfd is not None and cfg.peers["c"].bfd.echo_mode is False
    assert cfg.peers["d"].bfd is not None and cfg.peers["d"].bfd.echo_mode is True
    assert reasons(cfg) == [("b", R.BFD_PROFILE_NOT_FOUND), ("c", R.ECHO_MODE_MULTI_HOP)]
    assert cfg.problems_of("BGPPeer", "b")[0].message.startswith("BFDProfile none does not exist")


# --- advertisements against peers and pools ---------------------------------------------------------------


def test_missing_peers_and_pools_are_reported_and_never_become_every_peer() -> None:
    cfg = config(peers=[peer("tor")], advertisements=[obj("a", peers=["tor", "gone"], ipAddressPools=["p", "nope"])],
                 pools={"p": pool("198.18.36.0/24")})
    assert reasons(cfg) == [("a", R.PEER_NOT_FOUND), ("a", R.POOL_NOT_FOUND)]
    adv = cfg.advertisements["a"]
    assert adv.announces_to("tor") and adv.announces_to("gone") and not adv.announces_to("other")
    only_missing = config(advertisements=[obj("b", peers=["gone"])]).advertisements["b"]
    assert not only_missing.announces_to("tor")


def test_a_peer_left_out_counts_as_missing_for_its_advertisements() -> None:
    cfg = config(peers=[peer("tor", passwordSecret={"name": "absent"})], advertisements=[obj("a", peers=["tor"])])
    assert reasons(cfg) == [("tor", R.PASSWORD_SECRET_NOT_FOUND), ("a", R.PEER_NOT_FOUND)]


@pytest.mark.parametrize(("entry", "lengths", "too_short"), [
    ("198.18.36.0/24", {"aggregationLength": 24}, False),
    ("198.18.36.0/24", {"aggregationLength": 28}, False),
    ("198.18.36.0/24", {"aggregationLength": 16}, True),
    ("198.18.36.10-198.18.36.20", {"aggregationLength": 30}, False),  # 10/31, 12/30, 16/30, 20/32
    ("198.18.36.10-198.18.36.20", {"aggregationLength": 29}, True),
    ("198.18.36.7", {"aggregationLength": 31}, True),
    ("2001:db8:c1::/64", {"aggregationLengthV6": 64}, False),
    ("2001:db8:c1::/64", {"aggregationLengthV6": 48}, True),
    ("2001:db8:c1::/64", {"aggregationLength": 8}, False),  # the IPv4 length says nothing of IPv6 entries
])
def test_an_aggregate_wider_than_a_pool_entry_leaves_the_advertisement_out(entry: str, lengths: dict[str, int],
                                                                           too_short: bool) -> None:
    cfg = config(advertisements=[obj("a", ipAddressPools=["p"], **lengths)], pools={"p": pool(entry)})
    assert reasons(cfg) == ([("a", R.AGGREGATION_TOO_SHORT)] if too_short else [])
    assert ("a" in cfg.advertisements) is not too_short


def test_aggregation_is_checked_against_the_pools_selected_by_label_only() -> None:
    pools = {"small": pool("198.18.36.0/28", tier="gold"), "big": pool("198.18.37.0/24", tier="bronze")}
    adv = obj("a", aggregationLength=26, ipAddressPoolSelectors=[{"matchLabels": {"tier": "bronze"}}])
    assert reasons(config(advertisements=[adv], pools=pools)) == []
    everything = obj("b", aggregationLength=26)  # every pool, the /28 included
    assert reasons(config(advertisements=[everything], pools=pools)) == [("b", R.AGGREGATION_TOO_SHORT)]
