"""Fixtures for operator integration tests: pools created and removed per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e.testkit.testing import Kube, wait_for


def lb_service(name: str, namespace: str = "default", annotations: dict[str, str] | None = None,
               ports: list[int] | None = None, **spec: Any) -> dict[str, Any]:
    """A LoadBalancer Service manifest selecting app=NAME."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": f"p{p}", "port": p, "targetPort": 8080, "protocol": "TCP"}
                               for p in (ports or [80])], **spec}}


def ingress_ips(kube: Kube, name: str, namespace: str = "default") -> list[str]:
    """The Service's status.loadBalancer.ingress IPs ([] while pending)."""
    svc = kube.get("service", name, namespace)
    return [i["ip"] for i in (svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [])]


def wait_ips(kube: Kube, name: str, namespace: str = "default", timeout: float = 20) -> list[str]:
    """Wait until the Service has ingress IPs; return them."""
    return wait_for(lambda: ingress_ips(kube, name, namespace), timeout=timeout, what=f"ingress of {name}")


def events_for(kube: Kube, name: str, namespace: str = "default", kind: str = "Service") -> list[dict[str, Any]]:
    """Events recorded about an object (reason, message, type)."""
    out = kube.kubectl("get", "events", "-n", namespace, "-o", "json",
                       "--field-selector", f"involvedObject.name={name},involvedObject.kind={kind}").stdout
    return [{"reason": e["reason"], "message": e["message"], "type": e["type"]} for e in json.loads(out)["items"]]


def wait_event(kube: Kube, name: str, reason: str, namespace: str = "default", kind: str = "Service",
               timeout: float = 20) -> dict[str, Any]:
    """Wait for an Event with `reason` about the object; return it."""
    return wait_for(lambda: next((e for e in events_for(kube, name, namespace, kind) if e["reason"] == reason), None),
                    timeout=timeout, what=f"{reason} event on {name}")


@pytest.fixture
def cleanup(kube: Kube) -> Iterator[Callable[[str, str, str | None], None]]:
    """Register objects to delete after the test: cleanup(kind, name, namespace)."""
    objects: list[tuple[str, str, str | None]] = []

    def register(kind: str, name: str, namespace: str | None = "default") -> None:
        objects.append((kind, name, namespace))

    yield register
    for kind, name, namespace in reversed(objects):
        ns = ["-n", namespace] if namespace else []
        kube.kubectl("delete", kind, name, *ns, "--ignore-not-found", "--wait=false", check=False)
