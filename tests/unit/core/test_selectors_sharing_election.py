"""Label selectors, sharing rules and the announcing-node election."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest

from ironlb.core.election import elect, order
from ironlb.core.errors import SelectorError
from ironlb.core.selectors import selector_matches, validate_selector
from ironlb.core.sharing import Sharing, SharingFacts, can_share


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    """A one-expression selector."""
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({"matchLabels": {"app": "web"}}, {}, False),
    (expr("tier", "In", "edge", "core"), {"tier": "core"}, True),
    (expr("tier", "In", "edge", "core"), {"tier": "other"}, False),
    (expr("tier", "In", "edge"), {}, False),
    (expr("tier", "NotIn", "edge"), {"tier": "core"}, True),
    (expr("tier", "NotIn", "edge"), {"tier": "edge"}, False),
    (expr("tier", "NotIn", "edge"), {}, True),
    (expr("tier", "Exists"), {"tier": ""}, True),
    (expr("tier", "Exists"), {"other": "x"}, False),
    (expr("tier", "DoesNotExist"), {"other": "x"}, True),
    (expr("tier", "DoesNotExist"), {"tier": "x"}, False),
    ({"matchLabels": {"app": "web"}, **expr("tier", "In", "edge")}, {"app": "web", "tier": "edge"}, True),
    ({"matchLabels": {"app": "web"}, **expr("tier", "In", "edge")}, {"app": "web", "tier": "core"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "DoesNotExist"}]},
     {"a": "1"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "DoesNotExist"}]},
     {"a": "1", "b": "2"}, False),
    ({}, {"anything": "x"}, True),
    ({}, {}, True),
    (None, {"a": "b"}, True),
    ({"matchLabels": {}, "matchExpressions": []}, {}, True),
    ({"matchLabels": {"a": "b"}}, None, False),
])
def test_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None,
                           matches: bool) -> None:
    """All four operators, matchLabels, their conjunction, and the empty selector."""
    if selector:
        validate_selector(selector)
    assert selector_matches(selector, labels) is matches


@pytest.mark.parametrize(("selector", "words"), [
    ({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}, ["'Like'", "In, NotIn"]),
    (expr("a", "In"), ["In", "at least one value"]),
    (expr("a", "NotIn"), ["NotIn", "at least one value"]),
    (expr("a", "Exists", "x"), ["Exists", "takes no values"]),
    (expr("a", "DoesNotExist", "x"), ["DoesNotExist", "takes no values"]),
    ({"matchExpressions": [{"operator": "Exists"}]}, ["needs a key"]),
    ({"matchLabels": {"a": 1}}, ["matchLabels['a']", "string"]),
])
def test_validate_selector_errors(selector: dict[str, Any], words: list[str]) -> None:
    """Malformed selectors raise SelectorError with a readable message."""
    with pytest.raises(SelectorError) as info:
        validate_selector(selector)
    for word in words:
        assert word in str(info.value)


def test_validate_selector_accepts_well_formed_selectors() -> None:
    """Every operator used correctly validates."""
    validate_selector({})
    validate_selector({"matchLabels": {"a": "b"}, "matchExpressions": [
        {"key": "a", "operator": "In", "values": ["b"]}, {"key": "c", "operator": "NotIn", "values": ["d"]},
        {"key": "e", "operator": "Exists"}, {"key": "f", "operator": "DoesNotExist"}]})


def facts(key: str = "s", sharing_key: str | None = "k", ports: tuple[tuple[str, int], ...] = (("TCP", 80),),
          policy: str = "Cluster", selector: dict[str, str] | None = None) -> SharingFacts:
    """SharingFacts with defaults."""
    return SharingFacts(key, sharing_key, ports, policy, selector or {})


@pytest.mark.parametrize(("a", "b", "verdict"), [
    (facts("a"), facts("b", ports=(("TCP", 443),)), Sharing.COMPATIBLE),
    (facts("a"), facts("b", ports=(("UDP", 80),)), Sharing.COMPATIBLE),
    (facts("a"), facts("b"), Sharing.PORT_COLLISION),
    (facts("a", ports=(("TCP", 80), ("TCP", 81))), facts("b", ports=(("TCP", 81),)), Sharing.PORT_COLLISION),
    (facts("a", sharing_key=None), facts("b", ports=(("TCP", 443),)), Sharing.NO_SHARING_KEY),
    (facts("a"), facts("b", sharing_key="", ports=(("TCP", 443),)), Sharing.NO_SHARING_KEY),
    (facts("a"), facts("b", sharing_key="other", ports=(("TCP", 443),)), Sharing.DIFFERENT_SHARING_KEY),
    (facts("a"), facts("b", ports=(("TCP", 443),), policy="Local"), Sharing.TRAFFIC_POLICY_MISMATCH),
    (facts("a", policy="Local", selector={"app": "x"}),
     facts("b", ports=(("TCP", 443),), policy="Local", selector={"app": "x"}), Sharing.COMPATIBLE),
    (facts("a", policy="Local", selector={"app": "x"}),
     facts("b", ports=(("TCP", 443),), policy="Local", selector={"app": "y"}), Sharing.SELECTOR_MISMATCH),
    (facts("a", selector={"app": "x"}), facts("b", ports=(("TCP", 443),), selector={"app": "y"}),
     Sharing.COMPATIBLE),
])
def test_can_share(a: SharingFacts, b: SharingFacts, verdict: Sharing) -> None:
    """Same key, disjoint ports, same policy (and same selector for Local); symmetric."""
    assert can_share(a, b) is verdict
    assert can_share(b, a) is verdict


def reference_winner(ip: str, nodes: list[str]) -> str:
    """The node with the smallest sha256(node + '#' + ip), straight from the design."""
    return min(nodes, key=lambda n: hashlib.sha256((n + "#" + ip).encode()).hexdigest())


NODES = ["node-a", "node-b", "node-c", "node-d"]
IPS = [f"203.0.113.{i}" for i in range(64)] + [f"2001:db8::{i:x}" for i in range(64)]


def test_elect_is_the_minimum_sha256() -> None:
    """The winner is the node with the smallest digest, for every IP."""
    for ip in IPS:
        assert elect(ip, NODES) == reference_winner(ip, NODES)


def test_elect_is_independent_of_input_order_and_type() -> None:
    """Every permutation, a generator, a set and duplicates give the same winner."""
    for ip in IPS[::16]:
        winners = {elect(ip, list(p)) for p in itertools.permutations(NODES)}
        winners |= {elect(ip, (n for n in NODES)), elect(ip, set(NODES)), elect(ip, NODES + NODES)}
        assert len(winners) == 1


def test_elect_none_when_nobody_is_eligible() -> None:
    """No eligible node, no announcer."""
    assert elect("203.0.113.1", []) is None
    assert elect("203.0.113.1", iter(())) is None


def test_elect_spreads_ips_and_moves_only_the_lost_nodes_ips() -> None:
    """Every node wins some IPs; removing a node re-elects only the IPs it was announcing."""
    before = {ip: elect(ip, NODES) for ip in IPS}
    assert set(before.values()) == set(NODES)
    survivors = [n for n in NODES if n != "node-b"]
    for ip, winner in before.items():
        after = elect(ip, survivors)
        if winner != "node-b":
            assert after == winner
        else:
            assert after in survivors


NODES5 = [f"node-{i}" for i in range(1, 6)]


@pytest.mark.parametrize(("first", "eligible"), [
    (None, NODES5),  # no incumbent: the hash alone
    ("node-3", NODES5),  # an eligible incumbent is first, the rest in hash order
    ("node-9", NODES5),  # an incumbent that is not eligible changes nothing
    ("node-3", ["node-1", "node-2"]),  # nor one no longer eligible
])
def test_an_eligible_incumbent_comes_first_and_the_rest_keep_the_hash_order(first: str | None,
                                                                            eligible: list[str]) -> None:
    by_hash = order("203.0.113.7", eligible)
    ranked = order("203.0.113.7", eligible, first)
    keeps = first in eligible
    assert ranked == ([first, *(n for n in by_hash if n != first)] if keeps else by_hash)
    assert elect("203.0.113.7", eligible, first) == ranked[0]
