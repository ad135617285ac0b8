"""The ring of monitors: stable, symmetric, every node watched by 2K, and the full mesh when small."""

from __future__ import annotations

import random

from ironlb.speaker.fast.liveness.ring import K, Ring


def names(n: int) -> list[str]:
    """N node names."""
    return [f"node-{i:04d}" for i in range(n)]


def test_with_at_most_2k_plus_1_nodes_the_ring_is_the_full_mesh() -> None:
    for n in range(1, 2 * K + 2):
        ring = Ring(names(n))
        for me in names(n):
            assert ring.neighbours(me) == set(names(n)) - {me}


def test_at_2k_plus_2_nodes_each_node_misses_exactly_one_other() -> None:
    ring = Ring(names(2 * K + 2))
    assert all(len(ring.neighbours(me)) == 2 * K for me in names(2 * K + 2))


def test_neighbours_are_symmetric_and_every_node_has_2k_watchers() -> None:
    ring = Ring(names(500))
    watchers = {me: {w for w in names(500) if me in ring.neighbours(w)} for me in names(500)}
    for me in names(500):
        assert ring.neighbours(me) == watchers[me] and len(watchers[me]) == 2 * K


def test_the_order_is_the_same_whatever_order_the_names_come_in() -> None:
    shuffled = names(200)
    random.Random(1).shuffle(shuffled)
    assert Ring(shuffled).order == Ring(names(200)).order


def test_down_nodes_are_skipped_so_their_neighbours_keep_2k_watchers() -> None:
    ring = Ring(names(100))
    down = set(random.Random(2).sample(names(100), 30))
    for me in set(names(100)) - down:
        around = ring.neighbours(me, down.__contains__)
        assert len(around) == 2 * K and not around & down
        assert all(me in ring.neighbours(other, down.__contains__) for other in around)


def test_adding_a_node_changes_the_neighbours_of_2k_nodes_only() -> None:
    before, after = Ring(names(300)), Ring([*names(300), "node-new"])
    moved = [me for me in names(300) if before.neighbours(me) != after.neighbours(me)]
    assert set(moved) == after.neighbours("node-new")


def test_a_node_not_in_the_node_list_has_no_neighbours() -> None:
    assert Ring(names(10)).neighbours("stranger") == frozenset()


def test_every_node_is_watched_by_at_least_three_others_on_a_large_ring() -> None:
    ring = Ring(names(50))
    assert min(len(ring.neighbours(me)) for me in names(50)) >= 3
