"""A pass over only what changed agrees with a pass over everything: decisions, announcements, forwarding."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ironlb.core.election import elect
from ironlb.speaker.control.follow import Followed
from ironlb.speaker.control.forward import plan as forwarding
from ironlb.speaker.control.forward.kept import KeptForwarding
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.desired import compute
from ironlb.speaker.state.incremental import IncrementalDesired
from tests.unit.speaker.state.test_incremental import BASE, ME, NODES, VARIANTS, event, service


def check(followed: Followed, kept: KeptForwarding, inc: IncrementalDesired, reference: ClusterState,
          alive: frozenset[str]) -> None:
    """What was kept by Service equals the from-scratch result on the reference state."""
    expected = compute(reference.snapshot(alive), ME)
    assert followed.decisions_of(sorted(followed.decisions)) == expected.decisions
    assert followed.announced == expected.announcements
    whole = forwarding.plan(inc.snapshot(alive), ME, expected.announcements)
    assert kept.plan == whole
    assert kept.probes() == forwarding.probes(inc.snapshot(alive), expected.announcements)
    assert sum(followed.reasons.values()) == len(expected.decisions)


def one_pass(followed: Followed, kept: KeptForwarding, inc: IncrementalDesired, alive: frozenset[str],
             forward_all: bool) -> None:
    """As the speaker's pass: the Services changed, those the alive set touched, and the forwarded ones when
    what they all read changed."""
    inc.set_alive(alive)
    table = inc.publish()
    keys = inc.take_changed() | followed.touched_by_alive(alive, inc.keeping)
    forward_all = forward_all or alive != followed.alive
    changed = followed.follow(table, alive, keys)
    kept.update(inc.snapshot(alive), followed.vips_of, set(changed) | (kept.forwarded_keys() if forward_all else set()))


# Found by the search: a Service leaves a shared IP, so the IP is no longer mine, and the Service still on it
# must be given back (its forwarding goes) although nothing of its own changed.
SHARER_LEFT = [("pools", "ADDED", VARIANTS["pools"][1]), ("alive", "", frozenset({"n1", "n2"})),
               ("services", "ADDED", VARIANTS["services"][11 % len(VARIANTS["services"])])]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, max_size=40))
@example(SHARER_LEFT)
def test_a_pass_over_what_changed_equals_a_pass_over_everything(events: list[tuple[str, str, Any]]) -> None:
    inc, reference, alive = IncrementalDesired(ME), ClusterState(), frozenset(NODES)
    followed, kept = Followed(ME), KeptForwarding(ME)
    forward_all = False
    for kind, ev, obj in [*BASE, ("publish", "", None), *events, ("publish", "", None)]:
        if kind == "alive":
            alive = obj
        elif kind != "publish":
            inc.apply(kind, ev, obj)
            reference.apply(kind, ev, obj)
            forward_all = forward_all or kind == "nodes"
            continue
        one_pass(followed, kept, inc, alive, forward_all)
        forward_all = False
        check(followed, kept, inc, reference, alive)


def test_a_service_change_decides_that_service_alone() -> None:
    inc, followed = IncrementalDesired(ME), Followed(ME)
    for kind, ev, obj in BASE:
        inc.apply(kind, ev, obj)
    alive = frozenset(NODES)
    followed.follow(inc.publish(), alive, None)
    inc.take_changed()
    inc.apply("services", "MODIFIED", service("s1", ("203.0.113.9",)))
    inc.publish()
    assert inc.take_changed() == {"ns/s1"}
    assert followed.touched_by_alive(alive, inc.keeping) == set()  # the alive set did not move: nothing more


def test_an_alive_change_touches_the_services_keeping_the_node_and_those_whose_status_writer_it_was() -> None:
    inc, followed = IncrementalDesired(ME), Followed(ME)
    for kind, ev, obj in [*BASE, ("services", "ADDED", service("s4", ("198.51.100.1",), pool=None))]:
        inc.apply(kind, ev, obj)
    table, alive = inc.publish(), frozenset(NODES)
    followed.follow(table, alive, None)
    ranking_n2 = {key for key, entries in table.services.items() if any("n2" in e.ranking for e in entries)}
    assert ranking_n2 <= inc.keeping({"n2"}) != set(table.services)  # s2 (Local) has no endpoint on n2
    # In no pool (s4; s3's IPv6 IP): nobody announces them, and their status writer is elected among the alive.
    assert set(followed.unowned) == {"ns/s3", "ns/s4"}
    gone = followed.unowned["ns/s3"]
    assert gone is not None
    expected = inc.keeping({gone}) | {k for k, w in followed.unowned.items() if w == gone}
    assert followed.touched_by_alive(alive - {gone}, inc.keeping) == expected
    followed.follow(table, alive - {gone}, expected)
    assert followed.unowned["ns/s3"] != gone
    back = followed.touched_by_alive(alive, inc.keeping)  # it comes back and outranks their new writers
    assert back == inc.keeping({gone}) | {k for k in followed.unowned if elect(k, alive) == gone}
