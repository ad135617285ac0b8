"""The speaker's transforms keep exactly what it reads: full objects (as an API server returns them) and their
slim forms give the same ranking table, ServiceInfo, conditions and condition writes, and odd shapes never raise."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ironlb.api.reasons import AllocationReason, AnnounceReason, ConditionType, ForwardingReason, Reason
from ironlb.common.kubeapi import SERVICES, Client, ClusterConfig, Resource
from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.forward.plan import Backend, ServicePlan
from ironlb.speaker.control.status import Said, StatusReporter, forwarding_condition, service_ref
from ironlb.speaker.state import slim
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.desired import compute
from ironlb.speaker.state.incremental import IncrementalDesired
from tests.unit.speaker.state.test_incremental import ad, pool

OFFLINE = Client(ClusterConfig("http", "127.0.0.1", 9))  # never asked: these tests make no API call

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MANAGED = [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
            "time": "2025-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}}},
                         "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}}}]

ANNOUNCED, FORWARDING = ConditionType.SERVICE_ANNOUNCED.value, ConditionType.SERVICE_FORWARDING.value

def full_service(name: str = "web", ip: str = "203.0.113.10", policy: str = "Local") -> dict[str, Any]:
    """A Service as the API server returns it, with an ingress IP and both IronLB conditions."""
    spec = {"type": "LoadBalancer", "clusterIP": "198.18.0.10", "clusterIPs": ["198.18.0.10"], "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack", "selector": {"app": name}, "externalTrafficPolicy": policy,
            "internalTrafficPolicy": "Cluster", "sessionAffinity": "ClientIP", "healthCheckNodePort": 32000,
            "allocateLoadBalancerNodePorts": True,
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 31080},
                      {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": "dns", "nodePort": 31053}]}
    conditions = [
        {"type": ANNOUNCED, "status": "True", "reason": "Announcing", "observedGeneration": 3,
         "lastTransitionTime": "2025-01-01T00:00:05Z", "message": f"{ip} from node n2 on all interfaces"},
        {"type": FORWARDING, "status": "False", "reason": "NoHealthyBackend", "observedGeneration": 3,
         "lastTransitionTime": "2025-01-01T00:00:06Z", "message": "no node's NodePort can take the traffic: n2"},
        {"type": "example.com/Other", "status": "True", "reason": "Fine", "message": "",
         "lastTransitionTime": "2025-01-01T00:00:07Z"},
    ]
    return {
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "resourceVersion": "4711",
                     "generation": 3, "creationTimestamp": "2025-01-01T00:00:00Z",
                     "labels": {"app": name, "team": "payments", "app.kubernetes.io/managed-by": "Helm"},
                     "annotations": {LAST_APPLIED: json.dumps({"spec": spec}) * 3,
                                     "meta.helm.sh/release-name": "shop",
                                     "ironlb.io/allocated-from-pool": "p", "ironlb.io/allow-shared-ip": "shop",
                                     "metallb.universe.tf/loadBalancerIPs": ip},
                     "finalizers": ["service.kubernetes.io/load-balancer-cleanup"], "managedFields": MANAGED},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}, "conditions": conditions},
    }


def full_slice(name: str = "web-abc12", svc: str = "web", nodes: tuple[str, ...] = ("n1", "n2", "n3"),
               unready: tuple[str, ...] = ("n3",)) -> dict[str, Any]:
    """An EndpointSlice as the API server returns it: addresses, targetRef, zone, hints, ports."""
    endpoints = [
        {"addresses": [f"198.19.{i}.7"], "nodeName": n, "zone": "zone-a",
         "conditions": {"ready": n not in unready, "serving": True, "terminating": False},
         "targetRef": {"kind": "Pod", "namespace": "shop", "name": f"{svc}-7d9f-{i}", "uid": f"pod-uid-{i}"},
         "hints": {"forZones": [{"name": "zone-a"}]}}
        for i, n in enumerate(nodes)]
    endpoints.append({"addresses": ["198.19.9.9"], "conditions": {"ready": True}})  # not on a node (yet)
    return {
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "addressType": "IPv4",
        "metadata": {"name": name, "namespace": "shop", "uid": "slice-uid", "resourceVersion": "815",
                     "generation": 9, "generateName": f"{svc}-", "creationTimestamp": "2025-01-01T00:00:00Z",
                     "labels": {"kubernetes.io/service-name": svc, "app": svc,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2025-01-01T00:00:00Z"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc, "uid": "uid-web",
                                          "controller": True, "blockOwnerDeletion": True}],
                     "managedFields": MANAGED},
        "endpoints": endpoints,
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}, {"name": "dns", "protocol": "UDP", "port": 53}],
    }


def full_node(name: str = "n1", address: str = "192.0.2.1", ready: str = "True", zone: str = "a",
              network_unavailable: str = "False") -> dict[str, Any]:
    """A Node as the API server returns it (images, capacity, every condition with its heartbeat times)."""
    def cond(type_: str, status: str) -> dict[str, str]:
        return {"type": type_, "status": status, "reason": "KubeletReady", "message": "fine",
                "lastHeartbeatTime": "2025-01-01T00:05:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}

    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name, "uid": f"node-uid-{name}", "resourceVersion": "99",
                     "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed"
                                     "-attach-detach": "true"}, "managedFields": MANAGED},
        "spec": {"podCIDR": "198.19.1.0/24", "podCIDRs": ["198.19.1.0/24"], "taints": []},
        "status": {
            "conditions": [cond("MemoryPressure", "False"), cond("DiskPressure", "False"),
                           cond("NetworkUnavailable", network_unavailable),
                           cond("Ready", ready)],
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name},
                          {"type": "InternalIP", "address": "2001:db8::" + address.rsplit(".", 1)[1]}],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}, "allocatable": {"cpu": "8"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [{"names": [f"registry.example/image-{i}@sha256:{'0' * 64}"], "sizeBytes": 10**8}
                       for i in range(20)],
            "nodeInfo": {"kubeletVersion": "v1.34.0", "osImage": "Debian", "machineID": "m" * 32},
        },
    }


def test_a_service_keeps_identity_ironlb_annotations_what_it_serves_and_its_status() -> None:
    full = full_service()
    assert slim.service(full) == {
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "resourceVersion": "4711", "generation": 3,
                     "annotations": {"ironlb.io/allocated-from-pool": "p", "ironlb.io/allow-shared-ip": "shop",
                                     "metallb.universe.tf/loadBalancerIPs": "203.0.113.10"},
                     "labels": {"app": "web", "team": "payments", "app.kubernetes.io/managed-by": "Helm"},
                     "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]},  # withdrawal (cluster.py)
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "sessionAffinity": "ClientIP",
                 "healthCheckNodePort": 32000,
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 31080},
                           {"name": "dns", "protocol": "UDP", "port": 53, "nodePort": 31053}]},
        "status": full["status"],
    }


def test_a_slice_keeps_its_service_and_each_endpoints_node_and_readiness() -> None:
    assert slim.endpoint_slice(full_slice()) == {
        "metadata": {"name": "web-abc12", "namespace": "shop", "resourceVersion": "815",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"nodeName": "n1", "conditions": {"ready": True}},
                      {"nodeName": "n2", "conditions": {"ready": True}},
                      {"nodeName": "n3", "conditions": {"ready": False}}],
        # what steering around dead nodes reads: the ports and each endpoint's first address
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}, {"name": "dns", "protocol": "UDP", "port": 53}],
        "addresses": ["198.19.0.7", "198.19.1.7", "198.19.2.7"],
    }


def test_a_node_keeps_labels_the_two_conditions_read_and_its_internal_ips() -> None:
    assert slim.node(full_node()) == {
        "metadata": {"name": "n1", "resourceVersion": "99",
                     "labels": {"kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "a"}},
        "status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"},
                                  {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.0.2.1"},
                                 {"type": "InternalIP", "address": "2001:db8::1"}]},
    }


def test_absent_stays_absent_where_absence_has_a_default() -> None:
    svc = slim.service({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    assert svc["spec"] == {"type": "LoadBalancer", "ports": [{"port": 80}]}  # protocol reads as TCP
    assert "annotations" not in svc["metadata"] and svc["status"] == {}
    eps = slim.endpoint_slice({"endpoints": [{"nodeName": "n1"}, {"nodeName": "n2", "conditions": None}]})["endpoints"]
    assert eps == [{"nodeName": "n1"}, {"nodeName": "n2"}]  # no readiness reads as ready


def test_slimming_twice_changes_nothing() -> None:
    for fn, full in ((slim.service, full_service()), (slim.endpoint_slice, full_slice()), (slim.node, full_node())):
        once = fn(full)
        assert fn(copy.deepcopy(once)) == once


def cluster(kinds: dict[str, list[dict[str, Any]]], transform: bool) -> tuple[IncrementalDesired, ClusterState]:
    """The incremental view and a from-scratch ClusterState fed KINDS, slimmed as the speaker's informers do."""
    inc, state = IncrementalDesired("n1"), ClusterState()
    for kind, objs in kinds.items():
        for o in objs:
            o = slim.TRANSFORMS[kind](o) if transform and kind in slim.TRANSFORMS else o
            inc.apply(kind, "ADDED", o)
            state.apply(kind, "ADDED", o)
    inc.publish()
    return inc, state


