"""A SteeringPlan as one nftables script (pure text): table `inet ironlb_steer`, refilled in place in one transaction.

Why a DNAT just before kube-proxy's: netfilter sets up one destination NAT per connection, so the first
NAT chain at prerouting that translates a new connection is the only one that does. Ours runs just
before kube-proxy's (dstnat - 5) and translates only steered VIP:ports; kube-proxy's firewall chain
(loadBalancerSourceRanges) runs before both, and a client outside the ranges is left to kube-proxy.
A steered connection is masqueraded, as kube-proxy does for a Cluster Service, so that a pod on another
node answers through this node. Conntrack keeps each connection's translation, so emptying the table
when Kubernetes catches up moves no established connection.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

from ironlb.core.addresses import IPV4, family_of
from ironlb.speaker.control.steer.plan import Steer, SteeringPlan

TABLE = "ironlb_steer"
MARK = 0x00200000  # a connection-mark bit of its own: NodePort forwarding uses 0x00100000, kube-proxy 0x4000/0x8000
HASH_SEED = 0x1B2  # ClientIP affinity: the same client goes to the same endpoint on every node
PREROUTING = "type nat hook prerouting priority dstnat - 5; policy accept;"
POSTROUTING = "type nat hook postrouting priority srcnat - 5; policy accept;"


def _proto(ip: str) -> str:
    return "ip" if family_of(ip) == IPV4 else "ip6"


def chain_name(steer: Steer) -> str:
    """A short stable chain name for one steered VIP:port (its target map and source set are named after it)."""
    digest = hashlib.sha256(f"{steer.vip}|{steer.protocol}|{steer.port}".encode()).hexdigest()[:12]
    return f"steer_{digest}"


def _target_map(steer: Steer) -> str:
    """The declaration of STEER's target map (the pick's index -> address . port), without its elements."""
    proto = _proto(steer.vip)
    return f"map {chain_name(steer)}_to {{ typeof numgen random mod 1 : {proto} daddr . {steer.protocol.lower()} dport;"


def _source_set(steer: Steer) -> str:
    """The declaration of STEER's source set (its loadBalancerSourceRanges), without its elements."""
    addr_type = "ipv4_addr" if _proto(steer.vip) == "ip" else "ipv6_addr"
    return f"set {chain_name(steer)}_from {{ type {addr_type}; flags interval;"


def _objects(steer: Steer) -> list[str]:
    """STEER's chain, target map and source set, declared (created empty if absent, left as they are if not)."""
    return [f"  chain {chain_name(steer)} {{ }}", f"  {_target_map(steer)} }}", f"  {_source_set(steer)} }}"]


def _emptying(steer: Steer) -> list[str]:
    name = chain_name(steer)
    return [f"flush map inet {TABLE} {name}_to", f"flush set inet {TABLE} {name}_from"]


def _removal(steer: Steer) -> list[str]:
    name = chain_name(steer)
    return [f"delete chain inet {TABLE} {name}", f"delete map inet {TABLE} {name}_to",
            f"delete set inet {TABLE} {name}_from"]


def _merged(networks: Iterable[str]) -> list[str]:
    """NETWORKS (of one family) with overlaps merged, as an interval set takes them."""
    parsed = [ipaddress.ip_network(n, strict=False) for n in networks]
    return [str(n) for n in ipaddress.collapse_addresses(parsed)]


def _steer_chain(steer: Steer) -> list[str]:
    name, proto, l4 = chain_name(steer), _proto(steer.vip), steer.protocol.lower()
    pick = f"jhash {proto} saddr mod {len(steer.targets)} seed {HASH_SEED:#x}" if steer.client_ip_affinity \
        else f"numgen random mod {len(steer.targets)}"
    targets = ", ".join(f"{i} : {a} . {p}" for i, (a, p) in enumerate(steer.targets))
    sources = [] if steer.sources is None else (
        ["    return"] if not steer.sources else [f"    {proto} saddr != @{name}_from return"])
    return [
        f"  {_target_map(steer)} elements = {{ {targets} }} }}",
        *([f"  {_source_set(steer)} elements = {{ {', '.join(_merged(steer.sources))} }} }}"] if steer.sources else []),
        f"  chain {name} {{",
        f"    # {steer.service}: {steer.vip} {steer.port}/{steer.protocol}, live endpoints only",
        *sources,
        f"    ct mark set ct mark | {MARK:#010x}",
        f"    meta l4proto {l4} dnat {proto} to {pick} map @{name}_to",
        "  }",
    ]


