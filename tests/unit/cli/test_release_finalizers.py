"""`ironlb release-finalizers`, its decisions: which Services IronLB owns, and a patch that takes only its finalizer."""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.cli.finalizers import Outcome, Released, carries, owned, removal, summary


def service(kind: str = "LoadBalancer", lb_class: str | None = None, annotations: dict[str, str] | None = None,
            finalizers: tuple[str, ...] = (LB_CLEANUP_FINALIZER,)) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind}
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    return {"metadata": {"name": "web", "namespace": "shop", "annotations": annotations or {},
                         "finalizers": list(finalizers)}, "spec": spec}


@pytest.mark.parametrize(("case", "svc", "lb_class", "ours"), [
    ("a LoadBalancer of no class, IronLB serving none", service(), None, True),
    ("a LoadBalancer of IronLB's class", service(lb_class="ironlb.io/lb"), "ironlb.io/lb", True),
    ("another implementation's class", service(lb_class="cloud.example/lb"), None, False),
    ("no class, IronLB serving a class", service(), "ironlb.io/lb", False),
    ("changed to ClusterIP, still showing IronLB's IP", service("ClusterIP", annotations={ALLOCATED_FROM_POOL: "p"}),
     None, True),
    ("changed to another class, still showing IronLB's IP",
     service(lb_class="cloud.example/lb", annotations={ALLOCATED_FROM_POOL: "p"}), None, True),
    ("a ClusterIP Service IronLB never served", service("ClusterIP"), None, False),
])
def test_ironlb_owns_the_loadbalancers_of_its_class_and_those_showing_its_ip(case: str, svc: dict[str, Any],
                                                                          lb_class: str | None, ours: bool) -> None:
    assert owned(svc, lb_class) is ours, case


def test_the_patch_tests_then_removes_only_the_cleanup_finalizer_at_its_place() -> None:
    svc = service(finalizers=("example.com/keep", LB_CLEANUP_FINALIZER, "example.com/other"))
    assert carries(svc) and not carries(service(finalizers=("example.com/keep",)))
    assert removal(svc) == [{"op": "test", "path": "/metadata/finalizers/1", "value": LB_CLEANUP_FINALIZER},
                            {"op": "remove", "path": "/metadata/finalizers/1"}]


def test_the_summary_counts_each_outcome_and_says_whether_it_is_done() -> None:
    done = Released({"a/x": Outcome.RELEASED, "a/y": Outcome.GONE}, ("b/z",), stopped=True)
    assert summary(done) == ("cleanup finalizers: 1 released, 1 gone, 0 failed; 1 left to other implementations "
                             "(another loadBalancerClass); done")
    assert not Released({"a/x": Outcome.FAILED}, (), stopped=True).complete
    assert not Released({}, (), stopped=False).complete  # an operator still running would add them back
