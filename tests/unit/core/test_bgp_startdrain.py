"""What a drained node drains first of the routes FRR still announces when it reads FRR back: a scenario table."""

from __future__ import annotations

import pytest

from ironlb.core.bgp.index import Announcements
from ironlb.core.bgp.model import Announcement, Attributes, BfdProfile, Desired, Peer
from ironlb.core.bgp.startdrain import StartDrain, leftover

R1 = Peer("r1", 64513, 64512, address="198.18.36.1")
R2 = Peer("r2", 64513, 64512, address="198.18.36.2")
FAST = BfdProfile("fast", 100, 100)
V1, V2 = "198.18.37.1/32", "198.18.37.2/32"
PLAIN, LP = Attributes(), Attributes.of(200, ["65000:1"])


def ann(prefix: str, *peers: str, attrs: Attributes = PLAIN) -> Announcement:
    return Announcement(prefix, frozenset(peers or ("r1",)), attrs)


def state(*announcements: Announcement, peers: tuple[Peer, ...] = (R1,), gshut: bool = False) -> Desired:
    return Desired.of(peers, [FAST], announcements, gshut)


@pytest.mark.parametrize(("case", "held", "desired", "step", "drained"), [
    ("FRR empty (a new node, or the predecessor's final drain ran)", Desired(), state(ann(V1)),
     StartDrain.NOTHING_LEFT, ()),
    ("peers only: the predecessor had drained already", state(gshut=True), state(ann(V1)),
     StartDrain.NOTHING_LEFT, ()),
    ("a route the node still has", state(ann(V1)), state(ann(V1)), StartDrain.DRAIN_LEFT, (ann(V1),)),
    ("the predecessor stopped mid-drain", state(ann(V1), gshut=True), state(ann(V1)),
     StartDrain.FINISH_LEFT_DRAIN, (ann(V1),)),
    ("its Service went meanwhile: withdrawn at once", state(ann(V1)), state(), StartDrain.NOTHING_LEFT, ()),
    ("no desired state yet: nothing is known to be kept", state(ann(V1)), Desired(), StartDrain.NOTHING_LEFT, ()),
    ("one kept, one gone", state(ann(V1), ann(V2)), state(ann(V2)), StartDrain.DRAIN_LEFT, (ann(V2),)),
    ("FRR's attributes are kept: only graceful shutdown changes what the router sees",
     state(ann(V1, attrs=LP)), state(ann(V1)), StartDrain.DRAIN_LEFT, (ann(V1, attrs=LP),)),
    ("now to another peer: still this node's prefix, drained where FRR sends it",
     state(ann(V1), peers=(R1, R2)), state(ann(V1, "r2"), peers=(R1, R2)), StartDrain.DRAIN_LEFT, (ann(V1),)),
    ("its peer left the desired state: the prefix still counts",
     state(ann(V1)), state(ann(V1, "r2"), peers=(R2,)), StartDrain.DRAIN_LEFT, (ann(V1),)),
    ("the feed's indexed announcements", state(ann(V1), ann(V2)),
     Desired.of([R1], [FAST], Announcements.of([ann(V1)])), StartDrain.DRAIN_LEFT, (ann(V1),)),
])
def test_what_drains_first(case: str, held: Desired, desired: Desired, step: StartDrain,
                           drained: tuple[Announcement, ...]) -> None:
    left = leftover(held, desired)
    assert left.step is step, case
    assert tuple(left.routes.announcements) == drained, case
    # FRR's own peers, profiles and graceful shutdown: draining changes nothing else the router sees
    assert (left.routes.peers, left.routes.profiles, left.routes.graceful_shutdown) == (
        held.peers, held.profiles, held.graceful_shutdown), case
