"""This node's NodePort forwarding kept Service by Service: a pass plans again only the Services it is given.

`plan.plan` decides from a whole Snapshot; this keeps its result per Service (forwards, status plan, health
checks), so a change to one Service costs that Service's plan, and the whole is put together from the parts.
What every forwarded Service reads (nodes, the alive set, health results, pools) re-plans the forwarded ones.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from ironlb.speaker.control.forward.plan import (
    KUBE_PROXY_HEALTHZ_PORT,
    Forward,
    ForwardingPlan,
    Probe,
    ServicePlan,
    forwarded,
    local_addresses,
    service_plan,
    service_probes,
)
from ironlb.speaker.state.snapshot import Snapshot


class KeptForwarding:
    """The forwarding plan of node ME, its parts kept by Service."""

    def __init__(self, me: str, enabled: bool = True, kube_proxy_port: int = KUBE_PROXY_HEALTHZ_PORT) -> None:
        self.me, self.enabled, self.kube_proxy_port = me, enabled, kube_proxy_port
        self.plan = ForwardingPlan((), (), {})
        self._forwards: dict[str, tuple[Forward, ...]] = {}
        self._plans: dict[str, ServicePlan] = {}
        self._probes: dict[str, frozenset[Probe]] = {}

    def update(self, snapshot: Snapshot, vips_of: Callable[[str], Sequence[str]], keys: Collection[str] | None,
               failing: frozenset[Probe] = frozenset()) -> bool:
        """Plan the Services KEYS again (None: every Service); True when the health checks wanted changed.

        VIPS_OF(key): the Service's IPs this node announces, in its IP order."""
        if keys is None:
            keys = set(snapshot.services) | set(self._plans)
        changed = probes_changed = False
        for key in keys:
            part, probes = self._replan(key, snapshot, vips_of, failing)
            changed, probes_changed = changed or part, probes_changed or probes
        if changed or self.plan.local_addresses != local_addresses(snapshot, self.me):
            self.plan = ForwardingPlan(tuple(f for key in sorted(self._forwards) for f in self._forwards[key]),
                                       local_addresses(snapshot, self.me), dict(self._plans))
        return probes_changed

    def forwarded_keys(self) -> set[str]:
        """The Services forwarded now."""
        return set(self._plans)

    def probes(self) -> set[Probe]:
        """Every health check the forwarded VIPs need."""
        return set().union(*self._probes.values())

    def _replan(self, key: str, snapshot: Snapshot, vips_of: Callable[[str], Sequence[str]],
                failing: frozenset[Probe]) -> tuple[bool, bool]:
        """Plan Service KEY again; whether its part changed, and whether its health checks did."""
        svc = snapshot.services.get(key)
        vips = vips_of(key) if svc is not None and forwarded(svc, snapshot) else ()
        old = (self._forwards.pop(key, ()), self._plans.pop(key, None))
        old_probes = self._probes.pop(key, frozenset())
        if not vips:
            return old[1] is not None, bool(old_probes)
        assert svc is not None
        forwards, service = service_plan(svc, vips, snapshot, failing, self.kube_proxy_port)
        if not self.enabled:  # without NET_ADMIN: nothing forwarded, and status says why
            forwards, service = [], ServicePlan(key, {}, disabled=True)
        self._forwards[key], self._plans[key] = tuple(forwards), service
        self._probes[key] = probes = frozenset(service_probes(svc, vips, snapshot, self.kube_proxy_port))
        return old != (self._forwards[key], service), probes != old_probes
