"""Whose path a node announces on others' behalf: a scenario table, then properties over whole clusters."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from ironlb.core.bgp.proxy import Carry, CarryReason, carry

R = CarryReason
A, B, C, D, E = "node-a", "node-b", "node-c", "node-d", "node-e"


@pytest.mark.parametrize(("name", "me", "carriers", "holders", "expected"), [
    ("cluster, 3 nodes: each carries the one before it", B, {A, B, C}, {A, B, C}, Carry(R.FOR_PEER, A)),
    ("cluster, 3 nodes: the first carries the last", A, {A, B, C}, {A, B, C}, Carry(R.FOR_PEER, C)),
    ("A died: B now carries C (what A's dead session carried)", B, {B, C}, {B, C}, Carry(R.FOR_PEER, C)),
    ("A died: C still carries B", C, {B, C}, {B, C}, Carry(R.FOR_PEER, B)),
    ("the last survivor announces its own path", B, {B}, {B}, Carry(R.ALONE, B)),
    ("local, endpoint only here: the others carry me", A, {A}, {A, B, C}, Carry(R.CARRIED_BY_OTHERS)),
    ("local, endpoint only on A: B carries A", B, {A}, {A, B, C}, Carry(R.FOR_PEER, A)),
    ("local, endpoint only on A: C carries A too (two paths)", C, {A}, {A, B, C}, Carry(R.FOR_PEER, A)),
    ("local on A and B: C would make shares unequal", C, {A, B}, {A, B, C}, Carry(R.SPARE)),
    ("local on A and B, two spares: one round each", D, {A, B}, {A, B, C, D}, Carry(R.FOR_PEER, B)),
    ("local, the only endpoint's node died: nothing to carry", B, set(), {B, C}, Carry(R.NO_CARRIER)),
    ("alone and not a carrier", B, {A}, {B}, Carry(R.FOR_PEER, A)),
    ("no session to this peer", D, {A, B}, {A, B}, Carry(R.NO_SESSION)),
])
def test_carry(name: str, me: str, carriers: set[str], holders: set[str], expected: Carry) -> None:
    assert carry(me, carriers, holders) == expected, name


def paths(carriers: set[str], holders: set[str]) -> Counter[str]:
    """The router's paths by next hop when every holder announces what carry() tells it."""
    return Counter(c.next_hop_of for h in holders if (c := carry(h, carriers, holders)).next_hop_of)


@pytest.mark.parametrize("size", range(2, 7))
def test_every_carrier_has_equal_paths_none_over_its_own_session(size: int) -> None:
    nodes = [f"node-{i}" for i in range(size)]
    for k in range(1, size + 1):
        for carriers in map(set, itertools.combinations(nodes, k)):
            found = paths(carriers, set(nodes))
            assert set(found) == carriers, (carriers, found)
            assert len(set(found.values())) == 1, (carriers, found)  # equal ECMP shares
            for h in nodes:
                assert carry(h, carriers, set(nodes)).next_hop_of != h


@pytest.mark.parametrize("size", range(2, 7))
def test_a_death_only_replaces_paths_over_live_sessions(size: int) -> None:
    """When one node dies, its next hop is at the router over no live session once the survivors see it."""
    nodes = [f"node-{i}" for i in range(size)]
    for dead in nodes:
        alive = set(nodes) - {dead}
        after = paths(alive, alive)
        assert dead not in after and set(after) == alive
