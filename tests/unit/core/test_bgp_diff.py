"""The typed changes between two desired FRR states: scenario tables, order, and O(changed) with `touched`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ironlb.core.bgp.diff import (
    AttributesRemoved,
    AttributesSet,
    ExclusionAdded,
    ExclusionRemoved,
    NetworkAdded,
    NetworkRemoved,
    PeerAdded,
    PeerChanged,
    PeerRemoved,
    ProfileRemoved,
    ProfileSet,
    RouteMapDelaySet,
    RouterSet,
    diff,
    held_after,
)
from ironlb.core.bgp.index import Announcements
from ironlb.core.bgp.model import ROUTE_MAP_DELAY_S, Announcement, Attributes, BfdProfile, Desired, Peer, Router

R1 = Peer("r1", 64513, 64512, address="198.18.36.1", router_id="198.18.36.10")
R2 = Peer("r2", 64513, 64512, address="198.18.36.2")
FAST = BfdProfile("fast", 100, 100)
V1, V2, V6 = "198.18.37.1/32", "198.18.37.2/32", "2001:db8:c1::1/128"
PLAIN = Attributes()
LP = Attributes.of(200, ["65000:2", "65000:1", "65000:1"])
ROUTER = Router("", 64513, "198.18.36.10")


def state(*announcements: Announcement, peers: tuple[Peer, ...] = (R1,), gshut: bool = False) -> Desired:
    return Desired.of(peers, [FAST], announcements, gshut)


def ann(prefix: str, *peers: str, attrs: Attributes = PLAIN) -> Announcement:
    return Announcement(prefix, frozenset(peers), attrs)


def kinds(changes: list) -> list[str]:
    return [type(c).__name__ for c in changes]


def test_from_nothing_the_whole_config_in_dependency_order() -> None:
    changes = diff(Desired(), state(ann(V1, "r1", attrs=LP)))
    assert kinds(changes) == ["ProfileSet", "RouteMapDelaySet", "RouterSet", "PeerAdded", "AttributesSet",
                              "NetworkAdded"]
    assert changes[1] == RouteMapDelaySet(ROUTE_MAP_DELAY_S)
    assert changes[4:] == [AttributesSet(LP.group, LP), NetworkAdded(ROUTER, V1, LP.group)]


def test_back_to_nothing_removes_in_reverse() -> None:
    changes = diff(state(ann(V1, "r1")), Desired())
    # The router's removal takes its networks: no `router bgp` is entered (and so made again) to remove them;
    # their route-maps go after it, never before a network line that uses them; the last router takes the
    # inbound policy that its neighbors named, and bgpd's route-map delay timer goes back to FRR's default.
    assert kinds(changes) == ["PeerRemoved", "RouterRemoved", "InPolicyRemoved", "RouteMapDelaySet",
                              "AttributesRemoved", "ProfileRemoved"]
    assert changes[3] == RouteMapDelaySet(None)
    # A router that stays keeps both.
    kept = kinds(diff(state(peers=(R1, replace(R2, vrf="red"))), state()))
    assert "InPolicyRemoved" not in kept and "RouteMapDelaySet" not in kept


def test_the_route_map_delay_timer_is_set_once_and_again_only_where_frr_differs() -> None:
    # A second router (another VRF) does not set it again; what FRR holds without it (an FRR configured by an
    # older speaker, read back) gets it with nothing else.
    two = state(peers=(R1, replace(R2, vrf="red")))
    assert kinds(diff(Desired(), two)).count("RouteMapDelaySet") == 1
    assert kinds(diff(state(), two)).count("RouteMapDelaySet") == 0
    assert diff(replace(state(), route_map_delay_s=None), state()) == [RouteMapDelaySet(ROUTE_MAP_DELAY_S)]


@pytest.mark.parametrize(("name", "old", "new", "expected"), [
    ("same state: nothing", state(ann(V1, "r1")), state(ann(V1, "r1")), []),
    ("announce: one network (its attribute set already there)",
     state(ann(V1, "r1")), state(ann(V1, "r1"), ann(V2, "r1")), [NetworkAdded(ROUTER, V2, PLAIN.group)]),
    ("withdraw: one network", state(ann(V1, "r1"), ann(V2, "r1")), state(ann(V1, "r1")),
     [NetworkRemoved(ROUTER, V2)]),
    ("new attributes: a new set, the network takes it in place, the old set goes",
     state(ann(V1, "r1")), state(ann(V1, "r1", attrs=LP)),
     [AttributesSet(LP.group, LP), NetworkAdded(ROUTER, V1, LP.group), AttributesRemoved(PLAIN.group)]),
    ("drain: graceful shutdown on the router", state(ann(V1, "r1")), state(ann(V1, "r1"), gshut=True),
     [RouterSet(ROUTER, True)]),
    ("profile changed in place", state(), replace(state(), profiles={"fast": BfdProfile("fast", 300, 300)}),
     [ProfileSet(BfdProfile("fast", 300, 300))]),
])
def test_scenarios(name: str, old: Desired, new: Desired, expected: list) -> None:
    assert diff(old, new) == expected, name


def test_a_prefix_kept_from_one_peer_of_its_vrf_is_an_exclusion() -> None:
    both, one = state(ann(V1, "r1", "r2"), peers=(R1, R2)), state(ann(V1, "r1"), peers=(R1, R2))
    assert diff(both, one) == [ExclusionAdded("r2", V1)]  # r1 still gets it: the network stays
    assert diff(one, both) == [ExclusionRemoved("r2", V1)]
    # A new prefix for r1 only: r2's exclusion goes before the network, so it never leaks to r2.
    assert diff(one, state(ann(V1, "r1"), ann(V2, "r1"), peers=(R1, R2))) == [
        ExclusionAdded("r2", V2), NetworkAdded(ROUTER, V2, PLAIN.group)]


def test_attributes_are_the_prefixes_merged_over_its_peers() -> None:
    two = state(ann(V1, "r1", attrs=Attributes.of(100, ["65000:1"])), ann(V1, "r2", attrs=LP), peers=(R1, R2))
    merged = Attributes.of(200, ["65000:1", "65000:2"])
    assert [c for c in diff(Desired(), two) if isinstance(c, NetworkAdded)] == [
        NetworkAdded(ROUTER, V1, merged.group)]


def test_peer_settings_change_in_place_and_identity_changes_remove_first() -> None:
    timers = replace(R1, hold_time_s=9)
    assert diff(state(), state(peers=(timers,))) == [PeerChanged(R1, timers)]
    moved = replace(R1, address="198.18.36.3")
    assert kinds(diff(state(), state(peers=(moved,)))) == ["PeerRemoved", "PeerAdded"]
    other_asn = replace(R1, my_asn=64600)
    changes = diff(state(ann(V1, "r1")), state(ann(V1, "r1"), peers=(other_asn,)))
    assert kinds(changes)[:4] == ["PeerRemoved", "RouterRemoved", "RouterSet", "PeerAdded"]
    assert NetworkAdded(Router("", 64600, "198.18.36.10"), V1, PLAIN.group) in changes


def test_the_router_id_belongs_to_the_router() -> None:
    assert diff(state(), state(peers=(replace(R1, router_id="198.18.36.11"),))) == [
        RouterSet(Router("", 64513, "198.18.36.11"), False)]


def test_a_peer_with_another_asn_in_the_same_vrf_is_left_out_and_named() -> None:
    odd = Peer("r0", 64999, 64512, address="198.18.36.9")
    desired = state(ann(V1, "r1", "r0"), peers=(R1, odd))
    assert desired.conflicts() == ["r1"]  # r0 sorts first: its ASN is the VRF's
    assert [c.peer for c in diff(Desired(), desired) if isinstance(c, PeerAdded)] == [odd]


def test_touched_limits_the_comparison_to_the_prefixes_that_changed() -> None:
    many = [ann(f"198.18.38.{i}/32", "r1") for i in range(200)]
    old, new = state(*many), state(*many[1:], ann(V6, "r1"))
    # A partial diff re-states the attribute sets its prefixes use and removes only those left without a user.
    assert diff(old, new, touched={many[0].prefix, V6}) == [
        AttributesSet(PLAIN.group, PLAIN), NetworkAdded(ROUTER, V6, PLAIN.group), NetworkRemoved(ROUTER,
                                                                                               many[0].prefix)]
    assert diff(state(ann(V1, "r1")), state(), touched={V1}) == [NetworkRemoved(ROUTER, V1),
                                                                AttributesRemoved(PLAIN.group)]


def test_two_advertisements_of_one_prefix_to_one_peer_merge() -> None:
    merged = state(ann(V1, "r1", attrs=Attributes.of(100, ["65000:1"])),
                   ann(V1, "r1", attrs=Attributes.of(300, ["65000:2"], ["1:2:3"])))
    assert merged.routes() == {("r1", V1): Attributes(300, ("65000:1", "65000:2"), ("1:2:3",))}


def test_timers_are_held_in_pairs() -> None:
    assert (Peer("p", 1, hold_time_s=9).keepalive_time_s, Peer("p", 1, keepalive_time_s=2).hold_time_s) == (3, 6)


def test_profiles_removed_after_their_peers() -> None:
    changes = diff(state(), Desired.of([replace(R1, bfd_profile=None)]))
    assert changes[-1] == ProfileRemoved("fast")
    assert PeerRemoved not in set(map(type, changes))


R6 = Peer("r6", 64513, 64512, address="2001:db8:c1::fe")


def test_a_session_without_multiprotocol_gets_only_its_familys_routes_and_needs_no_exclusion() -> None:
    v4_only, v6_only = replace(R1, disable_mp=True), replace(R6, disable_mp=True)
    dual = state(ann(V1, "r1", "r6"), ann(V6, "r1", "r6"), peers=(v4_only, v6_only))
    assert set(dual.routes()) == {("r1", V1), ("r6", V6)}
    assert not [c for c in diff(Desired(), dual) if isinstance(c, ExclusionAdded)]
    # With multiprotocol (the default) each session carries both families.
    assert set(state(ann(V1, "r1", "r6"), ann(V6, "r1", "r6"), peers=(R1, R6)).routes()) == {
        ("r1", V1), ("r1", V6), ("r6", V1), ("r6", V6)}


def test_turning_multiprotocol_off_adds_the_neighbor_anew() -> None:
    changes = diff(state(), state(peers=(replace(R1, disable_mp=True),)))
    assert changes == [PeerRemoved(R1), PeerAdded(replace(R1, disable_mp=True))]


def test_an_unnumbered_session_carries_every_family() -> None:
    unnumbered = Peer("u", 64513, 64512, interface="eth1", disable_mp=True)
    assert unnumbered == Peer("u", 64513, 64512, interface="eth1")  # read back as it is written


def test_a_stray_attribute_set_goes_in_the_next_full_diff() -> None:
    # What a restarted speaker reads back after every peer was deleted: a route-map that no network uses.
    orphan = replace(Desired(), stray_sets=frozenset({LP.group}))
    assert diff(orphan, Desired()) == [AttributesRemoved(LP.group)]
    # A stray the new state uses again is stated (it may not hold the set's settings) and kept.
    changes = diff(replace(state(), stray_sets=frozenset({LP.group})), state(ann(V1, "r1", attrs=LP)))
    assert changes == [AttributesSet(LP.group, LP), NetworkAdded(ROUTER, V1, LP.group)]
    # A partial diff that does not touch it leaves it; what FRR holds after it still names it.
    with_peer = replace(state(), stray_sets=frozenset({LP.group}))
    assert diff(with_peer, state(ann(V1, "r1")), touched={V1}) == [
        AttributesSet(PLAIN.group, PLAIN), NetworkAdded(ROUTER, V1, PLAIN.group)]
    assert held_after(with_peer, state(ann(V1, "r1")), touched={V1}).stray_sets == {LP.group}
    # One that uses it again makes it no stray: its count says when it goes.
    assert held_after(with_peer, state(ann(V1, "r1", attrs=LP)), touched={V1}).stray_sets == frozenset()
    # A peer that comes or goes makes the diff full: nothing is left stray.
    assert held_after(orphan, state(), touched={V1}).stray_sets == frozenset()


def held(*announcements: Announcement) -> Desired:
    """What the driver holds after applying a state with ANNOUNCEMENTS in full (its sets' users counted)."""
    return held_after(Desired(), state(*announcements))


SHARED_LP = (ann(V1, "r1", attrs=LP), ann(V2, "r1", attrs=LP))


@pytest.mark.parametrize(("name", "old", "new", "touched", "expected"), [
    ("a set's last prefix withdrawn: its network goes, then its route-map",
     held(ann(V1, "r1", attrs=LP), ann(V2, "r1")), state(ann(V2, "r1")), {V1},
     [NetworkRemoved(ROUTER, V1), AttributesRemoved(LP.group)]),
    ("a set another prefix still uses is kept",
     held(*SHARED_LP), state(ann(V2, "r1", attrs=LP)), {V1}, [NetworkRemoved(ROUTER, V1)]),
    ("both of a set's prefixes withdrawn in one batch: the set goes after both networks",
     held(*SHARED_LP, ann(V6, "r1")), state(ann(V6, "r1")), {V1, V2},
     [NetworkRemoved(ROUTER, V1), NetworkRemoved(ROUTER, V2), AttributesRemoved(LP.group)]),
    ("a prefix changes set: the new set, the network in place, then the old set it was the last user of",
     held(ann(V1, "r1", attrs=LP), ann(V2, "r1")), state(ann(V1, "r1"), ann(V2, "r1")), {V1},
     [AttributesSet(PLAIN.group, PLAIN), NetworkAdded(ROUTER, V1, PLAIN.group), AttributesRemoved(LP.group)]),
    ("one prefix leaves a set as another joins it: that set stays, the one the joiner left goes",
     held(ann(V1, "r1", attrs=LP), ann(V2, "r1")), state(ann(V2, "r1", attrs=LP)), {V1, V2},
     [AttributesSet(LP.group, LP), NetworkAdded(ROUTER, V2, LP.group), NetworkRemoved(ROUTER, V1),
      AttributesRemoved(PLAIN.group)]),
    ("an IPv6 network of the set keeps it",
     held(ann(V1, "r1", attrs=LP), ann(V6, "r1", attrs=LP)), state(ann(V6, "r1", attrs=LP)), {V1},
     [NetworkRemoved(ROUTER, V1)]),
    ("a touched prefix that did not change removes nothing",
     held(ann(V1, "r1", attrs=LP)), state(ann(V1, "r1", attrs=LP)), {V1}, [AttributesSet(LP.group, LP)]),
])
def test_partial_diff_scenarios(name: str, old: Desired, new: Desired, touched: set[str], expected: list) -> None:
    assert diff(old, new, touched) == expected, name
    after = held_after(old, new, touched)
    assert after.stray_sets == frozenset(), name
    # The counts a partial diff keeps are those a full count of the new state finds.
    assert after.set_users == held_after(Desired(), new).set_users, name


def test_a_set_emptied_over_partial_diffs_goes_with_its_last_prefix() -> None:
    before = held(*SHARED_LP, ann(V6, "r1"))
    middle = held_after(before, state(ann(V2, "r1", attrs=LP), ann(V6, "r1")), touched={V1})
    assert middle.set_users == {LP.group: 1, PLAIN.group: 1}
    assert diff(middle, state(ann(V6, "r1")), touched={V2}) == [NetworkRemoved(ROUTER, V2),
                                                               AttributesRemoved(LP.group)]


def test_a_partial_diff_counts_uncounted_state_once() -> None:
    # A state with no counts (a desired state given as OLD) is counted in full: the answer is the same.
    old = state(*SHARED_LP)
    assert diff(old, state(ann(V2, "r1", attrs=LP)), touched={V1}) == [NetworkRemoved(ROUTER, V1)]
    assert diff(old, state(), touched={V1, V2}) == [
        NetworkRemoved(ROUTER, V1), NetworkRemoved(ROUTER, V2), AttributesRemoved(LP.group)]


def test_a_set_other_prefixes_still_use_is_not_removed_by_the_full_diff() -> None:
    old, new = held(*SHARED_LP), state(ann(V2, "r1", attrs=LP))
    after = held_after(old, new, touched={V1})
    assert after.stray_sets == frozenset() and after.set_users == {LP.group: 1}
    assert diff(after, new) == []
    assert held_after(after, new).stray_sets == frozenset()


def test_a_partial_diff_costs_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    many = Announcements.of(ann(f"198.18.38.{i}/32", "r1", attrs=LP if i == 0 else PLAIN) for i in range(200))
    old = held_after(Desired(), replace(state(), announcements=many))
    new = replace(old, announcements=many.updated({"198.18.38.0/32": ()}), set_users=None)

    def scan(self: Announcements) -> None:
        raise AssertionError("a partial diff read every announcement")
    monkeypatch.setattr(Announcements, "__iter__", scan)
    assert diff(old, new, touched={"198.18.38.0/32"}) == [
        NetworkRemoved(ROUTER, "198.18.38.0/32"), AttributesRemoved(LP.group)]
    assert held_after(old, new, touched={"198.18.38.0/32"}).set_users == {PLAIN.group: 199}
