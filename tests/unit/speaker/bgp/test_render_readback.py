"""Rendering and reading back: FRR's running config (captured from FRR 8.4 after the driver applied RICH) reads
back as RICH, so a restarted speaker has nothing to send; and the commands each change renders."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ironlb.api.bgp_status import BFDState, SessionState
from ironlb.api.reasons import BGPSessionReason
from ironlb.core.bgp.diff import PeerChanged, diff
from ironlb.core.bgp.model import Announcement, Attributes, BfdProfile, Desired, DynamicAsn, Peer
from ironlb.speaker.bgp.readback import read_desired
from ironlb.speaker.bgp.render import Batch, Daemon, render
from ironlb.speaker.bgp.status import sessions

DATA = Path(__file__).parent / "data"
RTR = Peer("rtr", 64513, 64512, address="198.18.39.1", hold_time_s=3, connect_time_s=1, bfd_profile="fast",
           router_id="198.18.39.2")
SPINE = Peer("spine-b", 64513, dynamic_asn=DynamicAsn.EXTERNAL, address="198.18.39.9", port=1179,
             source_address="198.18.39.2", password="s3cret", ebgp_multihop=True, graceful_restart=True,
             keepalive_time_s=10)
RICH = Desired.of(
    [RTR, SPINE, Peer("red", 64520, 64512, address="198.18.39.17", vrf="red")],
    [BfdProfile("fast", 100, 100),
     BfdProfile("echo", 300, 200, 5, echo_interval_ms=50, passive_mode=True, minimum_ttl=250)],
    [Announcement("198.18.39.200/32", frozenset({"rtr", "spine-b"}), Attributes.of(250, ["65000:7"], ["64513:1:2"])),
     Announcement("198.18.39.201/32", frozenset({"rtr"})),
     Announcement("2001:db8:c1:39::200/128", frozenset({"rtr", "spine-b"}), Attributes.of(communities=["65000:9"])),
     Announcement("198.18.39.202/32", frozenset({"red"}))])


def running() -> Desired:
    return read_desired((DATA / "bgpd-running.conf").read_text(), (DATA / "bfdd-running.conf").read_text())


def test_frrs_running_config_reads_back_as_what_was_applied() -> None:
    assert diff(running(), RICH) == []
    assert running().peers["spine-b"] == replace(SPINE, router_id="198.18.39.2")  # the router's id


def test_a_change_after_a_restart_is_only_that_change() -> None:
    changed = replace(RICH, peers={**RICH.peers, "rtr": replace(RTR, connect_time_s=2)})
    assert diff(running(), changed) == [PeerChanged(replace(RTR), replace(RTR, connect_time_s=2))]
    assert render(diff(running(), changed)) == [
        Batch(Daemon.BGPD, ("router bgp 64513", "neighbor 198.18.39.1 timers connect 2", "exit"))]


def test_an_empty_frr_gets_the_whole_config() -> None:
    whole = render(diff(read_desired(""), RICH))
    assert [b.daemon for b in whole] == [Daemon.BFDD, Daemon.BGPD]
    # bgpd's route-map delay timer first, once, before any route-map a neighbor names is made.
    assert whole[1].commands[0] == "bgp route-map delay-timer 1"
    assert whole[1].commands.count("bgp route-map delay-timer 1") == 1
    assert any(c.startswith("network 2001:db8:c1:39::200/128 route-map ILB-A-") for c in whole[1].commands)
    assert "router bgp 64520 vrf red" in whole[1].commands


def test_an_announce_and_a_withdraw_are_one_small_batch_each() -> None:
    more = replace(RICH, announcements=(*RICH.announcements, Announcement("198.18.39.203/32", frozenset({"rtr"}))))
    [announce] = render(diff(RICH, more, touched={"198.18.39.203/32"}))
    group = Attributes().group
    # spine-b shares rtr's VRF and does not get it: its exclusion goes first, then the one network.
    assert announce == Batch(Daemon.BGPD, (
        f"route-map ILB-A-{group} permit 10", "exit",
        "ip prefix-list ILB-spine-b-X-4 permit 198.18.39.203/32",
        "router bgp 64513", "address-family ipv4 unicast", f"network 198.18.39.203/32 route-map ILB-A-{group}",
        "exit-address-family", "exit"))
    [withdraw] = render(diff(more, RICH, touched={"198.18.39.203/32"}))
    assert withdraw == Batch(Daemon.BGPD, (
        "router bgp 64513", "address-family ipv4 unicast", "no network 198.18.39.203/32", "exit-address-family",
        "exit", "no ip prefix-list ILB-spine-b-X-4 permit 198.18.39.203/32"))


ORPHANS = """frr version 8.4
!
route-map ILB-A-g0a1b2c3d4e permit 10
 set ip next-hop 192.0.2.13