KINDS = {
    "nodes": [full_node("n1", "192.0.2.1"), full_node("n2", "192.0.2.2", zone="b"),
              full_node("n3", "192.0.2.3", ready="False"), full_node("n4", "192.0.2.4", network_unavailable="True")],
    "pools": [pool("p", forwarding="NodePort")],
    "advertisements": [ad("ad1", ("p",))],
    "services": [full_service("web", "203.0.113.10", "Local"), full_service("api", "203.0.113.11", "Cluster")],
    "slices": [full_slice("web-abc12", "web"), full_slice("api-x", "api", ("n2",), ())],
}


def test_full_and_slim_objects_give_the_same_table_services_nodes_and_snapshot() -> None:
    alive = frozenset({"n1", "n2", "n3", "n4"})
    (full_inc, full_state), (slim_inc, slim_state) = cluster(KINDS, False), cluster(KINDS, True)
    assert slim_inc.infos == full_inc.infos and len(slim_inc.infos) == 2
    assert slim_inc.nodes == full_inc.nodes and slim_inc.nodes["n4"].network_unavailable
    assert slim_inc.table.desired(alive) == full_inc.table.desired(alive)
    assert slim_inc.snapshot(alive) == full_inc.snapshot(alive)
    assert slim_state.snapshot(alive) == full_state.snapshot(alive)
    assert compute(slim_state.snapshot(alive), "n1") == compute(full_state.snapshot(alive), "n1")
    assert slim_state.peers() == full_state.peers() and slim_state.peer_addresses() == full_state.peer_addresses()


