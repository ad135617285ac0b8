"""`ironlb`: what IronLB is doing, at a glance (pools, Services, announcing nodes), and its CRDs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ironlb import __doc__ as about


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _announced(svc: Any) -> str:
    for cond in (svc.status.conditions or []) if svc.status else []:
        if cond.type == "ironlb.io/Announced":
            return cond.message if cond.status == "True" else f"NOT ANNOUNCED: {cond.message}"
    return "-"


def status(args: argparse.Namespace) -> int:
    """Print pools with their usage, and every LoadBalancer Service with its IP, pool and announcer."""
    from kubernetes import client

    from ironlb.api.constants import GROUP, IPADDRESSPOOLS, VERSION
    from ironlb.common.kube import api_client

    api = api_client()
    pools = client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, IPADDRESSPOOLS)["items"]
    services = client.CoreV1Api(api).list_service_for_all_namespaces().items
    print(render_status(pools, services, args.lb_class))
    return 0


def render_status(pools: list[dict[str, Any]], services: list[Any], lb_class: str | None) -> str:
    """The two tables of `ironlb status`: pools, then the LoadBalancer Services IronLB serves."""
    rows = [["POOL", "ADDRESSES", "ASSIGNED v4/v6", "AVAILABLE v4/v6", "PROBLEMS"]]
    for p in pools:
        st = p.get("status") or {}
        problems = [f"{c['type']}: {c['message']}" for c in st.get("conditions") or [] if c.get("status") == "True"]
        rows.append([p["metadata"]["name"], ",".join(p["spec"].get("addresses", [])),
                     f"{st.get('assignedIPv4', '?')}/{st.get('assignedIPv6', '?')}",
                     f"{st.get('availableIPv4', '?')}/{st.get('availableIPv6', '?')}", "; ".join(problems) or "-"])
    out = [_table(rows) if pools else "no IPAddressPools: create one so Services can get an external IP", ""]
    rows = [["SERVICE", "EXTERNAL-IP", "POOL", "ANNOUNCED"]]
    for svc in services:
        if svc.spec.type != "LoadBalancer" or (svc.spec.load_balancer_class or None) != (lb_class or None):
            continue
        ingress = (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []
        # Another implementation may write hostname-only entries: show them, never crash on them.
        shown = [i.ip or i.hostname for i in ingress if i.ip or i.hostname]
        pool = (svc.metadata.annotations or {}).get("ironlb.io/allocated-from-pool", "-")
        rows.append([f"{svc.metadata.namespace}/{svc.metadata.name}", ",".join(shown) or "<pending>",
                     pool, _announced(svc)])
    out.append(_table(rows) if len(rows) > 1 else "no LoadBalancer Services")
    return "\n".join(out)


def crds(_: argparse.Namespace) -> int:
    """Print the CustomResourceDefinitions as YAML (for `kubectl apply -f -`)."""
    from ironlb.api.crds import crd_manifests, render

    print("---\n".join(render(m) for m in crd_manifests()), end="")
    return 0


def values_doc(args: argparse.Namespace) -> int:
    """Regenerate the README's Helm values reference from values.schema.json."""
    from pathlib import Path

    from ironlb.cli.valuesdoc import update_readme

    changed = update_readme(Path(args.readme), Path(args.chart))
    print("README values reference " + ("updated" if changed else "already up to date"))
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ironlb`."""
    parser = argparse.ArgumentParser(prog="ironlb", description=about)
    sub = parser.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("status", help="pools, Services, their IPs and announcing nodes")
    st.add_argument("--lb-class", default=None, help="the loadBalancerClass IronLB serves (default: none)")
    st.set_defaults(fn=status)
    sub.add_parser("crds", help="print the CRDs as YAML").set_defaults(fn=crds)
    vd = sub.add_parser("values-doc", help="regenerate the README's Helm values reference")
    vd.add_argument("--readme", default="README.md")
    vd.add_argument("--chart", default="charts/ironlb")
    vd.set_defaults(fn=values_doc)
    args = parser.parse_args(argv)
    sys.exit(args.fn(args))
