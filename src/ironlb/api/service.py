"""Whether a Service is IronLB's at all: the one rule the operator, the speaker and the CLI apply.

The words IronLB reads and writes on Services live beside it: annotation keys in
:mod:`ironlb.api.annotations`, condition types and reasons in :mod:`ironlb.api.reasons`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class Handling(Enum):
    """Whether IronLB is responsible for a Service, and why not."""

    HANDLED = "handled"
    NOT_LOADBALANCER = "not-type-loadbalancer"
    OTHER_CLASS = "other-loadbalancer-class"
    DELETED = "deleted"


def handling(spec: Mapping[str, Any] | None, lb_class: str | None) -> Handling:
    """Is this Service ours: type LoadBalancer and the class we serve (none, by default)."""
    spec = spec or {}
    if spec.get("type") != "LoadBalancer":
        return Handling.NOT_LOADBALANCER
    if spec.get("loadBalancerClass") != lb_class:
        return Handling.OTHER_CLASS
    return Handling.HANDLED


def answers_for(handled: Handling, allocated_pool: str | None) -> bool:
    """Does IronLB answer for a Service's status and cleanup finalizer: a LoadBalancer of its class, or one it gave
    an IP (its allocated-from-pool annotation: a Service changed away from LoadBalancer, or to another class, keeps
    the finalizer until IronLB lets it go)?"""
    return handled is Handling.HANDLED or allocated_pool is not None
