"""A ForwardingPlan as one nftables script (pure text): table `inet ironlb`, replaced atomically.

Why the rewrite is stateless and before conntrack: prerouting NAT happens once per connection, so a
DNAT of our own to this node's NodePort would keep kube-proxy's NodePort DNAT from running. Instead
the VIP:port of a new or ongoing flow is rewritten to node:nodePort before conntrack sees it (raw
priority); conntrack and kube-proxy then treat it as ordinary NodePort traffic, on this node or,
masqueraded, on another. Replies get VIP:port back after NAT (postrouting, priority 300). A
connection mark keeps the reply rewrite to our own flows, never to direct NodePort clients.
The bucket of a flow is a hash of the client address (and port, unless ClientIP affinity), so
every packet of a flow takes the same bucket without state.
"""

from __future__ import annotations

import hashlib

from ironlb.core.addresses import IPV4, IPV6, family_of
from ironlb.speaker.control.forward.plan import BUCKETS, Forward, ForwardingPlan

TABLE = "ironlb"
MARK = 0x00100000  # one bit of the packet and connection marks; kube-proxy uses 0x4000 and 0x8000
HASH_SEED = 0x1B1  # the same on every node, so a new announcer hashes flows the same way

_FAMILY = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
_VERSION = {IPV4: 4, IPV6: 6}  # nftables spells families by number (ipv4, dispatch4, ...)


def _version(ip: str) -> int:
    return _VERSION[family_of(ip)]


def chain_name(fwd: Forward) -> str:
    """A short stable chain name for one forward."""
    digest = hashlib.sha256(f"{fwd.vip}|{fwd.protocol}|{fwd.port}".encode()).hexdigest()[:12]
    return f"fwd_{digest}"


def _source_filter(fwd: Forward, proto: str) -> list[str]:
    """loadBalancerSourceRanges, before the rewrite: kube-proxy leaves ipMode Proxy VIPs alone, so only
    this table can keep clients outside the ranges from the Service (they get nothing: a drop)."""
    if fwd.sources is None:
        return []
    if not fwd.sources:
        return ["    drop"]
    return [f"    {proto} saddr != {{ {', '.join(fwd.sources)} }} drop"]


def _forward_chain(fwd: Forward) -> list[str]:
    proto, l4 = _FAMILY[_version(fwd.vip)][0], fwd.protocol.lower()
    key = f"{proto} saddr" if fwd.client_ip_affinity else f"{proto} saddr . {l4} sport"
    table = ", ".join(f"{i} : {addr}" for i, addr in enumerate(fwd.buckets))
    return [
        f"  chain {chain_name(fwd)} {{",
        f"    # {fwd.service}: {fwd.vip} {fwd.port}/{fwd.protocol} -> NodePort {fwd.node_port}",
        *_source_filter(fwd, proto),
        f"    meta mark set meta mark | {MARK:#010x}",
        f"    {proto} daddr set jhash {key} mod {BUCKETS} seed {HASH_SEED:#x} map {{ {table} }}",
        f"    {l4} dport set {fwd.node_port}",
        "  }",
    ]


def _elements(items: list[str]) -> str:
    return f"    elements = {{ {', '.join(items)} }}" if items else ""


def _map(name: str, type_: str, items: list[str]) -> list[str]:
    return [f"  map {name} {{", f"    type {type_}", *([_elements(items)] if items else []), "  }"]


def render(plan: ForwardingPlan) -> str:
    """The whole table for PLAN (or only its removal when nothing is forwarded)."""
    head = [f"table inet {TABLE}", f"delete table inet {TABLE}"]  # create-then-delete: no error if absent
    if not plan.forwards:
        return "\n".join(head) + "\n"
    dispatch: dict[int, list[str]] = {4: [], 6: []}
    reply_vip: dict[int, set[str]] = {4: set(), 6: set()}
    reply_port: set[str] = set()
    chains: list[str] = []
    for fwd in plan.forwards:
        family, l4 = _version(fwd.vip), fwd.protocol.lower()
        dispatch[family].append(f"{fwd.vip} . {l4} . {fwd.port} : jump {chain_name(fwd)}")
        reply_vip[family].add(f"{l4} . {fwd.node_port} : {fwd.vip}")
        reply_port.add(f"{l4} . {fwd.node_port} : {fwd.port}")
        chains += _forward_chain(fwd)
    local = {v: [a for a in plan.local_addresses if _version(a) == v] for v in _FAMILY}
    body = [f"table inet {TABLE} {{"]
    for family, (_, addr_type) in _FAMILY.items():
        body += _map(f"dispatch{family}", f"{addr_type} . inet_proto . inet_service : verdict", dispatch[family])
        body += _map(f"reply_vip{family}", f"inet_proto . inet_service : {addr_type}", sorted(reply_vip[family]))
    body += _map("reply_port", "inet_proto . inet_service : inet_service", sorted(reply_port))
    body += [
        "  chain prerouting {",
        "    type filter hook prerouting priority raw - 10; policy accept;",
        "    meta nfproto ipv4 ip daddr . meta l4proto . th dport vmap @dispatch4",
        "    meta nfproto ipv6 ip6 daddr . meta l4proto . th dport vmap @dispatch6",
        "  }",
        "  chain conntrack_mark {",
        "    type filter hook prerouting priority mangle; policy accept;",
        f"    meta mark & {MARK:#010x} == {MARK:#010x} ct mark set ct mark | {MARK:#010x}",
        "  }",
        "  chain forward_snat {",
        "    type nat hook postrouting priority srcnat - 10; policy accept;",
        # Flows sent to another node's NodePort must come back through us: masquerade them. Flows to
        # our own NodePort keep the client address (kube-proxy masquerades what it must itself).
        *[f"    ct mark & {MARK:#010x} == {MARK:#010x} ct direction original "
          f"ct original {proto} daddr != {{ {', '.join(local[family])} }} masquerade"
          if local[family] else
          f"    ct mark & {MARK:#010x} == {MARK:#010x} ct direction original meta nfproto ipv{family} masquerade"
          for family, (proto, _) in _FAMILY.items()],
        "  }",
        "  chain reply_rewrite {",
        "    type filter hook postrouting priority 300; policy accept;",
        f"    ct mark & {MARK:#010x} != {MARK:#010x} return",
        "    ct direction original return",
        "    meta nfproto ipv4 ip saddr set meta l4proto . th sport map @reply_vip4",
        "    meta nfproto ipv6 ip6 saddr set meta l4proto . th sport map @reply_vip6",
        "    meta l4proto tcp tcp sport set meta l4proto . th sport map @reply_port",
        "    meta l4proto udp udp sport set meta l4proto . th sport map @reply_port",
        "  }",
        *chains,
        "}",
    ]
    return "\n".join(head + body) + "\n"
