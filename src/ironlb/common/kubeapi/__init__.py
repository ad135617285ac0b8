"""IronLB's own Kubernetes REST client, for every process (operator, speaker, CLI), without the kubernetes
package's memory.

`connect()` reads the in-cluster service account or a kubeconfig and returns a `Client` whose calls take
and give plain dicts.
"""

from __future__ import annotations

from ironlb.common.kubeapi.client import APPLY, JSON_PATCH, MERGE, STRATEGIC, ApiError, Client
from ironlb.common.kubeapi.config import ClusterConfig, ConfigError, context_namespace, load
from ironlb.common.kubeapi.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTSLICES,
    EVENTS,
    IP_ADDRESS_POOLS,
    L2_ADVERTISEMENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    Resource,
)
from ironlb.common.kubeapi.transport import ProtocolError, Timeout
from ironlb.common.kubeapi.watch import WatchStream


def connect(kubeconfig: str | None = None, context: str | None = None, pool_size: int = 16) -> Client:
    """A Client from the in-cluster service account, else KUBECONFIG (or $KUBECONFIG, ~/.kube/config)."""
    return Client(load(kubeconfig, context), pool_size=pool_size)


__all__ = ["APPLY", "CONFIGMAPS", "DEPLOYMENTS", "ENDPOINTSLICES", "EVENTS", "IP_ADDRESS_POOLS", "JSON_PATCH",
           "L2_ADVERTISEMENTS", "LEASES", "MERGE", "NAMESPACES", "NODES", "PODS", "SECRETS", "SERVICES",
           "SERVICE_ACCOUNTS", "STRATEGIC", "ApiError", "Client", "ClusterConfig", "ConfigError", "ProtocolError",
           "Resource", "Timeout", "WatchStream", "connect", "context_namespace", "load"]
