"""The plain facts `ironlb doctor` read from the API, seen the way the operator and the speakers see them.

Facts are a dict of plain API objects (what `kubectl get -o json` shows), so the verdict is a pure
function, unit-tested with scenario tables:

    service: the Service (None when it does not exist); namespace, name: what was asked for
    lbClass: the loadBalancerClass IronLB serves (None: Services without one)
    ignoreExcludeLB: True when the speakers run with --ignore-exclude-lb (the chart's speaker.ignoreExcludeLB),
              so the Nodes' exclude-from-external-load-balancers label excludes none
    pools, advertisements, nodes: every IPAddressPool, L2Advertisement, Node
    slices: the Service's EndpointSlices; events: Events about the Service
    speakers: node -> {"samples": [{"name", "labels", "value"}], "families": [...]} or {"error": "..."}, with
              "refused": the speaker's refusal (ironlb.common.httpauth.Access) when it answered 401/403/503;
              a node absent from it was not scraped
    metricsToken: {"outcome": TokenOutcome value, "serviceAccount": "ns/name", "error": "..."}: doctor's
              token for the speakers' /metrics (never the token itself)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.conditions import announcers, find
from ironlb.api.reasons import ConditionType
from ironlb.core.election import order
from ironlb.speaker.state.cluster import ClusterState, service_labels
from ironlb.speaker.state.desired import NodeEligibility, advertisements_for, applying, eligibility
from ironlb.speaker.state.snapshot import Advertisement, ServiceInfo, Snapshot

SCRAPE_LIMIT = 8  # speakers scraped at most: the first in the election, and whoever the condition names


@dataclass
class Context:
    """The facts, with the views every link shares computed once."""

    facts: Mapping[str, Any]
    state: ClusterState = field(init=False)
    # IP -> (node, interfaces) announcing it, as link 5 found; links 6 and 8 look there.
    announcers: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = ClusterState(lb_class=self.facts.get("lbClass"),
                                  ignore_exclude_lb=self.facts.get("ignoreExcludeLB") is True)
        for kind in ("pools", "advertisements", "nodes", "slices"):
            for obj in self.facts.get(kind) or []:
                self.state.apply(kind, "ADDED", obj)
        if self.service:
            self.state.apply("services", "ADDED", self.service)

    @property
    def service(self) -> Mapping[str, Any] | None:
        """The Service object (None when it does not exist)."""
        return self.facts.get("service")

    @property
    def key(self) -> str:
        """namespace/name."""
        return f"{self.facts.get('namespace')}/{self.facts.get('name')}"

    @property
    def spec(self) -> Mapping[str, Any]:
        """The Service's spec."""
        return (self.service or {}).get("spec") or {}

    @property
    def ips(self) -> tuple[str, ...]:
        """The ingress IPs in the Service's status."""
        ingress = (((self.service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return tuple(i["ip"] for i in ingress if i.get("ip"))

    @property
    def pool(self) -> str | None:
        """The IronLB pool the operator says the IPs came from."""
        return (((self.service or {}).get("metadata") or {}).get("annotations") or {}).get(ALLOCATED_FROM_POOL)

    @cached_property
    def snapshot(self) -> Snapshot:
        """The speakers' pure view; every Node counts as alive here (speaker liveness is link 5's)."""
        return self.state.snapshot(frozenset(self.state.nodes))

    @cached_property
    def info(self) -> ServiceInfo | None:
        """The Service as the speakers see it (None without IPs, or when not theirs)."""
        return self.snapshot.services.get(self.key)

    @cached_property
    def pool_advertisements(self) -> list[Advertisement]:
        """The L2Advertisements covering the Service's pool, whichever Service (the speakers' own rule)."""
        return advertisements_for(self.pool, self.snapshot)

    @cached_property
    def advertisements(self) -> list[Advertisement]:
        """Those of `pool_advertisements` that apply to this Service (their serviceSelectors and its labels)."""
        return applying(self.pool_advertisements, self.info.labels if self.info is not None else service_labels(
            ((self.service or {}).get("metadata") or {}).get("labels")))

    @cached_property
    def node_reasons(self) -> dict[str, NodeEligibility]:
        """Node -> whether it may announce the Service, by the speakers' own eligibility function."""
        if self.info is None:
            return {}
        return {name: eligibility(node, self.advertisements, self.info, self.snapshot.alive)
                for name, node in sorted(self.snapshot.nodes.items())}

    @property
    def eligible(self) -> list[str]:
        """The eligible nodes."""
        return [n for n, r in self.node_reasons.items() if r is NodeEligibility.ELIGIBLE]

    def ranking(self, ip: str) -> list[str]:
        """The eligible nodes in election order for IP (the first alive one announces it; with the Local policy,
        the node announcing it now comes first while it is eligible)."""
        local = self.spec.get("externalTrafficPolicy") == "Local"
        return order(ip, self.eligible, announcers((self.service or {}).get("status")).get(ip) if local else None)

    @cached_property
    def ready_endpoints(self) -> dict[str, int]:
        """Node (or "" when the endpoint names none) -> ready endpoints of the Service."""
        out: dict[str, int] = {}
        for sl in self.facts.get("slices") or []:
            for ep in sl.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready", True):
                    out[ep.get("nodeName") or ""] = out.get(ep.get("nodeName") or "", 0) + 1
        return out

    def condition(self, ctype: ConditionType = ConditionType.SERVICE_ANNOUNCED) -> Mapping[str, Any] | None:
        """A condition of the Service's status (the speakers write Announced and Forwarding)."""
        return find((self.service or {}).get("status"), ctype)

    def speaker(self, node: str) -> Mapping[str, Any] | None:
        """What scraping NODE's speaker gave (None: not scraped)."""
        return (self.facts.get("speakers") or {}).get(node)

    @property
    def scrape_path_works(self) -> bool:
        """True when at least one speaker answered (so a silent one is down, not unreachable)."""
        return any("samples" in s or "refused" in s for s in (self.facts.get("speakers") or {}).values())

    def samples(self, node: str, name: str) -> list[Mapping[str, Any]]:
        """NODE's speaker's samples of metric NAME."""
        return [s for s in (self.speaker(node) or {}).get("samples") or [] if s.get("name") == name]


def nodes_to_scrape(facts: Mapping[str, Any]) -> list[str]:
    """Whose speakers doctor should read: the first few in each IP's election, and those the condition names."""
    ctx = Context(facts)
    wanted: list[str] = []
    message = (ctx.condition() or {}).get("message") or ""
    for node in ctx.state.nodes:
        if f"from node {node} " in message:
            wanted.append(node)
    for ip in ctx.ips:
        wanted.extend(ctx.ranking(ip))
    wanted = list(dict.fromkeys(wanted))[:SCRAPE_LIMIT]
    # One more speaker as a control: if its metrics answer, a silent one is down, not out of reach.
    control = next((n for n in sorted(ctx.state.nodes) if n not in wanted), None)
    return wanted + ([control] if wanted and control else [])