def test_the_same_object_again_recomputes_nothing_even_if_only_unread_fields_moved() -> None:
    inc, _ = cluster(KINDS, True)
    table = inc.table
    again = full_service("web", "203.0.113.10", "Local")
    again["metadata"]["managedFields"] = []
    # Not its labels: the serviceSelectors of L2Advertisements read them.
    again["metadata"].setdefault("annotations", {})["example.com/owner"] = "search"
    inc.apply("services", "MODIFIED", slim.service(again))
    assert not inc._dirty and inc.publish() is table


class FakeCore:
    """Records condition patches."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    def patch(self, resource: Resource, name: str, body: dict[str, Any], namespace: str, *, subresource: str,
              timeout: Any) -> dict[str, Any]:
        assert resource == SERVICES and subresource == "status" and timeout
        self.patches.append((name, namespace, body))
        return {}


class FakeRecorder:
    """Records Events."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, Reason, str]] = []

    async def record(self, ref: Any, reason: Reason, message: str, *, warning: bool = False) -> None:
        self.events.append((ref, reason, message))


async def _writes(svc: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    recorder = FakeRecorder()
    reporter = StatusReporter(FakeCore(), "n1", recorder=recorder)  # type: ignore[arg-type]
    ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    # The same status as on the Service, other words: the transition time is carried over from it.
    reporter.say(svc, ConditionType.SERVICE_ANNOUNCED, Said(True, AnnounceReason.ANNOUNCING, f"{ip} from n1"))
    reporter.say(svc, ConditionType.SERVICE_FORWARDING, Said(True, ForwardingReason.FORWARDING, "n1"))
    # A type the Service does not carry yet (the speaker never writes this one; the reporter does not care).
    reporter.say(svc, ConditionType.SERVICE_ALLOCATED, Said(True, AllocationReason.ASSIGNED, "first time"))
    await reporter.flush()
    return reporter.api.patches, recorder.events  # type: ignore[attr-defined]


async def test_full_and_slim_services_give_the_same_conditions_writes_and_events() -> None:
    full = full_service()
    thin = slim.service(full)
    assert thin["status"]["conditions"] == full["status"]["conditions"]
    plan = ServicePlan("shop/web", {"n1": Backend.HEALTHY, "n2": Backend.DEAD}, vips=("203.0.113.10",))
    assert forwarding_condition(plan, thin) == forwarding_condition(plan, full)
    assert service_ref(thin) == service_ref(full)
    full_writes = await _writes(full)
    thin_writes = await _writes(thin)
    assert thin_writes == full_writes and len(full_writes[0]) == 3
    patched = {body["status"]["conditions"][0]["type"]: body["status"]["conditions"][0] for *_, body in full_writes[0]}
    assert patched[ANNOUNCED]["lastTransitionTime"] == "2025-01-01T00:00:05Z"
    assert patched[ANNOUNCED]["observedGeneration"] == 3


async def test_the_speakers_informers_slim_services_slices_and_nodes_only() -> None:
    speaker = Speaker("n1", None, OFFLINE, b"k" * 32, 7946, [])
    got = {kind: speaker._informer(kind, lambda **_: None).transform
           for kind in ("services", "slices", "nodes", "pools", "advertisements")}
    assert got == {"services": slim.service, "slices": slim.endpoint_slice, "nodes": slim.node,
                   "pools": None, "advertisements": None}


ODD = [None, 0, "x", [], {}, {"metadata": None}, {"metadata": []}, {"metadata": {"annotations": "x", "labels": []}},
       {"spec": None, "status": "up"}, {"spec": {"ports": "80"}}, {"spec": {"ports": [None, 80, {"port": None}]}},
       {"endpoints": None}, {"endpoints": [None, "n1", {"nodeName": None}, {"nodeName": "n1", "conditions": []}]},
       {"endpoints": {"nodeName": "n1"}}, {"status": {"conditions": [None, {"type": ["Ready"]}, {"type": {}}],
                                                      "addresses": [{"type": None}, "InternalIP"]}},
       {"metadata": {"labels": {"kubernetes.io/service-name": None}}}]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                           | st.sampled_from(["Ready", "InternalIP", "nodeName", "ports", "metadata", "TCP"]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["metadata", "spec", "status", "endpoints", "ports", "conditions",
                                                "addresses", "nodeName", "type", "name", "labels", "annotations",
                                                "ready", "loadBalancer"]), inner, max_size=4), max_leaves=20)


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize("transform", sorted(slim.TRANSFORMS.values(), key=lambda f: f.__name__))
def test_odd_shapes_never_raise(transform: Any, odd: Any) -> None:
    out = transform(copy.deepcopy(odd))
    assert isinstance(out, dict) and isinstance(out["metadata"], dict)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_never_raises(value: Any) -> None:
    for transform in slim.TRANSFORMS.values():
        out = transform(value)
        assert isinstance(out, dict) and isinstance(out["metadata"], dict)


