"""Names of IronLB's Kubernetes API: group, version, kinds, plurals.

The operator and the speaker use these (with kopf or the kubernetes client) instead of spelling
the strings again; :mod:`ironlb.api.crds` builds the CustomResourceDefinitions from them. Condition
types and reasons are enums in :mod:`ironlb.api.reasons`, annotation keys in :mod:`ironlb.api.annotations`.
"""

from __future__ import annotations

GROUP = "ironlb.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "ironlb"  # `kubectl get ironlb` lists every IronLB object

# IPAddressPool: the addresses IronLB may hand out, and to which Services.
IPADDRESSPOOL_KIND = "IPAddressPool"
IPADDRESSPOOL_LIST_KIND = "IPAddressPoolList"
IPADDRESSPOOLS = "ipaddresspools"
IPADDRESSPOOL_SINGULAR = "ipaddresspool"
IPADDRESSPOOL_SHORT_NAMES = ("ipp",)
IPADDRESSPOOL_CRD_NAME = f"{IPADDRESSPOOLS}.{GROUP}"

# L2Advertisement: which pools are announced (ARP/NDP), from which nodes and interfaces.
L2ADVERTISEMENT_KIND = "L2Advertisement"
L2ADVERTISEMENT_LIST_KIND = "L2AdvertisementList"
L2ADVERTISEMENTS = "l2advertisements"
L2ADVERTISEMENT_SINGULAR = "l2advertisement"
L2ADVERTISEMENT_SHORT_NAMES = ("l2adv",)
L2ADVERTISEMENT_CRD_NAME = f"{L2ADVERTISEMENTS}.{GROUP}"

# spec.forwarding of an IPAddressPool.
FORWARDING_KUBE_PROXY = "KubeProxy"
FORWARDING_NODE_PORT = "NodePort"
FORWARDING_MODES = (FORWARDING_KUBE_PROXY, FORWARDING_NODE_PORT)

# The header that carries a /metrics bearer token through the API server's pod and node proxy: the API
# server removes Authorization once it has authenticated the caller, and passes other headers on. The
# speakers check a token in it exactly as one in Authorization.
METRICS_TOKEN_HEADER = "X-Ironlb-Authorization"

# Label selector operators (metav1.LabelSelectorRequirement).
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

# status.heldIPs of an IPAddressPool: at most this many reuse holds are recorded per pool.
MAX_HELD_IPS = 1024
# The operator's default IP reuse delay (seconds): how long a released IP stays held for its namespace.
DEFAULT_IP_REUSE_DELAY_S = 300

# The upstream cleanup finalizer (k8s.io/cloud-provider's service controller; the e2e spec "should handle load
# balancer cleanup finalizer for service"). The operator puts it on a Service it assigns IPs to and takes it off
# once no speaker announces them any more (docs/design.md, "The cleanup finalizer").
LB_CLEANUP_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
# The operator's default wait (seconds) for a speaker to confirm a withdrawal before it lets the Service go anyway.
DEFAULT_WITHDRAWAL_TIMEOUT_S = 60

# BGP mode (ironlb.api.bgp_crds): peers, BFD profiles, what is advertised, and each node's sessions.
BGPPEER_KIND = "BGPPeer"
BGPPEERS = "bgppeers"
BGPPEER_SINGULAR = "bgppeer"
BGPPEER_SHORT_NAMES = ("bgpp",)
BGPPEER_CRD_NAME = f"{BGPPEERS}.{GROUP}"

BFDPROFILE_KIND = "BFDProfile"
BFDPROFILES = "bfdprofiles"
BFDPROFILE_SINGULAR = "bfdprofile"
BFDPROFILE_SHORT_NAMES = ("bfdp",)
BFDPROFILE_CRD_NAME = f"{BFDPROFILES}.{GROUP}"

BGPADVERTISEMENT_KIND = "BGPAdvertisement"
BGPADVERTISEMENTS = "bgpadvertisements"
BGPADVERTISEMENT_SINGULAR = "bgpadvertisement"
BGPADVERTISEMENT_SHORT_NAMES = ("bgpadv",)
BGPADVERTISEMENT_CRD_NAME = f"{BGPADVERTISEMENTS}.{GROUP}"

# One per node, named after it, written by that node's speaker only: its BGP sessions as FRR reports them.
BGPNODESTATUS_KIND = "BGPNodeStatus"
BGPNODESTATUSES = "bgpnodestatuses"
BGPNODESTATUS_SINGULAR = "bgpnodestatus"
BGPNODESTATUS_SHORT_NAMES = ("bgpns",)
BGPNODESTATUS_CRD_NAME = f"{BGPNODESTATUSES}.{GROUP}"

# BGPPeer: the Secret type and key a passwordSecret must have (as MetalLB's), and the TCP port by default.
BGP_PASSWORD_SECRET_TYPE = "kubernetes.io/basic-auth"
BGP_PASSWORD_SECRET_KEY = "password"
BGP_DEFAULT_PORT = 179
