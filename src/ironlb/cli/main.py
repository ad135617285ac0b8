"""`ironlb`: what IronLB is doing, at a glance (pools, Services, announcing nodes), and its CRDs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ironlb import __doc__ as about
from ironlb.api import conditions
from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.reasons import ConditionType
from ironlb.api.service import Handling, handling
from ironlb.cli import doctor
from ironlb.core.text import printable


def _table(rows: list[list[str]]) -> str:
    rows = [[printable(c) for c in r] for r in rows]  # annotations and messages are user text: no escape sequences
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _announced(svc: dict[str, Any]) -> str:
    cond = conditions.find(svc.get("status"), ConditionType.SERVICE_ANNOUNCED)
    if cond is None:
        return "-"
    message = cond.get("message", "")
    return message if cond.get("status") == conditions.status_word(True) else f"NOT ANNOUNCED: {message}"


def status(args: argparse.Namespace) -> int:
    """Print pools with their usage, and every LoadBalancer Service with its IP, pool and announcer."""
    from ironlb.common import kubeapi

    with kubeapi.connect() as kube:
        pools = kube.list(kubeapi.IP_ADDRESS_POOLS)["items"]
        services = kube.list(kubeapi.SERVICES)["items"]
    print(render_status(pools, services, args.lb_class))
    return 0


def render_status(pools: list[dict[str, Any]], services: list[dict[str, Any]], lb_class: str | None) -> str:
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
        spec, meta = svc.get("spec") or {}, svc["metadata"]
        if handling({"type": spec.get("type"), "loadBalancerClass": spec.get("loadBalancerClass") or None},
                    lb_class or None) is not Handling.HANDLED:
            continue
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        # Another implementation may write hostname-only entries: show them, never crash on them.
        shown = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        pool = (meta.get("annotations") or {}).get(ALLOCATED_FROM_POOL, "-")
        rows.append([f"{meta.get('namespace')}/{meta['name']}", ",".join(shown) or "<pending>", pool, _announced(svc)])
    out.append(_table(rows) if len(rows) > 1 else "no LoadBalancer Services")
    return "\n".join(out)


def _kube() -> Any:
    """A client from the user's kubeconfig (or in-cluster credentials)."""
    from ironlb.common import kubeapi

    return kubeapi.connect()


def migrate_metallb(args: argparse.Namespace) -> int:
    """Print (or apply) the IronLB objects equivalent to MetalLB's; name everything not carried."""
    import yaml

    from ironlb.cli import migrate

    docs, names = [], []
    try:
        for f in args.filename or ():
            for i, doc in enumerate(yaml.safe_load_all(sys.stdin if f == "-" else open(f)), 1):  # noqa: SIM115
                docs.append(doc)
                names.append(f"{'stdin' if f == '-' else f} document {i}")
        if not args.filename:
            docs = migrate.from_cluster(_kube())
        result = migrate.migrate(docs, names)
    except (OSError, yaml.YAMLError, migrate.MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if not args.apply:
        print(yaml.safe_dump_all(result.objects, sort_keys=False), end="")
        return 0
    for line in migrate.apply(_kube(), result.objects):
        print(f"applied {line}")
    return 0


def crds(_: argparse.Namespace) -> int:
    """Print the CustomResourceDefinitions as YAML (for `kubectl apply -f -`)."""
    from ironlb.api.crds import crd_manifests, render

    print("---\n".join(render(m) for m in crd_manifests()), end="")
    return 0


def values_doc(args: argparse.Namespace) -> int:
    """Regenerate the Helm values reference in docs/operations.md from values.schema.json."""
    from pathlib import Path

    from ironlb.cli.valuesdoc import update_doc

    changed = update_doc(Path(args.doc), Path(args.chart))
    print(f"{args.doc}: values reference " + ("updated" if changed else "already up to date"))
    return 0


def release_finalizers(args: argparse.Namespace) -> int:
    """Take the cleanup finalizer off every Service IronLB owns (stopping the operator first, if named)."""
    import logging

    from ironlb.cli import finalizers

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    operator = None
    if args.stop_operator:
        namespace, _, name = args.stop_operator.partition("/")
        operator = (namespace, name)
    from ironlb.common.kubeapi import ApiError, ConfigError

    try:
        with _kube() as kube:
            result = finalizers.release(kube, args.lb_class or None, args.timeout, operator)
    except (ApiError, ConfigError, OSError) as exc:  # listing, or stopping the operator, failed: nothing is sure
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(finalizers.summary(result))
    return 0 if result.complete else 1


MIGRATE_EXAMPLES = """examples:
  ironlb migrate metallb                      # read the cluster's MetalLB objects, print IronLB's
  ironlb migrate metallb -f metallb.yaml      # the same from a file
  ironlb migrate metallb --apply              # apply them (notes on what is not carried go to stderr)
"""


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ironlb`."""
    # Run as a kubectl plugin (kubectl-ironlb), help and errors name the command as the user typed it.
    prog = "kubectl ironlb" if os.path.basename(sys.argv[0]).startswith("kubectl-") else "ironlb"
    parser = argparse.ArgumentParser(prog=prog, description=about)
    sub = parser.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("status", help="pools, Services, their IPs and announcing nodes")
    st.add_argument("--lb-class", default=None, help="the loadBalancerClass IronLB serves (default: none)")
    st.set_defaults(fn=status)
    doctor.add_parser(sub, prog)
    mig = sub.add_parser("migrate", help="convert another implementation's configuration",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=MIGRATE_EXAMPLES)
    mig_sub = mig.add_subparsers(dest="source", required=True)
    ml = mig_sub.add_parser("metallb", help="MetalLB's metallb.io/v1beta1 IPAddressPools and L2Advertisements",
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=MIGRATE_EXAMPLES)
    ml.add_argument("-f", "--filename", action="append", help="read MetalLB objects from this YAML file (- for "
                    "stdin; repeatable) instead of the cluster")
    ml.add_argument("--apply", action="store_true", help="server-side apply the result instead of printing it")
    ml.set_defaults(fn=migrate_metallb)
    sub.add_parser("crds", help="print the CRDs as YAML").set_defaults(fn=crds)
    vd = sub.add_parser("values-doc", help="regenerate the Helm values reference in docs/operations.md")
    vd.add_argument("--doc", default="docs/operations.md", help="the Markdown file holding the reference")
    vd.add_argument("--chart", default="charts/ironlb")
    vd.set_defaults(fn=values_doc)
    rf = sub.add_parser("release-finalizers", help="take the cleanup finalizer off the Services IronLB owns (for an "
                        "uninstall, or an operator down for long)")
    rf.add_argument("--lb-class", default=None, help="the loadBalancerClass IronLB serves (default: none)")
    rf.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole run (default: 120)")
    rf.add_argument("--stop-operator", metavar="NAMESPACE/DEPLOYMENT", default=None,
                    help="scale this operator Deployment to zero first, and wait for its pods to go")
    rf.set_defaults(fn=release_finalizers)
    args = parser.parse_args(argv)
    sys.exit(args.fn(args))
