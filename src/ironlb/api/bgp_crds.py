"""The schemas of BGP mode's CRDs: BGPPeer, BFDProfile, BGPAdvertisement and BGPNodeStatus.

Field names follow MetalLB's (metallb.io/v1beta2 BGPPeer, v1beta1 BFDProfile and BGPAdvertisement), so that
`ironlb migrate metallb` carries them over unchanged; ranges are MetalLB's unless a comment says why not.

Checked at admission (OpenAPI schema and CEL), each with a message that quotes the bad value:

* BGPPeer: myASN and peerASN 1 to 4294967295; exactly one of peerASN and dynamicASN (internal or
  external); exactly one of peerAddress and interface; peerAddress and sourceAddress IP addresses of global
  unicast scope (an IPv6 link-local peer is reached with ``interface``), routerID an IPv4 address; durations
  in Go's syntax (``90s``, ``1m30s``) and whole seconds: holdTime 0 or 3s to 65535s, keepaliveTime up to
  65535s and less than holdTime (or both 0s), connectTime 1s to 65535s; at most one of password and
  passwordSecret; ebgpMultiHop not on an iBGP peer; interface and vrf names as the kernel takes them.
* BFDProfile: intervals 10 to 60000 ms, detectMultiplier 2 to 255, minimumTtl 1 to 254.
* BGPAdvertisement: aggregationLength 1-32 and aggregationLengthV6 1-128, left at 32/128 when
  serviceSelectors are given (an aggregate covers other Services' IPs); localPref 0 to 4294967295;
  communities standard (``65000:1``, two 16-bit numbers) or large (``large:1:2:3``, three 32-bit numbers).

Left to run time (ironlb.api.bgp), because CEL sees one object at a time: a passwordSecret that does not
exist or has no password, a bfdProfile, peer or pool that does not exist, an aggregation length shorter
than a pool's own prefix, echo mode on a multi-hop peer.
"""

from __future__ import annotations

from typing import Any

from ironlb.api import constants
from ironlb.api.bgp_status import bgpnodestatus_crd
from ironlb.api.schema import (
    AGE_COLUMN,
    Schema,
    cel_string,
    column,
    conditions,
    crd,
    dns_subdomain,
    interface_name,
    label_selectors,
    object_root,
    rule,
    string,
)

MAX_ASN = 4294967295
MAX_PEERS = 64
MAX_POOLS = 64
MAX_COMMUNITIES = 32
DURATION_MAX_LENGTH = 32
# Go's duration syntax (metav1.Duration), without signs and the micro sign: what CEL's duration() reads.
DURATION_RE = "^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$"
STANDARD_COMMUNITY_RE = "^[0-9]{1,5}:[0-9]{1,5}$"
LARGE_COMMUNITY_RE = "^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$"
DURATION_HELP = "a duration such as '90s', '1m30s' or '0s'"
COMMUNITY_HELP = ("a BGP community is standard, two numbers of 0-65535 ('65000:100'), or large, 'large:' and "
                  "three numbers of 0-4294967295 ('large:65000:1:2')")


def _is_duration(expr: str) -> str:
    return f"{expr}.matches('{DURATION_RE}')"


def _quoted(text: str) -> str:
    return cel_string(text, v="self")


def seconds(description: str, *, low: int, allow_zero: bool) -> Schema:
    """A metav1.Duration in whole seconds from LOW to 65535 (or 0 when ALLOW_ZERO): FRR's timers count
    seconds, and a fraction would be cut off without a word."""
    span = f"duration(self) >= duration('{low}s') && duration(self) <= duration('65535s')"
    if allow_zero:
        span = f"duration(self) == duration('0s') || ({span})"
    allowed = f"0s or {low}s to 65535s" if allow_zero else f"{low}s to 65535s"
    return string(
        f"{description} A duration ({DURATION_HELP}), whole seconds, {allowed}.",
        max_length=DURATION_MAX_LENGTH,
        **{"x-kubernetes-validations": [
            rule(_is_duration("self"), f"not a duration: write {DURATION_HELP}",
                 _quoted(f"'{{v}}' is not a duration: write {DURATION_HELP}")),
            rule(f"!{_is_duration('self')} || duration(self).getMilliseconds() % 1000 == 0",
                 "must be a whole number of seconds", _quoted("'{v}' is not a whole number of seconds")),
            rule(f"!{_is_duration('self')} || {span}", f"must be {allowed}",
                 _quoted(f"'{{v}}' is out of range: it must be {allowed}")),
        ]},
    )


def _asn(description: str) -> Schema:
    return {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ASN,
            "description": f"{description} 1 to 4294967295 (4-byte ASNs included)."}


