"""The lab's router (`up --bgp`): FRR in `ilb-router` on the node segment, `ilb-bgpclient` behind it, and in
lightweight mode one FRR per node for its speaker (e2e.lab.frr, the FRR contract).

The router accepts a session from any address of the node segment (`bgp listen range`, ASN 64513 by default),
installs ECMP routes in its own kernel FIB and runs BFD towards the nodes. `bgpclient` sits on a subnet of its
own whose only way out is the router, so what it reaches, it reaches through routes the nodes announced. The
nodes route that subnet back via the router, as a data center's nodes would route everything via theirs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.lab import frr, netns, network
from e2e.lab.config import LAB_DIR, NODE_SUBNET_V4, NODE_SUBNET_V6, NS_PREFIX, NodeAddr
from ironlb.speaker.bgp.render import ROUTE_MAP_DELAY

ROUTER_NS = f"{NS_PREFIX}router"
BGPCLIENT_NS = f"{NS_PREFIX}bgpclient"
ROUTER_ASN = 64512
NODE_ASN = 64513
# The router on the node segment (nodes are .11 and up, the L2 client .100).
ROUTER_IP_V4 = "192.0.2.254"
ROUTER_IP_V6 = "2001:db8::fe"
# bgpclient's own subnet, routed only through the router (docs/lab.md, "Address plan").
BGPCLIENT_SUBNET_V4 = "198.18.36.0/24"
BGPCLIENT_GATEWAY_V4 = "198.18.36.1"
BGPCLIENT_IP_V4 = "198.18.36.2"
BGPCLIENT_SUBNET_V6 = "2001:db8:c1::/64"
BGPCLIENT_GATEWAY_V6 = "2001:db8:c1::1"
BGPCLIENT_IP_V6 = "2001:db8:c1::2"
FRR_DIR = LAB_DIR / "frr"
ROUTER_DIR = FRR_DIR / "router"
PEER_GROUP = "NODES"
BFD_PROFILE = "nodes"
MAXIMUM_PATHS = 16


@dataclass(frozen=True)
class Bfd:
    """The router's BFD towards the nodes: intervals (both ways) and detection multiplier."""

    interval_ms: int = 300
    multiplier: int = 3

    def profile_lines(self) -> list[str]:
        """The profile's settings, as FRR's config and vtysh take them."""
        return [f"detect-multiplier {self.multiplier}", f"receive-interval {self.interval_ms}",
                f"transmit-interval {self.interval_ms}"]


DEFAULT_BFD = Bfd()


def router_config(ipv6: bool, bfd: Bfd) -> str:
    """The router's FRR config: dynamic neighbours from the node segment, ECMP, BFD.

    Each daemon reads the whole file and skips the others' lines, so it has no `exit` lines: one after a
    block a daemon skipped would take that daemon out of configuration mode."""
    ranges = [NODE_SUBNET_V4, *([NODE_SUBNET_V6] if ipv6 else [])]
    lines = ["frr defaults datacenter", "hostname router", "!", "bfd", f" profile {BFD_PROFILE}",
             *(f"  {line}" for line in bfd.profile_lines()), "!",
             f"router bgp {ROUTER_ASN}", f" bgp router-id {ROUTER_IP_V4}", " no bgp ebgp-requires-policy",
             f" neighbor {PEER_GROUP} peer-group", f" neighbor {PEER_GROUP} remote-as {NODE_ASN}",
             f" neighbor {PEER_GROUP} bfd profile {BFD_PROFILE}",
             *(f" bgp listen range {r} peer-group {PEER_GROUP}" for r in ranges),
             " address-family ipv4 unicast", f"  maximum-paths {MAXIMUM_PATHS}", " exit-address-family"]
    if ipv6:
        lines += [" address-family ipv6 unicast", f"  neighbor {PEER_GROUP} activate",
                  f"  maximum-paths {MAXIMUM_PATHS}", " exit-address-family"]
    return "\n".join([*lines, "!", ""])


def node_socket_dir(node: NodeAddr) -> Path:
    """DIR of a lightweight node's FRR (the speaker's --frr-socket-dir)."""
    return FRR_DIR / node.name


def create_router(ipv6: bool) -> None:
    """The router's namespace: eth0 on the node segment, bgpc0 towards bgpclient, forwarding on."""
    netns.add_netns(ROUTER_NS)
    network.attach(ROUTER_NS, "vrouter", ROUTER_IP_V4, ROUTER_IP_V6 if ipv6 else None)
    netns.sysctl(ROUTER_NS, "net.ipv4.ip_forward", "1")
    # ECMP by the 5-tuple, as a data center's routers hash (Linux's default hashes addresses only: one client's
    # flows to one VIP would all take one next hop).
    netns.sysctl(ROUTER_NS, "net.ipv4.fib_multipath_hash_policy", "1")
    if ipv6:
        netns.sysctl(ROUTER_NS, "net.ipv6.conf.all.forwarding", "1")


