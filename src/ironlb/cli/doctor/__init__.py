"""`ironlb doctor`: why a LoadBalancer Service does (or does not) answer, one link of the chain at a time."""

from __future__ import annotations

import argparse
import sys

from ironlb.cli.doctor.model import EXIT_CODES_HELP, EXIT_ERROR

EXAMPLES = """walks the chain in order and stops at the first broken link, with the fix:
  1 type and class   2 allocation   3 L2Advertisement   4 eligible nodes
  5 announcing node (and whether its speaker is alive)   6 speaker's table and answers
  7 ready endpoints  8 forwarding on the node
Read-only: it uses your kubeconfig, reads speakers' /metrics through the API server proxy (never
SSH) with a short-lived token of the chart's <release>-doctor ServiceAccount (one TokenRequest per
run: you need create on serviceaccounts/token for it), and says what it could not check.

examples:
  {prog} doctor web                   # Service web in the current context's namespace
  {prog} doctor -n shop web -v        # every link's details, not just the broken one's
  {prog} doctor web -o json | jq .failedLink

""" + EXIT_CODES_HELP


def add_parser(sub: argparse._SubParsersAction, prog: str) -> None:  # type: ignore[type-arg]
    """Register `doctor` on the `ironlb` command."""
    p = sub.add_parser("doctor", help="why a LoadBalancer Service does or does not answer, link by link",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EXAMPLES.format(prog=prog))
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("-n", "--namespace", help="the Service's namespace (default: the kubeconfig context's, "
                   "else default)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument("-v", "--verbose", action="store_true", help="show every link's details")
    p.add_argument("--lb-class", default=None, help="the loadBalancerClass IronLB serves (default: none)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument("--metrics-port", type=int, default=7473, help="the speakers' metrics port")
    p.set_defaults(fn=run)


def _namespace(args: argparse.Namespace) -> str:
    """-n, else the kubeconfig context's namespace (kubectl's rule), else default."""
    if args.namespace:
        return str(args.namespace)
    from ironlb.common.kubeapi import ConfigError, context_namespace

    try:
        return context_namespace(args.kubeconfig, args.context) or "default"
    except ConfigError:  # in-cluster or no kubeconfig: kubectl's default too
        return "default"


def run(args: argparse.Namespace) -> int:
    """Read the facts, print the verdict; the exit code names the first broken link."""
    from ironlb.cli.doctor import render
    from ironlb.cli.doctor.chain import diagnose
    from ironlb.cli.doctor.gather import gather
    from ironlb.common.kubeapi import ApiError, ConfigError, connect

    try:
        with connect(args.kubeconfig, args.context) as kube:
            facts = gather(kube, _namespace(args), args.service, args.lb_class, args.metrics_port)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ApiError, OSError) as exc:
        reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiError) else type(exc).__name__
        print(f"error: cannot read the cluster through the API server: {reason}", file=sys.stderr)
        return EXIT_ERROR
    report = diagnose(facts)
    print(render.as_json(report) if args.output == "json" else render.human(report, args.verbose))
    return report.exit_code
