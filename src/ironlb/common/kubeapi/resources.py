"""The API resources IronLB's components read and write, and how their URL paths are made."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ironlb.api.constants import (
    BFDPROFILES,
    BGPADVERTISEMENTS,
    BGPNODESTATUSES,
    BGPPEERS,
    GROUP,
    IPADDRESSPOOLS,
    L2ADVERTISEMENTS,
    VERSION,
)


@dataclass(frozen=True)
class Resource:
    """One kind of object in the API: its group, version, plural name and whether it lives in namespaces."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection (NAMESPACE's, or all namespaces'), of one object, or of its subresource."""
        parts = ["api", self.version] if not self.group else ["apis", self.group, self.version]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        elif namespace and not self.namespaced:
            raise ValueError(f"{self.plural} are not namespaced")
        elif name and self.namespaced:
            raise ValueError(f"one of the {self.plural} is named without its namespace")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            if not name:
                raise ValueError("a subresource belongs to one named object")
            parts.append(subresource)
        return "/" + "/".join(quote(p, safe="") for p in parts)


NODES = Resource("", "v1", "nodes", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
SERVICES = Resource("", "v1", "services")
SECRETS = Resource("", "v1", "secrets")
PODS = Resource("", "v1", "pods")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
CONFIGMAPS = Resource("", "v1", "configmaps")
EVENTS = Resource("", "v1", "events")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
IP_ADDRESS_POOLS = Resource(GROUP, VERSION, IPADDRESSPOOLS, namespaced=False)
L2_ADVERTISEMENTS = Resource(GROUP, VERSION, L2ADVERTISEMENTS, namespaced=False)
# BGP mode's kinds (ironlb.api.bgp_crds), all cluster-scoped.
BGP_PEERS = Resource(GROUP, VERSION, BGPPEERS, namespaced=False)
BFD_PROFILES = Resource(GROUP, VERSION, BFDPROFILES, namespaced=False)
BGP_ADVERTISEMENTS = Resource(GROUP, VERSION, BGPADVERTISEMENTS, namespaced=False)
BGP_NODE_STATUSES = Resource(GROUP, VERSION, BGPNODESTATUSES, namespaced=False)