exit
!
route-map ILB-A-g5f6a7b8c9d permit 10
exit
!
route-map OPERATORS-OWN permit 10
 set local-preference 50
exit
!
"""


def test_route_maps_no_network_uses_read_back_as_strays_and_go() -> None:
    # What the lab's nodes held after every peer, pool and Service was deleted: no `router bgp`, two route-maps.
    held = read_desired(ORPHANS)
    assert (held.peers, list(held.announcements)) == ({}, [])
    assert held.stray_sets == {"g0a1b2c3d4e", "g5f6a7b8c9d"}
    # Only IronLB's: a route-map not named ILB-A- is the operator's and stays.
    assert render(diff(held, Desired())) == [Batch(Daemon.BGPD, (
        "no route-map ILB-A-g0a1b2c3d4e", "no route-map ILB-A-g5f6a7b8c9d"))]


def test_the_last_router_goes_with_the_inbound_policy_its_neighbors_named() -> None:
    held = running()
    batches = render(diff(held, Desired()))
    bgpd = next(b.commands for b in batches if b.daemon is Daemon.BGPD)
    routers = [i for i, c in enumerate(bgpd) if c.startswith("no router bgp")]
    assert bgpd.count("no route-map ILB-IN") == 1 and bgpd.index("no route-map ILB-IN") > max(routers)
    assert bgpd.count("no bgp route-map delay-timer") == 1  # FRR's default again


def test_an_frr_without_the_route_map_delay_timer_gets_it_alone() -> None:
    # What an older speaker left: everything but the timer line. FRR prints the timer only when not its default.
    text = (DATA / "bgpd-running.conf").read_text().replace("bgp route-map delay-timer 1\n", "")
    assert read_desired(text).route_map_delay_s is None
    held = read_desired(text, (DATA / "bfdd-running.conf").read_text())
    assert render(diff(held, RICH)) == [Batch(Daemon.BGPD, ("bgp route-map delay-timer 1",))]


def test_a_route_map_is_a_stray_only_when_no_network_line_names_it() -> None:
    assert running().stray_sets == frozenset()
    # 198.18.39.202/32 in VRF red shares its set with 198.18.39.201/32: that set stays in use.
    text = (DATA / "bgpd-running.conf").read_text()
    without = "\n".join(line for line in text.splitlines() if "network 198.18.39.201/32" not in line
                        and "network 2001:db8:c1:39::200/128" not in line)
    assert read_desired(without).stray_sets == {"gbfb598f34e"}


def test_session_status_from_bgpds_json() -> None:
    by_peer = {s.peer: s for s in sessions((DATA / "neighbors.json").read_text())}
    rtr, spine, red = by_peer["rtr"], by_peer["spine-b"], by_peer["red"]
    assert (rtr.state, rtr.bfd, rtr.hold_time_ms, rtr.keepalive_ms, rtr.prefixes_sent) == (
        SessionState.ESTABLISHED, BFDState.UP, 3000, 1000, 2)
    # bgpd's last reset of both is "Waiting for peer OPEN", set when the peer's address became reachable: spine-b
    # has not come up (no TCP connection, no OPEN); rtr did, and never went down since.
    assert (spine.state, spine.bfd, spine.last_error, spine.last_error_text) == (
        SessionState.CONNECT, BFDState.OFF, BGPSessionReason.CONNECT_FAILED, "Waiting for peer OPEN")
    assert rtr.last_error is None
    assert (red.vrf, red.state, red.last_error, red.last_error_text) == (
        "red", SessionState.IDLE, BGPSessionReason.CONNECTION_RESET, "Waiting for VRF to be initialized")


@pytest.mark.parametrize(("bgpd", "bfdd", "state", "bfd"), [
    ("Clearing", "Up", SessionState.IDLE, BFDState.UP),  # states RFC 4271's machine lacks read as Idle
    ("Deleted", "Unknown", SessionState.IDLE, BFDState.DOWN),
    ("OpenSent", "AdminDown", SessionState.OPEN_SENT, BFDState.ADMIN_DOWN),
])
def test_bgpds_words_parse_straight_into_the_apis(bgpd: str, bfdd: str, state: SessionState, bfd: BFDState) -> None:
    neighbors = {"default": {"192.0.2.1": {"bgpState": bgpd, "peerBfdInfo": {"status": bfdd}, "lastResetCode": 0}}}
    [session] = sessions(json.dumps(neighbors))
    assert (session.state, session.bfd, session.last_error) == (state, bfd, None)


def test_an_unreachable_bgpd_has_no_sessions_to_parse() -> None:
    assert sessions("") == []


V4_ONLY = Peer("v4", 64513, 64512, address="192.0.2.254", disable_mp=True)
V6_ONLY = Peer("v6", 64513, 64512, address="2001:db8::fe", disable_mp=True)
SPLIT = Desired.of([V4_ONLY, V6_ONLY], [], [Announcement("203.0.113.184/32", frozenset({"v4", "v6"})),
                                            Announcement("2001:db8:ffff::b00/128", frozenset({"v4", "v6"}))])


def test_a_session_without_multiprotocol_is_activated_in_its_own_family_only() -> None:
    [bgpd] = render(diff(Desired(), SPLIT))
    activations, family = [], ""
    for command in bgpd.commands:
        family = command if command.startswith("address-family") else family
        if command.endswith(" activate"):
            activations.append((family, command))
    assert activations == [("address-family ipv4 unicast", "neighbor 192.0.2.254 activate"),
                           ("address-family ipv6 unicast", "neighbor 2001:db8::fe activate")]
    assert not [c for c in bgpd.commands if "prefix-list" in c and " permit " in c]  # no exclusion is needed


def test_a_session_without_multiprotocol_reads_back_as_it_was_applied() -> None:
    group = Attributes().group
    config = "\n".join([
        "bgp route-map delay-timer 1", "router bgp 64513", " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " no bgp network import-check", " neighbor 192.0.2.254 remote-as 64512",
        " neighbor 192.0.2.254 description ilb:v4", " neighbor 2001:db8::fe remote-as 64512",
        " neighbor 2001:db8::fe description ilb:v6", " !", " address-family ipv4 unicast",
        f"  network 203.0.113.184/32 route-map ILB-A-{group}", "  neighbor 192.0.2.254 activate",
        "  neighbor 192.0.2.254 route-map ILB-IN in", "  neighbor 192.0.2.254 route-map ILB-OUT-v4 out",
        " exit-address-family", " !", " address-family ipv6 unicast",
        f"  network 2001:db8:ffff::b00/128 route-map ILB-A-{group}", "  neighbor 2001:db8::fe activate",
        "  neighbor 2001:db8::fe route-map ILB-IN in", "  neighbor 2001:db8::fe route-map ILB-OUT-v6 out",
        " exit-address-family", "exit", "!", f"route-map ILB-A-{group} permit 10", "exit", ""])
    assert diff(read_desired(config), SPLIT) == []
    # The same neighbors activated in both families are multiprotocol sessions: a change to add them anew.
    both = config.replace("  neighbor 2001:db8::fe activate", "  neighbor 192.0.2.254 activate\n"
                          "  neighbor 2001:db8::fe activate", 1)
    assert read_desired(both).peers["v4"] == replace(V4_ONLY, disable_mp=False)
