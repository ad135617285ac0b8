"""The specs IronLB is held to: every `[Feature:LoadBalancer]` spec of test/e2e/network/loadbalancer.go and the
LoadBalancer-typed specs of service.go, at the lab's Kubernetes pin, and the two forwarding modes they run in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """IronLB's forwarding modes (docs/design.md, "NodePort forwarding")."""

    KUBEPROXY = "kubeproxy"  # pools with forwarding: KubeProxy (the chart's default)
    NODEPORT = "nodeport"  # pools with forwarding: NodePort, the speakers with speaker.nodePortForwarding


@dataclass(frozen=True)
class Spec:
    """One upstream spec: its It text (unique among the specs here) and where it is defined."""

    text: str
    source: str  # loadbalancer.go or service.go
    rolling: bool = False  # a rolling-update spec (long: about a quarter of an hour each)

    @property
    def focus(self) -> str:
        """A ginkgo focus regexp that matches this spec's full text only."""
        return re.escape(self.text.strip())


LB = "loadbalancer.go"
SVC = "service.go"

SPECS: tuple[Spec, ...] = (
    Spec("should be able to change the type and ports of a TCP service", LB),
    Spec("should be able to change the type and ports of a UDP service", LB),
    Spec("should only allow access from service loadbalancer source ranges", LB),
    Spec("should have session affinity work for LoadBalancer service with Local traffic policy", LB),
    Spec("should be able to switch session affinity for LoadBalancer service with Local traffic policy", LB),
    Spec("should have session affinity work for LoadBalancer service with Cluster traffic policy", LB),
    Spec("should be able to switch session affinity for LoadBalancer service with Cluster traffic policy", LB),
    Spec("should handle load balancer cleanup finalizer for service", LB),
    Spec("should be able to create LoadBalancer Service without NodePort and change it", LB),
    Spec("should be able to preserve UDP traffic when server pod cycles for a LoadBalancer service on different nodes",
         LB),
    Spec("should be able to preserve UDP traffic when server pod cycles for a LoadBalancer service on the same nodes",
         LB),
    Spec("should not have connectivity disruption during rolling update with externalTrafficPolicy=Cluster", LB,
         rolling=True),
    Spec("should not have connectivity disruption during rolling update with externalTrafficPolicy=Local", LB,
         rolling=True),
    Spec("should work for type=LoadBalancer", LB),
    Spec("should only target nodes with endpoints", LB),
    Spec("should target all nodes with endpoints", LB),
    Spec("should work from pods", LB),
    Spec("should fail health check node port if there are only terminating endpoints", SVC),
    Spec("should complete a service status lifecycle", SVC),
    Spec("should serve endpoints on same port and different protocol for internal traffic on Type LoadBalancer", SVC),
    Spec("should implement NodePort and HealthCheckNodePort correctly when ExternalTrafficPolicy changes", SVC),
)

QUICK: tuple[Spec, ...] = tuple(s for s in SPECS if not s.rolling)

# What `make test` runs (e2e/test_conformance_slice.py): quick specs that pass in kube-proxy mode. Between them:
# a VIP reached from the e2e client with its address preserved, from pods, and the cleanup finalizer.
SLICE: tuple[Spec, ...] = tuple(s for s in SPECS if s.text in (
    "should work for type=LoadBalancer",
    "should work from pods",
    "should handle load balancer cleanup finalizer for service",
))


def spec_named(text: str) -> Spec:
    """The spec whose It text is TEXT."""
    for spec in SPECS:
        if spec.text == text:
            return spec
    raise KeyError(text)


def spec_of(junit_name: str) -> Spec | None:
    """The spec a JUnit test case's name is about, if it is one of SPECS."""
    for spec in SPECS:
        if f" {spec.text.strip()}" in f" {junit_name}":
            return spec
    return None


def focus(specs: tuple[Spec, ...]) -> str:
    """One ginkgo focus regexp for SPECS."""
    return "|".join(s.focus for s in specs)