def _address(description: str, what: str) -> Schema:
    return string(
        description, max_length=39,
        **{"x-kubernetes-validations": [
            rule("isIP(self)", f"{what} must be an IPv4 or IPv6 address",
                 _quoted(f"'{{v}}' is not an IP address: {what} must be an IPv4 or IPv6 address")),
            rule("!isIP(self) || ip(self).isGlobalUnicast()",
                 f"{what} must not be loopback, link-local, multicast or unspecified",
                 _quoted(f"'{{v}}' cannot be {what}: loopback, link-local, multicast and unspecified addresses are "
                         "not allowed (peer over an IPv6 link-local address with 'interface' instead)")),
        ]},
    )


def _bounded(description: str, low: int, high: int) -> Schema:
    return {"type": "integer", "format": "int32", "minimum": low, "maximum": high,
            "description": f"{description} {low} to {high}."}


def _valid_durations(*fields: str) -> str:
    return " && ".join(f"has(self.{f}) && {_is_duration('self.' + f)}" for f in fields)


PEER_RULES = [
    rule("has(self.peerASN) != has(self.dynamicASN)",
         "exactly one of peerASN and dynamicASN must be set: the peer's AS number, or internal / external"),
    rule("has(self.peerAddress) != has(self.interface)",
         "exactly one of peerAddress and interface must be set: the address to dial, or the interface of an "
         "unnumbered session"),
    rule("!(has(self.password) && has(self.passwordSecret))",
         "password and passwordSecret are mutually exclusive: set one of them"),
    rule(f"!({_valid_durations('holdTime', 'keepaliveTime')}) || duration(self.keepaliveTime) < "
         "duration(self.holdTime) || (duration(self.holdTime) == duration('0s') && duration(self.keepaliveTime) == "
         "duration('0s'))",
         "keepaliveTime must be less than holdTime (or both 0s, which turns keepalives and the hold timer off)",
         cel_string("keepaliveTime {k} must be less than holdTime {h} (or both 0s, which turns keepalives and the "
                    "hold timer off)", k="self.keepaliveTime", h="self.holdTime")),
    rule("!(has(self.ebgpMultiHop) && self.ebgpMultiHop) || !((has(self.peerASN) && self.peerASN == self.myASN) "
         "|| (has(self.dynamicASN) && self.dynamicASN == 'internal'))",
         "ebgpMultiHop applies to eBGP peers only: this peer is iBGP (its AS number is myASN)"),
]


def bgppeer_schema() -> Schema:
    spec: Schema = {
        "type": "object",
        "description": "One BGP neighbor, and the nodes that open a session to it.",
        "required": ["myASN"],
        "properties": {
            "myASN": _asn("The AS number of the nodes' end of the session."),
            "peerASN": _asn("The AS number of the peer. Exactly one of peerASN and dynamicASN."),
            "dynamicASN": {
                "type": "string", "enum": ["internal", "external"],
                "description": "The peer's AS number taken from its OPEN message instead of peerASN: internal "
                               "(it must equal myASN) or external (it must differ).",
            },
            "peerAddress": _address("The address to dial. Exactly one of peerAddress and interface.",
                                    "a peer address"),
            "interface": interface_name("The node's interface of an unnumbered session (IPv6 link-local, RFC "
                                        "5549). Exactly one of peerAddress and interface."),
            "peerPort": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 65535,
                         "default": constants.BGP_DEFAULT_PORT,
                         "description": "The peer's TCP port, 179 by default. (MetalLB stops at 16384; every "
                                        "value it takes is taken here.)"},
            "sourceAddress": _address("The nodes' source address for the session; by default, the kernel's "
                                      "choice.", "a source address"),
            "routerID": string(
                "The BGP router ID to announce; by default, the node's IPv4 address.", max_length=15,
                **{"x-kubernetes-validations": [rule(
                    "isIP(self) && ip(self).family() == 4", "routerID must be an IPv4 address",
                    _quoted("'{v}' is not a router ID: a BGP router ID is an IPv4 address"))]}),
            "holdTime": seconds("The hold time to propose (RFC 4271): the peer is dropped when nothing is "
                                "heard from it for this long. 0s turns it off.", low=3, allow_zero=True),
            "keepaliveTime": seconds("The keepalive interval to propose; by default a third of holdTime.",
                                     low=0, allow_zero=False),
            "connectTime": seconds("How long to wait between connection attempts.", low=1, allow_zero=False),
            "password": string("The TCP MD5 password (RFC 2385), in the clear. Prefer passwordSecret.",
                               min_length=1, max_length=80),
            "passwordSecret": {
                "type": "object",
                "description": "The Secret holding the TCP MD5 password: in IronLB's namespace, of type "
                               f"{constants.BGP_PASSWORD_SECRET_TYPE}, under the key "
                               f"'{constants.BGP_PASSWORD_SECRET_KEY}' (as MetalLB's).",
                "required": ["name"],
                "properties": {"name": dns_subdomain("Secret name")},
            },
            "ebgpMultiHop": {"type": "boolean", "default": False,
                             "description": "The eBGP peer is more than one hop away (its TTL check is relaxed)."},
            "bfdProfile": {**dns_subdomain("BFDProfile name"),
                           "description": "The BFDProfile of the session's BFD session (none: no BFD)."},
            "enableGracefulRestart": {"type": "boolean", "default": False,
                                      "description": "Graceful restart (RFC 4724): the peer keeps forwarding to "
                                                     "the node's routes while its BGP daemon restarts."},
            "nodeSelectors": label_selectors("Only nodes whose labels match open a session to this peer. "
                                             "Without it, every node does."),
            "vrf": interface_name("The VRF of the session (a VRF device on the node); none: the default VRF."),
            "disableMP": {"type": "boolean", "default": False,
                          "description": "Announce only the peer's own address family on the session (no "
                                         "multiprotocol: IPv4 routes to an IPv4 peer, IPv6 to an IPv6 one)."},
        },
        "x-kubernetes-validations": PEER_RULES,
    }
    return object_root("BGPPeer: a BGP neighbor the speakers open sessions to.", spec, _config_status())