def _dispatch_maps(elements: dict[str, list[str]]) -> list[str]:
    body = []
    for proto, addr_type in (("ip", "ipv4_addr"), ("ip6", "ipv6_addr")):
        body += [f"  map dispatch_{proto} {{", f"    type {addr_type} . inet_proto . inet_service : verdict",
                 *([f"    elements = {{ {', '.join(elements[proto])} }}"] if elements[proto] else []), "  }"]
    return body


def render(plan: SteeringPlan, standing: bool = False, stale: Iterable[Steer] = ()) -> str:
    """The whole table for PLAN, refilled in place; when nothing is steered, only its removal unless it is STANDING.
    STALE: steers a script applied before may have left in the table, removed (whether or not they are there).

    A reapply never deletes and builds again what a packet meets: the hooked chains and every set and map a rule
    looks up stay, and one transaction empties and refills them. The kernel switches a chain's rules at one
    generation flip, but a lookup reads the generation of its own moment: a new table's hooks (which come in
    before the old one's go) or a rule's anonymous map (deactivated with its rule) would leave a new connection
    that crosses the flip with nothing to match, unsteered. A named set flushed and refilled answers the same
    at either generation.

    Once a table has steered, it stays (with nothing in its maps) until the speaker stops: the kernel
    translates a NATed connection's packets only while some NAT chain is hooked in, and on a node whose
    service proxy hooks none, removing ours would cut every connection it steered.
    """
    if not plan.steers and not standing:
        return f"table inet {TABLE}\ndelete table inet {TABLE}\n"  # create-then-delete: no error if absent
    current = {chain_name(steer) for steer in plan.steers}
    gone = [steer for _, steer in sorted({chain_name(s): s for s in stale if chain_name(s) not in current}.items())]
    skeleton = [f"table inet {TABLE} {{", *_dispatch_maps({"ip": [], "ip6": []}),
                f"  chain prerouting {{ {PREROUTING} }}", f"  chain postrouting {{ {POSTROUTING} }}",
                *(line for steer in (*plan.steers, *gone) for line in _objects(steer)), "}"]
    emptying = [f"flush table inet {TABLE}",  # every chain's rules; then every map's and set's elements
                f"flush map inet {TABLE} dispatch_ip", f"flush map inet {TABLE} dispatch_ip6",
                *(line for steer in plan.steers for line in _emptying(steer)),
                *(line for steer in gone for line in _removal(steer))]
    return "\n".join(skeleton + emptying + _filled(plan)) + "\n"


def _filled(plan: SteeringPlan) -> list[str]:
    """PLAN's rules and elements, into the table's emptied objects."""
    dispatch: dict[str, list[str]] = {"ip": [], "ip6": []}
    chains: list[str] = []
    for steer in plan.steers:
        dispatch[_proto(steer.vip)].append(
            f"{steer.vip} . {steer.protocol.lower()} . {steer.port} : goto {chain_name(steer)}")
        chains += _steer_chain(steer)
    return [
        f"table inet {TABLE} {{",
        *_dispatch_maps(dispatch),
        "  chain prerouting {",
        f"    {PREROUTING}",
        "    meta nfproto ipv4 ip daddr . meta l4proto . th dport vmap @dispatch_ip",
        "    meta nfproto ipv6 ip6 daddr . meta l4proto . th dport vmap @dispatch_ip6",
        "  }",
        "  chain postrouting {",
        f"    {POSTROUTING}",
        f"    ct mark & {MARK:#010x} == {MARK:#010x} ct direction original masquerade",
        "  }",
        *chains,
        "}",
    ]
