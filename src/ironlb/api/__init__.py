"""IronLB's Kubernetes API: names (group, version, plurals), the CRDs, and the words it writes.

Importing this package is cheap and needs no Kubernetes client; the CRD builder (which needs
PyYAML only for writing files) lives in :mod:`ironlb.api.crds`. Event reasons, condition types and
condition reasons are enums in :mod:`ironlb.api.reasons` (conditions are made by
:mod:`ironlb.api.conditions`), annotation keys are in :mod:`ironlb.api.annotations`.
"""

from ironlb.api.constants import (
    API_VERSION,
    CATEGORY,
    FORWARDING_KUBE_PROXY,
    FORWARDING_MODES,
    FORWARDING_NODE_PORT,
    GROUP,
    IPADDRESSPOOL_CRD_NAME,
    IPADDRESSPOOL_KIND,
    IPADDRESSPOOLS,
    L2ADVERTISEMENT_CRD_NAME,
    L2ADVERTISEMENT_KIND,
    L2ADVERTISEMENTS,
    VERSION,
)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "FORWARDING_KUBE_PROXY",
    "FORWARDING_MODES",
    "FORWARDING_NODE_PORT",
    "GROUP",
    "IPADDRESSPOOLS",
    "IPADDRESSPOOL_CRD_NAME",
    "IPADDRESSPOOL_KIND",
    "L2ADVERTISEMENTS",
    "L2ADVERTISEMENT_CRD_NAME",
    "L2ADVERTISEMENT_KIND",
    "VERSION",
]