def bfdprofile_schema() -> Schema:
    spec: Schema = {
        "type": "object",
        "description": "BFD (RFC 5880) timers of the BGP sessions that name this profile. Unset fields take "
                       "FRR's defaults: 300 ms intervals, multiplier 3, echo 50 ms, minimum TTL 254.",
        "properties": {
            "receiveInterval": _bounded("The shortest interval, in ms, at which this node can receive "
                                        "BFD control packets.", 10, 60000),
            "transmitInterval": _bounded("The interval, in ms, at which this node wants to send BFD "
                                         "control packets.", 10, 60000),
            "detectMultiplier": _bounded("How many intervals without a packet declare the peer down "
                                         "(detection time = this x the peer's transmit interval).", 2, 255),
            "echoInterval": _bounded("The shortest interval, in ms, at which this node can receive echo "
                                     "packets.", 10, 60000),
            "echoMode": {"type": "boolean", "description": "Send echo packets (single-hop sessions only)."},
            "passiveMode": {"type": "boolean", "description": "Wait for the peer's control packets before sending."},
            "minimumTtl": _bounded("Multi-hop sessions only: the lowest TTL accepted on incoming "
                                   "control packets.", 1, 254),
        },
    }
    return object_root("BFDProfile: BFD timers for BGP sessions.", spec, _config_status())


def _community() -> Schema:
    standard = (f"self.matches('{STANDARD_COMMUNITY_RE}')"
                " && [self.split(':')].all(n, int(n[0]) <= 65535 && int(n[1]) <= 65535)")
    large = (f"self.matches('{LARGE_COMMUNITY_RE}') && [self.split(':')].all(n, int(n[1]) <= {MAX_ASN}"
             f" && int(n[2]) <= {MAX_ASN} && int(n[3]) <= {MAX_ASN})")
    return string(
        f"A BGP community: {COMMUNITY_HELP}.", max_length=40,
        **{"x-kubernetes-validations": [rule(
            f"({standard}) || ({large})", f"not a valid community: {COMMUNITY_HELP}",
            _quoted(f"'{{v}}' is not a valid community: {COMMUNITY_HELP}"))]},
    )


ADVERTISEMENT_RULES = [
    rule("!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || ((!has(self.aggregationLength) || "
         "self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))",
         "serviceSelectors need aggregationLength 32 and aggregationLengthV6 128: an aggregate route would also "
         "carry the IPs of Services the selectors leave out"),
]