def test_endpoints_and_annotations_that_repeat_are_one_shared_read_only_copy() -> None:
    a, b = slim.endpoint_slice(full_slice("a-1", "a")), slim.endpoint_slice(full_slice("b-1", "b"))
    assert all(x is y for x, y in zip(a["endpoints"], b["endpoints"], strict=True))
    assert a["endpoints"][0] is not a["endpoints"][2]  # n1 ready, n3 not: two different parts
    one, other = slim.service(full_service("one")), slim.service(full_service("other", ip="203.0.113.11"))
    assert one["metadata"]["annotations"] is not other["metadata"]["annotations"]  # different IPs annotated
    same = slim.service(full_service("one"))
    assert same["metadata"]["annotations"] is one["metadata"]["annotations"]
    part = a["endpoints"][0]
    for write in (lambda: part.update(x=1), lambda: part.__setitem__("nodeName", "n9"), part.clear,
                  lambda: part.pop("nodeName"), lambda: part["conditions"].setdefault("ready", False)):
        with pytest.raises(TypeError):
            write()
    assert part == {"nodeName": "n1", "conditions": {"ready": True}} and json.loads(json.dumps(part)) == part
    assert copy.deepcopy(part) is part and pickle.loads(pickle.dumps(part)) == part


def test_a_readiness_comes_back_as_it_came_not_as_an_equal_one() -> None:
    eps = slim.endpoint_slice({"endpoints": [{"nodeName": "n1", "conditions": {"ready": True}},
                                             {"nodeName": "n1", "conditions": {"ready": 1}},
                                             {"nodeName": "n1", "conditions": {"ready": [True]}}]})["endpoints"]
    assert [type(ep["conditions"]["ready"]) for ep in eps] == [bool, int, list]  # a list: unhashable, kept as is


def test_the_shared_parts_kept_are_bounded() -> None:
    for i in range(slim.SHARE_LIMIT + 10):
        slim.endpoint_slice({"endpoints": [{"nodeName": f"churn-{i}"}]})
    assert 0 < len(slim._memo) <= slim.SHARE_LIMIT


def test_a_node_keeps_its_cordon_and_the_drain_taints_only() -> None:
    full = full_node()
    full["spec"] = {"unschedulable": True, "podCIDR": "198.19.1.0/24", "taints": [
        {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"},
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}
    assert slim.node(full)["spec"] == {"unschedulable": True, "taints": [
        {"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]}
    full["spec"] = {"unschedulable": False, "taints": [{"key": "dedicated", "effect": "NoSchedule"}]}
    assert "spec" not in slim.node(full)  # nothing the drain reads: nothing kept
