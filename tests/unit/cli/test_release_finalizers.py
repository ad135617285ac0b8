"""`ironlb release-finalizers`, its decisions (which Services IronLB owns, a patch that takes only its finalizer) and
its requests against a scripted API server (the lab's real one: tests/integration/test_release_finalizers.py)."""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import patch

import pytest

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.cli.finalizers import Outcome, Released, carries, owned, release_one, removal, stop_operator, summary
from ironlb.common.kubeapi import Client
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply


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


def test_a_list_changed_under_the_patch_is_read_again_and_the_right_entry_removed(api_server: FakeApiServer,
                                                                                   api_client: Client) -> None:
    patches = iter([Reply(status=422, body={"kind": "Status", "code": 422, "message": "test failed"}),
                    Reply(body={})])
    api_server.route("PATCH", "/api/v1/namespaces/shop/services/web/status", lambda _: next(patches))
    api_server.route("GET", "/api/v1/namespaces/shop/services/web", Reply(body=service()))  # the other one went
    read = service(finalizers=("example.com/keep", LB_CLEANUP_FINALIZER))
    assert release_one(api_client, read) is Outcome.RELEASED
    sent = [r.body for r in api_server.requests if r.method == "PATCH"]
    assert [ops[1]["path"] for ops in sent] == ["/metadata/finalizers/1", "/metadata/finalizers/0"]
    assert all(r.headers["Content-Type"] == "application/json-patch+json" for r in api_server.requests
               if r.method == "PATCH")


def test_the_operator_is_scaled_to_zero_and_waited_for_until_its_last_pod_is_gone(api_server: FakeApiServer,
                                                                                  api_client: Client) -> None:
    selector = {"app.kubernetes.io/name": "ironlb", "app.kubernetes.io/component": "operator"}
    deployment, pods_path = "/apis/apps/v1/namespaces/ironlb-system/deployments/ironlb-operator", \
        "/api/v1/namespaces/ironlb-system/pods"
    api_server.route("GET", deployment, Reply(body={"spec": {"selector": {"matchLabels": selector}}}))
    api_server.route("PATCH", f"{deployment}/scale", Reply(body={}))
    left = iter([[{"metadata": {"name": "ironlb-operator-1"}}], []])  # terminating, then gone
    api_server.route("GET", pods_path, lambda _: Reply(body={"items": next(left)}))
    with patch("ironlb.cli.finalizers.POLL_S", 0.01):
        assert stop_operator(api_client, "ironlb-system", "ironlb-operator", time.monotonic() + 5)
    scale = next(r for r in api_server.requests if r.method == "PATCH")
    assert scale.body == {"spec": {"replicas": 0}}
    pods = [r.query for r in api_server.requests if r.path.endswith("/pods")]
    assert pods == [{"labelSelector": "app.kubernetes.io/component=operator,app.kubernetes.io/name=ironlb"}] * 2
    # Its pods never go: the time runs out, and nothing is released behind a live operator's back.
    api_server.route("GET", pods_path, Reply(body={"items": [{"metadata": {"name": "x"}}]}))
    api_server.routes.insert(0, api_server.routes.pop())
    assert not stop_operator(api_client, "ironlb-system", "ironlb-operator", time.monotonic())
