"""`ironlb release-finalizers`: take the cleanup finalizer off the Services IronLB owns, when no operator will.

The chart runs it as a pre-delete hook of `helm uninstall` (after stopping the operator, which would add it
back), and a user runs it by hand when the operator is down for long. Only the finalizer goes: each Service
keeps its status and IronLB's annotation (docs/design.md, "Uninstalling with LoadBalancer Services left").
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.service import answers_for, handling
from ironlb.common.kubeapi import DEPLOYMENTS, JSON_PATCH, MERGE, PODS, SERVICES, ApiError, Client

log = logging.getLogger("ironlb.release-finalizers")
REQUEST_TIMEOUT_S = 10.0
ATTEMPTS = 5  # per Service: a conflicting write (the list changed under us) is read again and retried
POLL_S = 1.0


class Outcome(enum.Enum):
    """What became of one Service that carried the finalizer."""

    RELEASED = "released"
    GONE = "gone"  # deleted, or its finalizer taken off by someone else, before we got to it
    FAILED = "failed"


@dataclass(frozen=True)
class Released:
    """The Services seen carrying the cleanup finalizer, by outcome, and those left to other implementations."""

    outcomes: dict[str, Outcome]
    others: tuple[str, ...]  # they carry it, but IronLB does not own them
    stopped: bool  # the operator was stopped (or there was none to stop)

    @property
    def complete(self) -> bool:
        """Nothing IronLB owns keeps the finalizer (and no operator is left to add it back)."""
        return self.stopped and Outcome.FAILED not in self.outcomes.values()


def owned(service: dict[str, Any], lb_class: str | None) -> bool:
    """Does IronLB answer for SERVICE's cleanup finalizer (the operator's own rule, `answers_for`)?"""
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    return answers_for(handling(service.get("spec"), lb_class), annotations.get(ALLOCATED_FROM_POOL))


def carries(service: dict[str, Any]) -> bool:
    """Does SERVICE carry the cleanup finalizer?"""
    return LB_CLEANUP_FINALIZER in ((service.get("metadata") or {}).get("finalizers") or ())


def removal(service: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch taking the cleanup finalizer, and nothing else, off SERVICE as read: it fails (422) rather
    than remove another entry if the list changed since."""
    finalizers = service["metadata"]["finalizers"]
    path = f"/metadata/finalizers/{finalizers.index(LB_CLEANUP_FINALIZER)}"
    return [{"op": "test", "path": path, "value": LB_CLEANUP_FINALIZER}, {"op": "remove", "path": path}]


def _name(service: dict[str, Any]) -> str:
    meta = service["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"


def _shown(service: dict[str, Any]) -> str:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ", ".join(i.get("ip") or i.get("hostname") or "?" for i in ingress) or "no IP"


def services(kube: Client) -> Iterator[dict[str, Any]]:
    """Every Service of the cluster, a page at a time."""
    token = None
    while True:
        page = kube.list(SERVICES, timeout=REQUEST_TIMEOUT_S, limit=500, **({"continue": token} if token else {}))
        yield from page.get("items") or ()
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def release_one(kube: Client, service: dict[str, Any]) -> Outcome:
    """Take the cleanup finalizer off SERVICE, through the status subresource (as the operator does); read it
    again and retry when it changed under us."""
    meta = service["metadata"]
    for _ in range(ATTEMPTS):
        try:
            kube.patch(SERVICES, meta["name"], removal(service), meta["namespace"], subresource="status",
                       content_type=JSON_PATCH, timeout=REQUEST_TIMEOUT_S)
            return Outcome.RELEASED
        except ApiError as exc:
            if exc.status == 404:
                return Outcome.GONE
            if exc.status not in (409, 422):
                log.error("cannot take the cleanup finalizer off %s: %s", _name(service), exc)
                return Outcome.FAILED
        except OSError as exc:  # the API server unreachable, or the connection dropped
            log.error("cannot take the cleanup finalizer off %s: %s", _name(service), exc)
            return Outcome.FAILED
        try:
            service = kube.get(SERVICES, meta["name"], meta["namespace"], timeout=REQUEST_TIMEOUT_S)
        except (ApiError, OSError) as exc:
            if isinstance(exc, ApiError) and exc.status == 404:
                return Outcome.GONE
            log.error("cannot read %s again: %s", _name(service), exc)
            return Outcome.FAILED
        if not carries(service):
            return Outcome.GONE
    log.error("%s kept changing: its cleanup finalizer is still there", _name(service))
    return Outcome.FAILED


def stop_operator(kube: Client, namespace: str, deployment: str, deadline: float) -> bool:
    """Scale the operator's Deployment to zero and wait (until DEADLINE, monotonic) until none of its pods is
    left, even terminating: a running operator adds the finalizer back to every Service showing its IP."""
    try:
        selector = kube.get(DEPLOYMENTS, deployment, namespace, timeout=REQUEST_TIMEOUT_S)["spec"]["selector"]
    except ApiError as exc:
        if exc.status == 404:
            log.info("no operator Deployment %s/%s: nothing to stop", namespace, deployment)
            return True
        raise
    kube.patch(DEPLOYMENTS, deployment, {"spec": {"replicas": 0}}, namespace, subresource="scale",
               content_type=MERGE, timeout=REQUEST_TIMEOUT_S)
    labels = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    log.info("operator %s/%s scaled to zero; waiting for its pods to go", namespace, deployment)
    while True:
        left = kube.list(PODS, namespace, labelSelector=labels, timeout=REQUEST_TIMEOUT_S).get("items") or []
        if not left:
            log.info("operator stopped: no pod of %s/%s is left", namespace, deployment)
            return True
        if time.monotonic() >= deadline:
            log.error("the operator's pods are still there (%s): its finalizers are left as they are",
                      ", ".join(p["metadata"]["name"] for p in left))
            return False
        time.sleep(POLL_S)


def release(kube: Client, lb_class: str | None, timeout: float,
            operator: tuple[str, str] | None = None) -> Released:
    """Stop OPERATOR (namespace, Deployment) if given, then take the cleanup finalizer off every Service IronLB
    owns, within TIMEOUT seconds in all."""
    deadline = time.monotonic() + timeout
    if operator is not None and not stop_operator(kube, *operator, deadline):
        return Released({}, (), stopped=False)
    outcomes: dict[str, Outcome] = {}
    others: list[str] = []
    for service in services(kube):
        if not carries(service):
            continue
        if not owned(service, lb_class):
            others.append(_name(service))
            continue
        if time.monotonic() >= deadline:
            log.error("out of time: %s keeps its cleanup finalizer", _name(service))
            outcomes[_name(service)] = Outcome.FAILED
            continue
        outcomes[_name(service)] = outcome = release_one(kube, service)
        if outcome is Outcome.RELEASED:
            log.info("took the cleanup finalizer off %s (its status still shows %s; nothing answers for it once "
                     "the speakers are gone)", _name(service), _shown(service))
    return Released(outcomes, tuple(others), stopped=True)


def summary(result: Released) -> str:
    """One line: how many Services were released, gone, failed, and left to other implementations."""
    counts = {o: sum(1 for v in result.outcomes.values() if v is o) for o in Outcome}
    words = ", ".join(f"{n} {o.value}" for o, n in counts.items())
    verdict = "done" if result.complete else "NOT done: run `ironlb release-finalizers` again"
    return (f"cleanup finalizers: {words}; {len(result.others)} left to other implementations "
            f"(another loadBalancerClass); {verdict}")