def create_bgpclient(ipv6: bool) -> None:
    """bgpclient behind the router on its own subnet; its default route is the router."""
    netns.add_netns(BGPCLIENT_NS)
    netns.veth("eth0", BGPCLIENT_NS, "bgpc0", ROUTER_NS)
    for ns, dev, v4, v6 in ((ROUTER_NS, "bgpc0", BGPCLIENT_GATEWAY_V4, BGPCLIENT_GATEWAY_V6),
                            (BGPCLIENT_NS, "eth0", BGPCLIENT_IP_V4, BGPCLIENT_IP_V6)):
        netns.ip("addr", "add", f"{v4}/24", "dev", dev, netns=ns)
        if ipv6:
            netns.ip("addr", "add", f"{v6}/64", "dev", dev, "nodad", netns=ns)
        netns.ip("link", "set", dev, "up", netns=ns)
    netns.ip("route", "add", "default", "via", BGPCLIENT_GATEWAY_V4, netns=BGPCLIENT_NS)
    if ipv6:
        netns.ip("-6", "route", "add", "default", "via", BGPCLIENT_GATEWAY_V6, netns=BGPCLIENT_NS)


def add_node_routes(node: NodeAddr, ipv6: bool) -> None:
    """Route bgpclient's subnet via the router in NODE (a downed link drops it: re-added on revive)."""
    netns.ip("route", "replace", BGPCLIENT_SUBNET_V4, "via", ROUTER_IP_V4, netns=node.netns)
    if ipv6:
        netns.ip("-6", "route", "replace", BGPCLIENT_SUBNET_V6, "via", ROUTER_IP_V6, netns=node.netns)


def remove_node_routes(node: NodeAddr) -> None:
    """Undo add_node_routes, and forget the router's MAC: a router attached again has a new one, and a node that
    still holds the old one as reachable would send its BGP packets nowhere until the entry ages out."""
    netns.ip("route", "del", BGPCLIENT_SUBNET_V4, netns=node.netns, check=False)
    netns.ip("-6", "route", "del", BGPCLIENT_SUBNET_V6, netns=node.netns, check=False)
    netns.ip("neigh", "flush", "to", ROUTER_IP_V4, netns=node.netns, check=False)
    netns.ip("-6", "neigh", "flush", "to", ROUTER_IP_V6, netns=node.netns, check=False)


def start_router(ipv6: bool, bfd: Bfd) -> None:
    """The router's zebra, bgpd and bfdd with the lab's config."""
    frr.start("router", ROUTER_NS, ROUTER_DIR, router_config(ipv6, bfd))


def set_bfd(bfd: Bfd) -> None:
    """Change the router's BFD profile live (the sessions keep running)."""
    frr.configure(ROUTER_DIR, ["bfd", f"profile {BFD_PROFILE}", *bfd.profile_lines()])


def start_node_frr(node: NodeAddr) -> Path:
    """A lightweight node's FRR, with an empty config (its speaker owns it); returns its DIR."""
    frr.start(node.name, node.netns, node_socket_dir(node))
    return node_socket_dir(node)


def kill_node_frr(node: NodeAddr) -> None:
    """SIGKILL a node's FRR, as the node dies (no NOTIFICATION, no BFD down message)."""
    frr.stop(node.name, sig=9)


def attach(nodes: list[NodeAddr], ipv6: bool, lightweight: bool, bfd: Bfd = DEFAULT_BFD) -> None:
    """Add the router, bgpclient and (lightweight) the nodes' FRR to a lab whose nodes exist."""
    create_router(ipv6)
    create_bgpclient(ipv6)
    start_router(ipv6, bfd)
    for n in nodes:
        add_node_routes(n, ipv6)
        if lightweight:
            start_node_frr(n)


def detach(nodes: list[NodeAddr]) -> None:
    """Remove everything attach made: the FRR processes by PID, the namespaces, the nodes' routes, FRR_DIR."""
    for n in nodes:
        frr.stop(n.name)
        remove_node_routes(n)
    frr.stop("router")
    for ns in (BGPCLIENT_NS, ROUTER_NS):  # the router's port on the node segment goes with its namespace
        netns.delete_netns(ns)
    shutil.rmtree(FRR_DIR, ignore_errors=True)


def node_frr_running(node: NodeAddr) -> bool:
    """True if the lab runs NODE's own FRR (a lightweight `--bgp` lab)."""
    return frr.running(node.name)


def clear_node_frr(node: NodeAddr) -> list[str]:
    """Remove what IronLB's speaker left in NODE's FRR (nothing, once it drained and closed); return what was there."""
    found, commands = ironlb_leftovers(frr.vtysh(node_socket_dir(node), "show running-config").stdout)
    if commands:
        frr.configure(node_socket_dir(node), commands)
    return found


IRONLB_OBJECT = re.compile(r"^(route-map|ip prefix-list|ipv6 prefix-list) (ILB-\S+)")


