"""Plain API objects for `ironlb doctor`'s verdict tests: one healthy chain, and edits that break it."""

from __future__ import annotations

import copy
from typing import Any

VIP = "203.0.113.10"
NODES = ("node-1", "node-2", "node-3")


def node(name: str, ready: bool = True, network_unavailable: bool = False, **labels: str) -> dict[str, Any]:
    """A Node object."""
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      {"type": "NetworkUnavailable",
                                       "status": "True" if network_unavailable else "False"}],
                       "addresses": [{"type": "InternalIP", "address": f"192.0.2.{NODES.index(name) + 11}"}]}}


def metrics(node_name: str, ips: tuple[str, ...] = (VIP,), in_sync: float = 1) -> dict[str, Any]:
    """A speaker's parsed /metrics announcing IPS on eth0."""
    samples = [{"name": "ironlb_speaker_announcing", "labels": {"ip": ip, "interface": "eth0"}, "value": 1.0}
               for ip in ips]
    samples += [{"name": "ironlb_speaker_replies_total", "labels": {"interface": "eth0"}, "value": 7.0},
                {"name": "ironlb_speaker_gratuitous_total", "labels": {"interface": "eth0"}, "value": 3.0},
                {"name": "ironlb_speaker_alive_peers", "labels": {}, "value": 3.0},
                {"name": "ironlb_speaker_nftables_in_sync", "labels": {}, "value": in_sync}]
    return {"families": ["ironlb_speaker_announcing", "ironlb_speaker_replies", "ironlb_speaker_gratuitous",
                         "ironlb_speaker_alive_peers", "ironlb_speaker_nftables_in_sync"], "samples": samples}


def healthy(announcer: str = "node-2") -> dict[str, Any]:
    """Facts of a Service whose whole chain holds, announced by ANNOUNCER."""
    svc = {"metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                        "annotations": {"ironlb.io/allocated-from-pool": "pool-a"}},
           "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "externalTrafficPolicy": "Cluster",
                    "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]},
           "status": {"loadBalancer": {"ingress": [{"ip": VIP, "ipMode": "VIP"}]},
                      "conditions": [{"type": "ironlb.io/Announced", "status": "True", "reason": "Announcing",
                                      "message": f"{VIP} from node {announcer} on interface eth0"}]}}
    return {
        "namespace": "shop", "name": "web", "lbClass": None, "service": svc,
        "pools": [{"metadata": {"name": "pool-a", "labels": {}}, "spec": {"addresses": ["203.0.113.0/24"]}}],
        "advertisements": [{"metadata": {"name": "ad-a"}, "spec": {"ipAddressPools": ["pool-a"]}}],
        "nodes": [node(n) for n in NODES],
        "slices": [{"metadata": {"namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
                    "endpoints": [{"nodeName": n, "conditions": {"ready": True}} for n in NODES]}],
        "events": [{"reason": "IPAllocated", "message": f"Assigned IP {VIP} from pool pool-a",
                    "lastTimestamp": "2026-01-01T00:00:00Z"}],
        "speakers": {n: metrics(n, (VIP,) if n == announcer else ()) for n in NODES},
    }


def edited(*edits: Any, announcer: str = "node-2") -> dict[str, Any]:
    """The healthy facts with EDITS (functions of the facts dict) applied in order."""
    facts = copy.deepcopy(healthy(announcer))
    for edit in edits:
        edit(facts)
    return facts
