"""The lab behaves as Kubernetes documents each Service type, through real kube-proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from e2e.lab import ironlb_procs
from e2e.lab.state import load_state
from e2e.testkit.testing import Kube, wait_for

pytestmark = pytest.mark.lab
NODE_IPS = {"node-1": "192.0.2.11", "node-2": "192.0.2.12", "node-3": "192.0.2.13"}


def service(name: str, type_: str, **spec: object) -> dict:
    """A Service selecting app=NAME on port 80 -> 8080."""
    port = {"port": 80, "targetPort": 8080, "protocol": "TCP"}
    port.update(spec.pop("port_extra", {}))  # type: ignore[arg-type]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "selector": {"app": name}, "ports": [port], **spec}}


@pytest.fixture(scope="module")
def app(kube: Kube) -> Iterator[str]:
    """A workload with one pod on node-2 only, so every other node must forward to it."""
    kube.deploy("types", replicas=1, nodes=["node-2"])
    yield "types"
    kube.undeploy("types")


def cluster_ip(kube: Kube, name: str) -> str:
    """The Service's cluster IP."""
    return kube.get("service", name)["spec"]["clusterIP"]


def test_clusterip_reachable_from_nodes_and_pods_not_from_client(kube: Kube, app: str) -> None:
    kube.apply(service(app, "ClusterIP"))
    try:
        ip = cluster_ip(kube, app)
        for node in NODE_IPS:
            assert wait_for(lambda n=node: kube.curl(n, f"http://{ip}/"), what=f"ClusterIP from {node}") == "types-0"
        kube.deploy("types-caller", replicas=1, nodes=["node-3"])
        try:
            from_pod = wait_for(lambda: kube.curl("types-caller-0", f"http://{ip}/"), what="ClusterIP from a pod")
            assert from_pod == "types-0"
        finally:
            kube.undeploy("types-caller")
        assert kube.curl("client", f"http://{ip}/", timeout=1) is None
    finally:
        kube.kubectl("delete", "service", app, "--wait=false")


def test_nodeport_answers_on_every_node_from_client(kube: Kube, app: str) -> None:
    kube.apply(service(app, "NodePort"))
    try:
        svc = kube.get("service", app)
        node_port = svc["spec"]["ports"][0]["nodePort"]
        assert 30000 <= node_port <= 32767
        for node, ip in NODE_IPS.items():
            body = wait_for(lambda ip=ip: kube.curl("client", f"http://{ip}:{node_port}/"),
                            what=f"NodePort on {node}")
            assert body == "types-0"
        assert kube.curl("client", f"http://{svc['spec']['clusterIP']}/", timeout=1) is None
    finally:
        kube.kubectl("delete", "service", app, "--wait=false")


def test_explicit_nodeport_is_honoured(kube: Kube, app: str) -> None:
    kube.apply(service(app, "NodePort", port_extra={"nodePort": 31234}))
    try:
        assert kube.get("service", app)["spec"]["ports"][0]["nodePort"] == 31234
        assert wait_for(lambda: kube.curl("client", "http://192.0.2.11:31234/"), what="explicit NodePort") == "types-0"
    finally:
        kube.kubectl("delete", "service", app, "--wait=false")


def test_out_of_range_nodeport_is_rejected(kube: Kube) -> None:
    res = kube.apply(service("types-bad", "NodePort", port_extra={"nodePort": 29999}), check=False)
    assert res.returncode != 0
    assert "provided port is not in the valid range" in res.stderr
    assert kube.kubectl("get", "service", "types-bad", check=False).returncode != 0


@pytest.fixture
def ironlb_stopped(kube: Kube) -> Iterator[None]:
    """IronLB's operator and speakers are not running for the test (restarted after, if they were)."""
    was_running = load_state().ironlb
    ironlb_procs.stop_ironlb()
    yield
    if was_running:
        ironlb_procs.start_ironlb()


def test_loadbalancer_stays_pending_without_ironlb(kube: Kube, app: str, ironlb_stopped: None) -> None:
    kube.apply(service("types-lb", "LoadBalancer", selector={"app": app}))
    try:
        time.sleep(3)  # long enough for any controller to have acted
        svc = kube.get("service", "types-lb")
        assert svc["status"].get("loadBalancer", {}).get("ingress") in (None, [])
        out = kube.kubectl("get", "service", "types-lb").stdout
        assert "<pending>" in out
        # Still a NodePort Service underneath: the chain below the LB works.
        node_port = svc["spec"]["ports"][0]["nodePort"]
        body = wait_for(lambda: kube.curl("client", f"http://192.0.2.13:{node_port}/"), what="LB's NodePort")
        assert body == "types-0"
    finally:
        kube.kubectl("delete", "service", "types-lb", "--wait=false")


def test_externalname_gets_no_cluster_ip(kube: Kube) -> None:
    kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "types-ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "www.example.com"}})
    try:
        svc = kube.get("service", "types-ext")
        assert svc["spec"].get("clusterIP") in (None, "")
        rules = kube.exec("node-1", "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
        assert "types-ext" not in rules
    finally:
        kube.kubectl("delete", "service", "types-ext", "--wait=false")


def test_headless_gets_no_proxying(kube: Kube, app: str) -> None:
    kube.apply(service("types-headless", "ClusterIP", clusterIP="None", selector={"app": app}))
    try:
        svc = kube.get("service", "types-headless")
        assert svc["spec"]["clusterIP"] == "None"
        # Endpoints exist (DNS would list the pod) but kube-proxy programs nothing for it.
        wait_for(lambda: "198.19.2." in kube.kubectl("get", "endpointslices", "-l",
                 "kubernetes.io/service-name=types-headless", "-o", "jsonpath={..addresses}").stdout,
                 what="headless endpoints")
        rules = kube.exec("node-1", "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
        assert "types-headless" not in rules
    finally:
        kube.kubectl("delete", "service", "types-headless", "--wait=false")
