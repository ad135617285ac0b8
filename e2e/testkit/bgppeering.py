"""BGPPeer settings against the lab's router (e2e/test_bgp_peering.py): the router's side of a TCP MD5 password and
of an eBGP multihop session, what the router learnt and from which session, and a look at the speakers' logs.

The router's own config (e2e.lab.bgp) is as it was after each block: its listen range over the node segment takes
every node's session again, so other tests find it unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e.lab import bgp, frr, netns
from e2e.lab.config import LOG_DIR, NodeAddr
from ironlb.core.bgp.model import Peer
from ironlb.speaker.bgp.readback import read_desired

GROUP = "ironlb.io/v1beta1"
# The router's loopback, off the node segment (docs/lab.md, "Address plan"): a multihop peer's address.
ROUTER_LOOPBACK = "198.18.37.1"
GROUP_NAME = "PEERING"  # the router's peer group of named neighbours (router_neighbors)
SECRET_NAMESPACE = "kube-system"  # IronLB's namespace in the lab: its speakers read their password Secrets there
ROUTER_BGP = f"router bgp {bgp.ROUTER_ASN}"


def peer(name: str, address: str = bgp.ROUTER_IP_V4, **spec: Any) -> dict[str, Any]:
    """A BGPPeer NAME towards the router at ADDRESS (the lab's ASNs, a 1 s connect timer), SPEC on top."""
    base = {"myASN": bgp.NODE_ASN, "peerASN": bgp.ROUTER_ASN, "peerAddress": address, "connectTime": "1s"}
    return {"apiVersion": GROUP, "kind": "BGPPeer", "metadata": {"name": name}, "spec": base | spec}


def password_secret(name: str, password: str) -> dict[str, Any]:
    """A BGPPeer's passwordSecret: kubernetes.io/basic-auth with the key `password`, in IronLB's namespace."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": SECRET_NAMESPACE},
            "type": "kubernetes.io/basic-auth", "stringData": {"password": password}}


@contextmanager
def router_neighbors(nodes: list[NodeAddr], *settings: str) -> Iterator[None]:
    """The router's own neighbour for each of NODES (its IPv4 address), in place of the listen range for them: in
    peer group GROUP_NAME with SETTINGS (e.g. `password P`), passive (the node dials, as with the listen range).

    Named neighbours rather than the listen range's peer group: a password on a peer group leaves a key for each
    dynamic neighbour it ever held on the router's listening socket, as FRR's pull request 20740 (after 8.4)
    describes, and a later session without a password from that address would be dropped; a named neighbour's
    key goes with it."""
    group = f"neighbor {GROUP_NAME}"
    frr.configure(bgp.ROUTER_DIR, [
        ROUTER_BGP, f"{group} peer-group", f"{group} remote-as {bgp.NODE_ASN}", f"{group} passive",
        *(f"{group} {setting}" for setting in settings),
        *(f"neighbor {n.ipv4} peer-group {GROUP_NAME}" for n in nodes)])
    try:
        yield
    finally:
        frr.configure(bgp.ROUTER_DIR, [ROUTER_BGP, *(f"no neighbor {n.ipv4}" for n in nodes),
                                       f"no {group} peer-group"])


@contextmanager
def router_password(nodes: list[NodeAddr], password: str) -> Iterator[None]:
    """The router asks NODES' sessions for PASSWORD (TCP MD5)."""
    with router_neighbors(nodes, f"password {password}"):
        yield


@contextmanager
def multihop_router(nodes: list[NodeAddr]) -> Iterator[str]:
    """The router peers with NODES from ROUTER_LOOPBACK, which each node reaches through the router's address on
    the segment (eBGP multihop on the router's side). Yields the address the nodes' BGPPeer names."""
    netns.ip("addr", "add", f"{ROUTER_LOOPBACK}/32", "dev", "lo", netns=bgp.ROUTER_NS)
    for n in nodes:
        netns.ip("route", "replace", f"{ROUTER_LOOPBACK}/32", "via", bgp.ROUTER_IP_V4, netns=n.netns)
    try:
        with router_neighbors(nodes, "ebgp-multihop 2", f"update-source {ROUTER_LOOPBACK}"):
            yield ROUTER_LOOPBACK
    finally:
        for n in nodes:
            netns.ip("route", "del", f"{ROUTER_LOOPBACK}/32", netns=n.netns, check=False)
        netns.ip("addr", "del", f"{ROUTER_LOOPBACK}/32", "dev", "lo", netns=bgp.ROUTER_NS, check=False)


def path_peers(prefix: str) -> set[str]:
    """The neighbours the router holds a path to PREFIX from (its BGP table, best or not)."""
    family = "ipv6" if ":" in prefix else "ipv4"
    out = frr.vtysh(bgp.ROUTER_DIR, f"show bgp {family} unicast {prefix} json", check=False).stdout
    paths = json.loads(out).get("paths", []) if out.strip().startswith("{") else []
    return {str((p.get("peer") or {}).get("peerId", "")) for p in paths}


def node_peers(node: NodeAddr) -> dict[str, Peer]:
    """The peers NODE's FRR holds, read back from its running config as a restarted speaker reads them."""
    return dict(read_desired(frr.vtysh(bgp.node_socket_dir(node), "show running-config").stdout).peers)


def link_local(node: NodeAddr) -> str:
    """NODE's link-local address on the segment (the next hop of the IPv6 routes it announces to the router)."""
    out = netns.ip("-6", "-o", "addr", "show", "dev", "eth0", "scope", "link", netns=node.netns).stdout
    found = re.search(r"inet6 (fe80::[0-9a-f:]+)/", out)
    assert found, f"{node.name} has no link-local address on eth0: {out!r}"
    return found.group(1)


def md5_failures() -> int:
    """Segments the router's kernel dropped for a bad or missing TCP MD5 signature (TcpExt TCPMD5Failure)."""
    lines = netns.run_in(bgp.ROUTER_NS, ["cat", "/proc/net/netstat"]).stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True)).get("TCPMD5Failure", 0))
    return 0


def speaker_log(node_name: str) -> Path:
    """The lab's log of NODE_NAME's speaker (its supervisor's lines too)."""
    return LOG_DIR / f"speaker-{node_name}.log"


class SpeakerLogs:
    """What the speakers log from now on: a traceback, or a restart by the lab's supervisor, is a crash."""

    def __init__(self, nodes: list[NodeAddr]) -> None:
        self.start = {name: path.stat().st_size if path.exists() else 0
                      for name, path in ((n.name, speaker_log(n.name)) for n in nodes)}

    def crashes(self) -> list[str]:
        """Each new log line that shows a crash, prefixed by its node."""
        found = []
        for name, offset in self.start.items():
            with open(speaker_log(name), "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
            found += [f"{name}: {line}" for line in text.splitlines()
                      if line.startswith("Traceback") or line.startswith("supervise:")]
        return found