def bgpadvertisement_schema() -> Schema:
    spec: Schema = {
        "type": "object",
        "description": "Which pools are announced over BGP, from which nodes, to which peers, with which "
                       "attributes. With neither ipAddressPools nor ipAddressPoolSelectors, every pool is.",
        "properties": {
            "ipAddressPools": {
                "type": "array", "description": "Names of the IPAddressPools announced.", "maxItems": MAX_POOLS,
                "items": dns_subdomain("IPAddressPool name"), "x-kubernetes-list-type": "set",
            },
            "ipAddressPoolSelectors": label_selectors("IPAddressPools whose labels match are announced."),
            "serviceSelectors": label_selectors("Only Services whose labels match are announced. Without it, "
                                                "every Service of the pools."),
            "nodeSelectors": label_selectors("Only nodes whose labels match announce (are next hops). Without "
                                             "it, every eligible node does."),
            "peers": {
                "type": "array", "description": "Names of the BGPPeers announced to. Without it, every peer.",
                "maxItems": MAX_PEERS, "items": dns_subdomain("BGPPeer name"), "x-kubernetes-list-type": "set",
            },
            "aggregationLength": {
                "type": "integer", "format": "int32", "minimum": 1, "maximum": 32, "default": 32,
                "description": "The prefix length IPv4 addresses are announced with: 32 announces each IP, "
                               "shorter ones the block around it (e.g. 24).",
            },
            "aggregationLengthV6": {
                "type": "integer", "format": "int32", "minimum": 1, "maximum": 128, "default": 128,
                "description": "The prefix length IPv6 addresses are announced with (128: each IP).",
            },
            "localPref": {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_ASN,
                          "description": "The LOCAL_PREF attribute (iBGP peers): higher is preferred."},
            "communities": {
                "type": "array",
                "description": "BGP communities attached to the routes, written out (IronLB has no Community "
                               "aliases: `ironlb migrate metallb` replaces MetalLB's by their values).",
                "maxItems": MAX_COMMUNITIES, "items": _community(), "x-kubernetes-list-type": "set",
            },
        },
        "x-kubernetes-validations": ADVERTISEMENT_RULES,
    }
    return object_root("BGPAdvertisement: announces IPAddressPools to BGP peers.", spec, _config_status())


def _config_status() -> Schema:
    return {
        "type": "object",
        "description": "What the operator observed; written by the operator only.",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0,
                                   "description": "The .metadata.generation this status describes."},
            "conditions": conditions(),
        },
    }


def _spec_column(name: str, field: str, description: str, type_: str = "string", priority: int = 0) -> Schema:
    return column(name, type_, f".spec.{field}", description, priority)


def bgppeer_crd() -> dict[str, Any]:
    return crd(constants.BGPPEER_KIND, constants.BGPPEERS, constants.BGPPEER_SINGULAR, constants.BGPPEER_SHORT_NAMES,
               bgppeer_schema(), [
                   _spec_column("Address", "peerAddress", "The address dialed."),
                   _spec_column("Interface", "interface", "The interface of an unnumbered session."),
                   _spec_column("ASN", "peerASN", "The peer's AS number.", "integer"),
                   _spec_column("My ASN", "myASN", "The nodes' AS number.", "integer"),
                   _spec_column("BFD Profile", "bfdProfile", "The BFD profile (none: no BFD)."),
                   _spec_column("Multi Hops", "ebgpMultiHop", "Whether the eBGP peer is several hops away.",
                                "boolean", priority=1),
                   _spec_column("Node Selectors", "nodeSelectors", "The nodes that peer.", priority=1),
                   AGE_COLUMN,
               ])


def bfdprofile_crd() -> dict[str, Any]:
    return crd(constants.BFDPROFILE_KIND, constants.BFDPROFILES, constants.BFDPROFILE_SINGULAR,
               constants.BFDPROFILE_SHORT_NAMES, bfdprofile_schema(), [
                   _spec_column("Passive Mode", "passiveMode", "Waits for the peer.", "boolean"),
                   _spec_column("Transmit Interval", "transmitInterval", "ms.", "integer"),
                   _spec_column("Receive Interval", "receiveInterval", "ms.", "integer"),
                   _spec_column("Multiplier", "detectMultiplier", "Intervals missed before down.", "integer"),
                   AGE_COLUMN,
               ])


def bgpadvertisement_crd() -> dict[str, Any]:
    return crd(constants.BGPADVERTISEMENT_KIND, constants.BGPADVERTISEMENTS, constants.BGPADVERTISEMENT_SINGULAR,
               constants.BGPADVERTISEMENT_SHORT_NAMES, bgpadvertisement_schema(), [
                   _spec_column("IP Address Pools", "ipAddressPools", "Pools announced, by name."),
                   _spec_column("Pool Selectors", "ipAddressPoolSelectors", "Pools announced, by label."),
                   _spec_column("Peers", "peers", "Peers announced to (empty: all)."),
                   _spec_column("Node Selectors", "nodeSelectors", "Nodes that announce.", priority=1),
                   _spec_column("Communities", "communities", "Communities attached.", priority=1),
                   AGE_COLUMN,
               ])


def crd_manifests() -> list[dict[str, Any]]:
    """BGP mode's CRDs."""
    return [bgppeer_crd(), bfdprofile_crd(), bgpadvertisement_crd(), bgpnodestatus_crd()]
