"""A SteeringPlan as one nftables script (pure text): table `inet ironlb_steer`, replaced atomically.

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

from ironlb.core.addresses import IPV4, family_of
from ironlb.speaker.control.steer.plan import Steer, SteeringPlan

TABLE = "ironlb_steer"
MARK = 0x00200000  # a connection-mark bit of its own: NodePort forwarding uses 0x00100000, kube-proxy 0x4000/0x8000
HASH_SEED = 0x1B2  # ClientIP affinity: the same client goes to the same endpoint on every node


def _proto(ip: str) -> str:
    return "ip" if family_of(ip) == IPV4 else "ip6"


def chain_name(steer: Steer) -> str:
    """A short stable chain name for one steered VIP:port."""
    digest = hashlib.sha256(f"{steer.vip}|{steer.protocol}|{steer.port}".encode()).hexdigest()[:12]
    return f"steer_{digest}"


def _target(address: str, port: int) -> str:
    return f"{address} . {port}"


def _steer_chain(steer: Steer) -> list[str]:
    proto, l4 = _proto(steer.vip), steer.protocol.lower()
    pick = f"jhash {proto} saddr mod {len(steer.targets)} seed {HASH_SEED:#x}" if steer.client_ip_affinity \
        else f"numgen random mod {len(steer.targets)}"
    table = ", ".join(f"{i} : {_target(a, p)}" for i, (a, p) in enumerate(steer.targets))
    sources = [] if steer.sources is None else (
        ["    return"] if not steer.sources else [f"    {proto} saddr != {{ {', '.join(steer.sources)} }} return"])
    return [
        f"  chain {chain_name(steer)} {{",
        f"    # {steer.service}: {steer.vip} {steer.port}/{steer.protocol}, live endpoints only",
        *sources,
        f"    ct mark set ct mark | {MARK:#010x}",
        f"    meta l4proto {l4} dnat {proto} to {pick} map {{ {table} }}",
        "  }",
    ]


def render(plan: SteeringPlan, standing: bool = False) -> str:
    """The whole table for PLAN; when nothing is steered, only its removal unless it is STANDING.

    Once a table has steered, it stays (with nothing in its maps) until the speaker stops: the kernel
    translates a NATed connection's packets only while some NAT chain is hooked in, and on a node whose
    service proxy hooks none, removing ours would cut every connection it steered.
    """
    head = [f"table inet {TABLE}", f"delete table inet {TABLE}"]  # create-then-delete: no error if absent
    if not plan.steers and not standing:
        return "\n".join(head) + "\n"
    dispatch: dict[str, list[str]] = {"ip": [], "ip6": []}
    chains: list[str] = []
    for steer in plan.steers:
        dispatch[_proto(steer.vip)].append(
            f"{steer.vip} . {steer.protocol.lower()} . {steer.port} : goto {chain_name(steer)}")
        chains += _steer_chain(steer)
    body = [f"table inet {TABLE} {{"]
    for proto, addr_type in (("ip", "ipv4_addr"), ("ip6", "ipv6_addr")):
        body += [f"  map dispatch_{proto} {{", f"    type {addr_type} . inet_proto . inet_service : verdict",
                 *([f"    elements = {{ {', '.join(dispatch[proto])} }}"] if dispatch[proto] else []), "  }"]
    body += [
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat - 5; policy accept;",
        "    meta nfproto ipv4 ip daddr . meta l4proto . th dport vmap @dispatch_ip",
        "    meta nfproto ipv6 ip6 daddr . meta l4proto . th dport vmap @dispatch_ip6",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat - 5; policy accept;",
        f"    ct mark & {MARK:#010x} == {MARK:#010x} ct direction original masquerade",
        "  }",
        *chains,
        "}",
    ]
    return "\n".join(head + body) + "\n"
