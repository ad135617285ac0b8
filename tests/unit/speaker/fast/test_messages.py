"""Every message between the speaker's two processes crosses the wire unchanged and has a handler where it lands."""

from __future__ import annotations

import dataclasses
import enum
import typing

import pytest

from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.fast import messages as m
from ironlb.speaker.fast.announcer import Diff, Interface
from ironlb.speaker.fast.child import Child
from ironlb.speaker.fast.claims import Claim
from ironlb.speaker.fast.l2.responder import Stats
from ironlb.speaker.fast.liveness.protocol import KeySet
from ironlb.speaker.fast.liveness.transport import Counters
from ironlb.speaker.fast.wire import decode, encode

KEYS = KeySet(b"k" * 32, (b"o" * 32,))
ETH0 = frozenset({"eth0"})
# One of every message, every field filled in as the speaker fills it.
SAMPLES: dict[type, m.Message] = {sample.__class__: sample for sample in (
    m.Start(m.Config("n1", KEYS, 7946, host="::1", interval=0.05, timeout=0.4, log_level=10, kernel_arp=False,
                     restart_hold_s=30.0, topology="ring")),
    m.LearnNodes(3, ["n4", "n5"]),
    m.PutClaims({"203.0.113.1": (Claim(0b101, ETH0), Claim(0, ETH0)), "2001:db8::1": ()}),
    m.SetInterfaces({"eth0": Interface("eth0", 2, "02:00:00:00:00:01", "fe80::1", by_default=False)},
                    frozenset({b"\2" * 6})),
    m.SetPeers({"n2": "192.0.2.2"}, {"n2": {"192.0.2.2", "2001:db8::2"}}),
    m.SetKey(KEYS),
    m.Fence(),
    m.Join(4),
    m.Reannounce(),
    m.Release("node-2"),
    m.Close(frozenset({"203.0.113.9"})),
    m.Started(),
    m.Failed("cannot bind the heartbeat port 7946: [Errno 98] Address already in use"),
    m.Alive(frozenset({"n1", "n2"})),
    m.Owned({"203.0.113.1": ETH0, "203.0.113.2": None}, Diff((("203.0.113.1", "eth0"),), (("203.0.113.2", "eth0"),))),
    m.Members(frozenset({"n2", "n3"}), frozenset({"n2"}), frozenset({"n3"})),
    m.Duplicates({("203.0.113.1", "02:00:00:00:00:09", "eth0"): 3}),
    m.StatsReport(m.FastStats(Counters(sent=5, rejected={"bad-mac": 1}, source_filter=True), fenced=True,
                              responders={"eth0": Stats(requests=2, verdicts={"answered": 2}, in_kernel=True)},
                              kernel_drops={"eth0": 1}, rss_mb=31.5, gc_max_ms=1.25)),
    m.Logged(30, "ironlb.speaker.fast.plane", "a warning\nover two lines"),
    m.Joined(4),
    m.Closed(),
)}


@pytest.mark.parametrize("kind", m.TO_FAST + m.FROM_FAST, ids=lambda kind: kind.__name__)
def test_every_message_round_trips(kind: type) -> None:
    sample = SAMPLES[kind]
    group = m.TO_FAST if kind in m.TO_FAST else m.FROM_FAST
    assert decode(encode(sample), group) == sample


def test_the_two_groups_are_every_message_once() -> None:
    defined = {kind for kind in vars(m).values()
               if isinstance(kind, type) and kind.__module__ == m.__name__
               and kind not in (m.Config, m.FastStats, m.Refusal)}
    assert len(m.TO_FAST + m.FROM_FAST) == len(defined) and set(m.TO_FAST + m.FROM_FAST) == defined


def carried(hint: object, found: set[type]) -> set[type]:
    """Every dataclass and enum a value of type HINT may hold, however deep (builtins need no class lookup)."""
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        found.add(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type) and hint not in found:
        found.add(hint)
        for inner in typing.get_type_hints(hint).values():
            carried(inner, found)
    for inner in typing.get_args(hint):
        carried(inner, found)
    return found


def test_every_class_a_message_carries_may_be_decoded() -> None:
    found: set[type] = set()
    for kind in m.TO_FAST + m.FROM_FAST:
        carried(kind, found)
    assert found - set(m.TO_FAST + m.FROM_FAST) == set(m.CARRIED)


def test_every_message_to_the_fast_plane_has_its_handler(child: Child) -> None:
    assert set(child.handlers) == set(m.TO_FAST)


def test_every_message_from_the_fast_plane_has_its_handler() -> None:
    process = FastProcess("n1", KEYS, 7946, lambda _: None, lambda *_: None)
    assert set(process.handlers) == set(m.FROM_FAST)


def test_a_message_before_start_is_ignored_and_said(child: Child, caplog: pytest.LogCaptureFixture) -> None:
    for kind in m.TO_FAST:
        if kind is not m.Start:
            child.handlers[kind](SAMPLES[kind])
    assert child.plane is None and not child._tasks
    assert len([r for r in caplog.records if "before start, ignored" in r.getMessage()]) == len(m.TO_FAST) - 1
