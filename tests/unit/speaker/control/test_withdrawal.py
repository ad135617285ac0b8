"""Withdrawal of a Service that keeps the cleanup finalizer while it goes (deleted, or changed away from
LoadBalancer): every speaker stops answering for its IPs, and one says so on the Service: the node its condition
named as announcing, when that one is alive (it is the one that answered), else the node elected for its key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ironlb.api.conditions import announced_part
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.reasons import AnnounceReason
from ironlb.core.election import elect
from ironlb.speaker.control.status import condition_for, condition_writer
from ironlb.speaker.state import slim
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.desired import Decision, compute

NODES = ("n1", "n2", "n3")
IP = "203.0.113.1"


def service(finalizer: bool = True, deleting: bool = False, type_: str = "LoadBalancer", ingress: bool = True,
            announced_by: str | None = None) -> dict[str, Any]:
    """A Service IronLB assigned IP to (its annotation), as the API server holds it."""
    meta: dict[str, Any] = {"name": "s", "namespace": "ns", "generation": 2,
                            "annotations": {"ironlb.io/allocated-from-pool": "p"}}
    if finalizer:
        meta["finalizers"] = [LB_CLEANUP_FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"loadBalancer": {"ingress": [{"ip": IP}]} if ingress else {}}
    if announced_by:
        status["conditions"] = [{"type": "ironlb.io/Announced", "status": "True", "reason": "Announcing",
                                 "message": announced_part(IP, announced_by, None)}]
    return {"metadata": meta, "spec": {"type": type_}, "status": status}


def cluster(*services: dict[str, Any]) -> ClusterState:
    """Three ready nodes, pool p, one advertisement, the Service's endpoints on every node; SERVICES applied in turn."""
    state = ClusterState()
    for n in NODES:
        state.apply("nodes", "ADDED", {"metadata": {"name": n}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}]}})
    state.apply("pools", "ADDED", {"metadata": {"name": "p"}, "spec": {"addresses": ["203.0.113.0/24"]}})
    state.apply("advertisements", "ADDED", {"metadata": {"name": "all"}, "spec": {}})
    state.apply("slices", "ADDED", {"metadata": {"name": "s-1", "namespace": "ns", "labels": {
        "kubernetes.io/service-name": "s"}}, "endpoints": [{"nodeName": n} for n in NODES]})
    for svc in services:
        state.apply("services", "MODIFIED", svc)
    return state


def reasons(state: ClusterState) -> list[tuple[str, AnnounceReason, str | None]]:
    return [(d.ip, d.reason, d.node) for d in compute(state.snapshot(frozenset(NODES)), "n1").decisions]


@pytest.mark.parametrize("case, services, expected", [
    ("served", [service()],
     AnnounceReason.ANNOUNCED_BY_PEER if elect(IP, NODES) != "n1" else AnnounceReason.ANNOUNCING),
    ("deleted, with the finalizer", [service(deleting=True)], AnnounceReason.WITHDRAWN),
    ("changed to ClusterIP: the API server cleared its ingress, the IP it showed is withdrawn",
     [service(), service(type_="ClusterIP", ingress=False)], AnnounceReason.WITHDRAWN),
    ("another class now", [service(), {**service(), "spec": {"type": "LoadBalancer", "loadBalancerClass": "x"}}],
     AnnounceReason.WITHDRAWN),
])
def test_what_a_going_service_is_decided(case: str, services: list[dict[str, Any]], expected: AnnounceReason) -> None:
    assert [(ip, reason) for ip, reason, _ in reasons(cluster(*services))] == [(IP, expected)], case
    if expected is AnnounceReason.WITHDRAWN:
        assert all(node is None for _, _, node in reasons(cluster(*services)))


@pytest.mark.parametrize("case, services", [
    ("deleted without the finalizer: served until gone, as before", [service(finalizer=False, deleting=True)]),
    ("changed to ClusterIP without the finalizer: dropped at once, as before",
     [service(finalizer=False), service(finalizer=False, type_="ClusterIP", ingress=False)]),
    ("never seen with an IP: nothing to withdraw", [service(type_="ClusterIP", ingress=False)]),
])
def test_what_is_not_a_withdrawal(case: str, services: list[dict[str, Any]]) -> None:
    assert AnnounceReason.WITHDRAWN not in [r for _, r, _ in reasons(cluster(*services))], case


ANNOUNCER = next(n for n in NODES if n != elect("ns/s", NODES))  # not the node the key would elect


@pytest.mark.parametrize("case, announced_by, alive, writer", [
    ("the node that announced it says it", ANNOUNCER, NODES, ANNOUNCER),
    ("that node is dead: the one elected for the key", ANNOUNCER, tuple(n for n in NODES if n != ANNOUNCER),
     elect("ns/s", [n for n in NODES if n != ANNOUNCER])),
    ("never announced: the one elected for the key", None, NODES, elect("ns/s", NODES)),
])
def test_who_says_withdrawn(case: str, announced_by: str | None, alive: tuple[str, ...], writer: str) -> None:
    svc = service(deleting=True, announced_by=announced_by)
    decisions = [Decision("ns/s", IP, AnnounceReason.WITHDRAWN)]
    assert condition_writer("ns/s", decisions, svc, frozenset(alive)) == writer, case
    said = condition_for(decisions, writer)
    assert (said.true, said.reason) == (False, AnnounceReason.WITHDRAWN)
    assert said == condition_for(decisions, "n9")  # the same words whoever writes: no second write


def test_a_withdrawing_service_is_kept_whole_by_the_speakers_informer() -> None:
    full = copy.deepcopy(service(deleting=True))
    full["metadata"]["finalizers"] = ["example.com/other", LB_CLEANUP_FINALIZER]
    thin = slim.service(full)
    assert thin["metadata"]["finalizers"] == [LB_CLEANUP_FINALIZER]  # only whether ours is there
    assert thin["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
    assert ClusterState().withdrawing(thin)
