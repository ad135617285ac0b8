"""benchmarks.bgp's drain part: what a client behind the router loses while nodes drain, and how evenly ECMP spreads.

IronLB's speakers in BGP mode on the lab's 3 nodes announce a Local Service with one pod per node (so a flow's
answer names the node that carried it). bgpclient runs e2e.probes.flowprobe: 128 flows (fixed source ports) and
200 probes a second in all, each probe one short TCP connection (connect, GET, whole answer within 1 s, reset).

- `ecmp_share_min`: the smallest share of the 128 flows that any node carried (a flow's first answer), steady state;
- `drain_lost_probes`: probes with no whole answer over three runs, one per way a node goes: its speaker's SIGTERM
  (the speaker drains, stops, and is started again, as a rolling update does), `kubectl cordon` then uncordon, and
  `kubectl drain` (cordon, then the pod evicted: it serves 2 s while terminating, then stops). Each run lasts until
  the router's FIB is back to what the step leaves plus a margin; the per-run counts and times are reported too.

What it leaves out: long-lived connections (each probe is a new connection: a flow that ECMP moves to another node
is not a connection broken), IPv6, and any router but FRR. A probe split by a rehash (its SYN to one node, its
request to another) is counted lost: that is what a client would see.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._figures import report
from e2e.lab.config import NodeAddr
from e2e.testkit import bgpdrain as d
from e2e.testkit.testing import Kube, ensure_lab

STEADY_S = 4.0
MARGIN_S = 3.0  # probing goes on this long after the router's FIB is back, to catch late losses


def drain_figures(kube: Kube) -> dict[str, Any]:
    """The drain part's figures (the lab's router attached if it is not; IronLB's speakers restarted in BGP mode)."""
    with d.bgp_lab(kube, d.bgp_manifests(d.PEER, "drain", d.POOL, d.ADDRESSES)) as nodes, \
            d.served_by_every_node(kube, nodes) as ip:
        with d.probing(ip, STEADY_S) as steady:
            pass
        assert steady.result is not None
        shares = steady.result.share_by_node(d.pod_nodes())
        runs = {
            "sigterm": _run(ip, lambda: d.restart_speaker(nodes[0]), lambda: d.wait_for_next_hops(ip, nodes)),
            "cordon": _run(ip, lambda: _cordon_and_back(kube, ip, nodes, nodes[1]), lambda: None),
            "kubectl_drain": _run(ip, lambda: d.kubectl_drain(kube, nodes[2]),
                                  lambda: d.wait_for_next_hops(ip, nodes[:2])),
        }
        d.cordon(kube, nodes[2], on=False)
    return {"ecmp_share_min": round(min(shares.values()), 3), "ecmp_shares": shares,
            "ecmp_steady_lost_probes": len(steady.result.lost),
            "drain_lost_probes": sum(r["lost"] for r in runs.values()), "drain_runs": runs,
            "drain_flows": d.FLOWS, "drain_rate_hz": d.RATE_HZ}


def _cordon_and_back(kube: Kube, ip: str, nodes: list[NodeAddr], node: NodeAddr) -> None:
    d.cordon(kube, node)
    d.wait_for_next_hops(ip, [n for n in nodes if n != node])
    d.cordon(kube, node, on=False)
    d.wait_for_next_hops(ip, nodes)


def _run(ip: str, step: Callable[[], None], settled: Callable[[], None], bound_s: float = 60.0) -> dict[str, Any]:
    """Probe while STEP runs and until SETTLED returns, plus MARGIN_S; the client's tally. Bounded: the probe
    stops after BOUND_S whatever happens."""
    started = time.monotonic()
    with d.probing(ip, bound_s) as run:
        time.sleep(1.0)
        step()
        settled()
        took = time.monotonic() - started
        time.sleep(MARGIN_S)
        run.stop()
    probed = run.result
    assert probed is not None
    failures: dict[str, int] = {}
    for lost in probed.lost:
        failures[lost["failure"]] = failures.get(lost["failure"], 0) + 1
    print(f"drain: {probed.answered}/{probed.sent} answered, settled after {took:.1f} s, lost {probed.lost}",
          file=sys.stderr)
    return {"lost": len(probed.lost), "sent": probed.sent, "settled_s": round(took, 2), "failures": failures}



def main() -> None:
    """This part alone (`python -m benchmarks._bgp_drain`), one JSON line."""
    started = time.monotonic()
    kube, _ = ensure_lab(nodes=3, ipv6=True)
    figures = drain_figures(kube)
    report({**figures, "wall_s": round(time.monotonic() - started, 1)})


if __name__ == "__main__":
    main()
