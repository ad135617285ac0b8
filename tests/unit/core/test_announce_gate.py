"""The announce gate's decision: may this node newly announce a Service that changed, given kube-proxy's syncs?"""

from __future__ import annotations

import pytest

from ironlb.core.announce_gate import (
    MARGIN_S,
    AnnounceGateReason,
    FamilySync,
    KubeProxyReading,
    decide,
    family_of,
    released,
)

R = AnnounceGateReason
T = 1_790_000_000.0  # when the speaker saw the change (wall clock)
BOUND = 3.0


def reading(taken: float = T + 0.2, readable: bool = True, **families: tuple[float | None, float | None]
            ) -> KubeProxyReading:
    """kube-proxy's page read at TAKEN: per family (queued, synced)."""
    return KubeProxyReading({f: FamilySync(synced=s, queued=q) for f, (q, s) in families.items()}, taken, readable)


SCENARIOS = [
    # (what happens, changed_at, now, families, reading, reason)
    ("nothing changed lately", None, T, {"IPv4"}, None, R.NO_RECENT_CHANGE),
    ("changed longer ago than the bound", T, T + BOUND, {"IPv4"}, None, R.NO_RECENT_CHANGE),
    ("no reading yet: read first", T, T + 0.01, {"IPv4"}, None, R.WAITING),
    ("the reading predates the change", T, T + 0.1, {"IPv4"}, reading(T - 0.1, IPv4=(T, T + 0.05)), R.WAITING),
    ("queued after the change, synced after that", T, T + 0.3, {"IPv4"}, reading(IPv4=(T + 0.01, T + 0.05)),
     R.KUBE_PROXY_SYNCED),
    ("queued, not synced since: pending", T, T + 0.3, {"IPv4"}, reading(IPv4=(T + 0.01, T - 2.0)), R.WAITING),
    ("nothing queued since long before the change: not seen yet", T, T + 0.3, {"IPv4"},
     reading(IPv4=(T - 5.0, T - 4.9)), R.WAITING),
    ("kube-proxy got it a little before the speaker (within the margin)", T, T + 0.3, {"IPv4"},
     reading(IPv4=(T - MARGIN_S / 2, T - MARGIN_S / 4)), R.KUBE_PROXY_SYNCED),
    ("dual-stack: one family synced, the other pending", T, T + 0.3, {"IPv4", "IPv6"},
     reading(IPv4=(T, T + 0.05), IPv6=(T + 0.02, T - 1.0)), R.WAITING),
    ("dual-stack: both synced", T, T + 0.3, {"IPv4", "IPv6"}, reading(IPv4=(T, T + 0.05), IPv6=(T, T + 0.06)),
     R.KUBE_PROXY_SYNCED),
    ("an IPv4 Service: the idle IPv6 proxier does not matter", T, T + 0.3, {"IPv4"},
     reading(IPv4=(T, T + 0.05), IPv6=(T - 60.0, T - 60.0)), R.KUBE_PROXY_SYNCED),
    ("kube-proxy runs no IPv6: nothing to wait for", T, T + 0.3, {"IPv6"}, reading(IPv4=(T, T + 0.05)),
     R.KUBE_PROXY_ABSENT),
    ("a page without sync series (not kube-proxy)", T, T + 0.3, {"IPv4"}, reading(), R.KUBE_PROXY_ABSENT),
    ("nothing answers at the metrics URL", T, T + 0.3, {"IPv4"}, reading(readable=False), R.KUBE_PROXY_UNREADABLE),
    ("synced series only (a kube-proxy before the queued one)", T, T + 0.3, {"IPv4"},
     reading(IPv4=(None, T + 0.05)), R.WAITING),
]


@pytest.mark.parametrize(("changed_at", "now", "families", "seen", "reason"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_scenarios(changed_at: float | None, now: float, families: set[str], seen: KubeProxyReading | None,
                   reason: AnnounceGateReason) -> None:
    assert decide(changed_at, now, families, seen, BOUND) is reason


def test_a_bound_of_zero_turns_the_gate_off() -> None:
    assert decide(T, T, {"IPv4"}, None, 0.0) is R.DISABLED


def test_a_held_change_that_aged_past_the_bound_waited_it() -> None:
    assert released(R.NO_RECENT_CHANGE, was_held=True) is R.BOUND_PASSED
    assert released(R.NO_RECENT_CHANGE, was_held=False) is R.NO_RECENT_CHANGE
    assert released(R.KUBE_PROXY_SYNCED, was_held=True) is R.KUBE_PROXY_SYNCED


def test_families_are_kube_proxys_words() -> None:
    assert family_of("203.0.113.1") == "IPv4" and family_of("2001:db8::1") == "IPv6"
