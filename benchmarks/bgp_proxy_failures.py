"""Failure cases of paths announced on other nodes' behalf (`--bgp-proxy-next-hops`), on the lab's router without
BFD: `python -m benchmarks.bgp_proxy_failures`, one JSON line, the router's paths printed on stderr.

- double: two nodes cut at once, one of them the other's only carrier: how long each next hop stays in the
  router's FIB (the one whose carrier died too waits for the hold timer);
- partition: the heartbeats between two nodes dropped (both still reach the router): the router's paths while it
  lasts (a node that both others' views disagree on may lose its share, none is black-holed).

What it leaves out: traffic (the FIB is the judge), more than three nodes, Local Services.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from benchmarks._figures import report
from e2e.lab import bgp, lab, netns, network
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgpproxy
from e2e.testkit.testing import Kube, ensure_lab, wait_for

HEARTBEAT_PORT = 7946
PARTITION_TABLE = "ilb_beatbfd_partition"
WATCH_S = 15.0


def double_kill(prefix: str, nodes: list[NodeAddr]) -> dict[str, float | None]:
    """Cut the first two nodes' links together, then kill their processes; each one's seconds in the FIB after
    the cut (cut one after the other, the second one's speaker would replace its path before its own cut)."""
    dead = nodes[:2]
    cuts = {n.ipv4: network.cut_node(n) for n in dead}
    for n in dead:
        lab.kill_node(n.name)
    gone: dict[str, float | None] = dict.fromkeys(cuts)
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline and None in gone.values():
        hops = bgp.router_next_hops(prefix)
        for address in gone:
            if gone[address] is None and address not in hops:
                gone[address] = round(time.monotonic() - cuts[address], 3)
        time.sleep(0.005)
    print(f"double: dropped after {gone}; paths then {bgpproxy.router_paths(prefix)}", file=sys.stderr)
    for n in dead:
        lab.revive_node(n.name)
        bgpproxy.restart_speaker(n.name, bgpproxy.PROXY_ENV)
    wait_for(lambda: bgpproxy.proxied_everywhere(load_state().live_nodes, prefix), timeout=60,
             what="both back, every node carried")
    return {n.name: gone[n.ipv4] for n in dead}


def partition(prefix: str, nodes: list[NodeAddr], seconds: float = 6.0) -> dict[str, Any]:
    """Drop the heartbeats between the first two nodes for SECONDS: the router's next hops and paths meanwhile."""
    a, b = nodes[:2]
    rule = (f"add table inet {PARTITION_TABLE}\n"
            f"add chain inet {PARTITION_TABLE} out {{ type filter hook output priority 0; }}\n"
            f"add chain inet {PARTITION_TABLE} in {{ type filter hook input priority 0; }}\n"
            f"add rule inet {PARTITION_TABLE} out ip daddr {b.ipv4} udp dport {HEARTBEAT_PORT} drop\n"
            f"add rule inet {PARTITION_TABLE} in ip saddr {b.ipv4} udp dport {HEARTBEAT_PORT} drop\n")
    seen: dict[tuple[str, ...], int] = {}
    netns.run_in(a.netns, ["nft", "-f", "-"], input=rule)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            hops = tuple(sorted(hop for _, hop in bgpproxy.router_paths(prefix)))
            seen[hops] = seen.get(hops, 0) + 1
            time.sleep(0.1)
        paths = bgpproxy.router_paths(prefix)
        fib = sorted(bgp.router_next_hops(prefix))
    finally:
        netns.run_in(a.netns, ["nft", "delete", "table", "inet", PARTITION_TABLE], check=False)
    print(f"partition {a.name} <-> {b.name}: the router's paths' next hops (samples) {seen}; at the end paths "
          f"{paths}, FIB {fib}", file=sys.stderr)
    wait_for(lambda: bgpproxy.proxied_everywhere(nodes, prefix), timeout=60, what="healed, every node carried")
    return {"fib_at_end": fib, "paths_at_end": paths, "next_hops_sampled": {",".join(k): v for k, v in seen.items()}}


def main() -> None:
    """Both cases on one proxied Service; the JSON line."""
    started = time.monotonic()
    kube: Kube = ensure_lab(nodes=3, ipv6=False)[0]
    attached = lab.attach_bgp()
    try:
        nodes = load_state().live_nodes
        with bgpproxy.proxied_service(kube) as prefix:
            figures = {"double_kill_s": double_kill(prefix, nodes), "partition": partition(prefix, nodes)}
    finally:
        if attached:
            lab.detach_bgp()
            for n in load_state().live_nodes:
                bgpproxy.restart_speaker(n.name, None)
    report({**figures, "wall_s": round(time.monotonic() - started, 1)})


if __name__ == "__main__":
    main()
