"""Which prefixes a node announces for one Service: a scenario table over policy, endpoints and selection."""

from __future__ import annotations

import ipaddress

import pytest

from ironlb.core.bgp.announce import AnnounceReason, Decision, Endpoint, decide, prefix_for

R = AnnounceReason
HERE, THERE = "node-a", "node-b"
V4, V6 = "198.18.36.10", "2001:db8:c1::10"


def ep(node: str | None, ready: bool = True, serving: bool = True, terminating: bool = False) -> Endpoint:
    return Endpoint(node, ready, serving, terminating)


@pytest.mark.parametrize(("name", "local", "endpoints", "selected", "expected"), [
    ("local, ready endpoint here", True, [ep(HERE)], True, Decision(True, R.LOCAL_READY_ENDPOINT, (f"{V4}/32",))),
    ("local, endpoint only elsewhere", True, [ep(THERE)], True, Decision(False, R.LOCAL_NO_READY_ENDPOINT)),
    ("local, endpoint here not ready", True, [ep(HERE, ready=False)], True,
     Decision(False, R.LOCAL_NO_READY_ENDPOINT)),
    ("local, endpoint here terminating", True, [ep(HERE, ready=True, terminating=True)], True,
     Decision(False, R.LOCAL_NO_READY_ENDPOINT)),
    ("local, no endpoint", True, [], True, Decision(False, R.LOCAL_NO_READY_ENDPOINT)),
    ("local, node not selected", True, [ep(HERE)], False, Decision(False, R.NODE_NOT_SELECTED)),
    ("cluster, endpoint elsewhere", False, [ep(THERE)], True, Decision(True, R.CLUSTER_SELECTED, (f"{V4}/32",))),
    ("cluster, only a serving terminating endpoint", False, [ep(THERE, ready=False, terminating=True)], True,
     Decision(True, R.CLUSTER_SELECTED, (f"{V4}/32",))),
    ("cluster, 0 endpoints: nobody attracts traffic it would drop", False, [], True,
     Decision(False, R.CLUSTER_NO_ENDPOINTS)),
    ("cluster, endpoints neither ready nor serving", False, [ep(THERE, ready=False, serving=False)], True,
     Decision(False, R.CLUSTER_NO_ENDPOINTS)),
    ("cluster, node not selected", False, [ep(HERE)], False, Decision(False, R.NODE_NOT_SELECTED)),
])
def test_decide(name: str, local: bool, endpoints: list[Endpoint], selected: bool, expected: Decision) -> None:
    assert decide(HERE, [V4], local, endpoints, selected) == expected, name


def test_dual_stack_and_aggregation() -> None:
    decision = decide(HERE, [V4, V6, "198.18.36.11"], False, [ep(THERE)], True, aggregation_v4=24,
                      aggregation_v6=64)
    assert decision.prefixes == ("198.18.36.0/24", "2001:db8:c1::/64")  # one covering prefix per family


@pytest.mark.parametrize(("vip", "v4", "v6", "prefix"), [
    ("198.18.36.10", 32, 128, "198.18.36.10/32"),
    ("198.18.36.10", 28, 128, "198.18.36.0/28"),
    ("2001:db8:c1::10", 32, 120, "2001:db8:c1::/120"),
    ("2001:db8:c1::10", 32, 128, "2001:db8:c1::10/128"),
    ("2001:DB8:C1:0:0:0:0:10", 32, 128, "2001:db8:c1::10/128"),
    ("fe80::1%eth0", 32, 128, "fe80::1%eth0/128"),
    ("fe80::1%eth0", 32, 64, "fe80::/64"),
    ("::ffff:198.18.36.10", 32, 128, str(ipaddress.ip_network("::ffff:198.18.36.10/128"))),
])
def test_prefix_for(vip: str, v4: int, v6: int, prefix: str) -> None:
    assert prefix_for(vip, v4, v6) == prefix
    # The whole length's shortcut says what the network of that length says.
    assert prefix_for(vip, v4, v6) == str(ipaddress.ip_network(f"{vip}/{v6 if ':' in vip else v4}", strict=False))


@pytest.mark.parametrize(("vip", "v4", "v6"), [("198.18.36.10", 33, 128), ("2001:db8::1", 32, 129), ("nope", 32, 128)])
def test_prefix_for_refuses_what_is_no_prefix(vip: str, v4: int, v6: int) -> None:
    with pytest.raises(ValueError):
        prefix_for(vip, v4, v6)
