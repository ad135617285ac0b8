"""Announcements by prefix: an update shares what it does not change and leaves the old value whole."""

from __future__ import annotations

from ironlb.core.bgp.index import Announcements
from ironlb.core.bgp.model import Announcement, Attributes, Desired, Peer

TOR = frozenset({"tor"})
A, B, C = (Announcement(f"198.18.36.{i}/32", TOR) for i in (1, 2, 3))
A2 = Announcement(A.prefix, frozenset({"spine"}), Attributes.of(200))
PEERS = {n: Peer(n, 64513, 64512, address=f"198.18.37.{i}") for i, n in enumerate(("tor", "spine"), 1)}


def test_an_update_changes_only_its_prefixes_and_the_old_value_stays() -> None:
    old = Announcements.of([A, B])
    new = old.updated({A.prefix: (A, A2), B.prefix: (), C.prefix: (C,)})
    assert (len(old), set(old), old.of_prefix(B.prefix)) == (2, {A, B}, (B,))
    assert (len(new), set(new), new.of_prefix(A.prefix), new.of_prefix(B.prefix)) == (3, {A, A2, C}, (A, A2), ())
    assert new == (C, A2, A) and old != new  # a sequence like a tuple, whatever the order


def test_a_desired_finds_routes_by_prefix_as_with_a_tuple() -> None:
    indexed = Desired(PEERS, announcements=Announcements.of([A, A2, B]))
    plain = Desired(PEERS, announcements=(A, A2, B))
    for prefixes, count in ((None, 3), ({A.prefix}, 2), ({B.prefix, C.prefix}, 1), (set(), 0)):
        assert indexed.routes(prefixes) == plain.routes(prefixes) and len(plain.routes(prefixes)) == count