def ironlb_leftovers(config: str) -> tuple[list[str], list[str]]:
    """In a node FRR's running CONFIG, what IronLB's speaker configures (its `router bgp`s, `ILB-` route-maps and
    prefix-lists, BFD profiles, bgpd's route-map delay timer: the lab's node FRR is the speaker's alone): the lines
    that show each object, and the commands (after `configure terminal`) that remove them, routers before the
    policies they name."""
    routers, objects, profiles, globals_ = [], {}, [], []
    in_bfd = False
    for line in config.splitlines():
        if not line.startswith(" "):
            in_bfd = line == "bfd"
        if line.startswith("router bgp "):
            routers.append(line)
        elif line.startswith(ROUTE_MAP_DELAY):  # MetalLB's FRR, started next, must not inherit it
            globals_.append(line)
        elif m := IRONLB_OBJECT.match(line):
            objects.setdefault((m.group(1), m.group(2)), line)
        elif in_bfd and line.startswith(" profile "):
            profiles.append(line.strip())
    commands = [f"no {r}" for r in routers] + [f"no {kind} {name}" for kind, name in objects]
    commands += [f"no {ROUTE_MAP_DELAY}" for _ in globals_]
    if profiles:
        commands += ["bfd", *(f"no {p}" for p in profiles), "exit"]
    return routers + list(objects.values()) + globals_ + profiles, commands


def speaker_args(node: NodeAddr) -> tuple[list[str], dict[str, str]]:
    """The flag and environment that tell NODE's speaker its FRR's DIR; the flag only if the speaker knows it
    (the environment variable means the same, and an older speaker ignores it)."""
    socket_dir = str(node_socket_dir(node))
    flag = ["--frr-socket-dir", socket_dir] if speaker_knows_frr_flag() else []
    return flag, {"IRONLB_FRR_SOCKET_DIR": socket_dir}


@functools.cache
def speaker_knows_frr_flag() -> bool:
    """True if the tree's speaker accepts --frr-socket-dir."""
    from ironlb.speaker.main import parse_args

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parse_args(["--node", "probe", "--frr-socket-dir", "/nonexistent"])
    except SystemExit:
        return False
    return True


def namespaces() -> dict[str, str]:
    """`exec` targets this module adds: name -> network namespace."""
    return {"router": ROUTER_NS, "bgpclient": BGPCLIENT_NS}



# MetalLB's BGP mode in this lab (`metallb start` on a `--bgp` lab): its native speaker on every node peers with
# the router, its hold time at its 3 s minimum (it has no BFD), and announces a pool of its own.
METALLB_POOL = "198.51.100.240/28"
METALLB_HOLD_TIME = "3s"


def metallb_manifests() -> list[dict[str, Any]]:
    """MetalLB's BGPPeer towards the router, its pool and its BGPAdvertisement (metallb.io)."""
    ns = {"namespace": "metallb-system"}
    return [
        {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "lab-router", **ns},
         "spec": {"myASN": NODE_ASN, "peerASN": ROUTER_ASN, "peerAddress": ROUTER_IP_V4,
                  "holdTime": METALLB_HOLD_TIME}},  # native mode refuses keepaliveTime: hold / 3
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "lab-bgp", **ns},
         "spec": {"addresses": [METALLB_POOL]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "lab-bgp", **ns},
         "spec": {"ipAddressPools": ["lab-bgp"]}},
    ]


def router_sessions() -> dict[str, str]:
    """The router's BGP neighbours (IPv4 and IPv6 sessions): address -> state (Established, Active, ...)."""
    sessions: dict[str, str] = {}
    for family in ("ipv4", "ipv6"):
        out = frr.vtysh(ROUTER_DIR, f"show bgp {family} unicast summary json", check=False).stdout
        peers = (json.loads(out or "{}").get("peers") or {}) if out.strip().startswith("{") else {}
        sessions.update({addr: peer.get("state", "") for addr, peer in peers.items()})
    return sessions


def router_bfd_peers() -> dict[str, dict[str, Any]]:
    """The router's BFD sessions: peer address -> FRR's record (status, intervals, multipliers)."""
    out = frr.vtysh(ROUTER_DIR, "show bfd peers json", check=False).stdout
    return {peer["peer"]: peer for peer in (json.loads(out) if out.strip().startswith("[") else [])}


VIA = re.compile(r"\bvia (?:inet6 )?([0-9a-fA-F:.]+)")


def router_next_hops(prefix: str) -> set[str]:
    """The gateways of PREFIX in the router's kernel FIB (empty when it has no route)."""
    family = "-6" if ":" in prefix else "-4"
    out = netns.ip(family, "route", "show", prefix, netns=ROUTER_NS, check=False).stdout
    return set(VIA.findall(out))


def router_fib() -> dict[str, set[str]]:
    """The router's IPv4 kernel FIB in one read: destination (a host route without its /32) -> its gateways."""
    routes: dict[str, set[str]] = {}
    destination = ""
    for line in netns.ip("-4", "route", "show", netns=ROUTER_NS, check=False).stdout.splitlines():
        if not line[:1].isspace():  # an ECMP route's next hops follow on indented lines
            destination = line.split()[0]
        routes.setdefault(destination, set()).update(VIA.findall(line))
    return routes
