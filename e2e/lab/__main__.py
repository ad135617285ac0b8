"""`python -m e2e.lab`: up | down | status | exec | kubectl | helm | workload | node | restart | ironlb | metallb."""

from __future__ import annotations

import argparse
import json
import os
import sys

from e2e.lab import image, ironlb_procs, lab, metallb, reallab, workload
from e2e.lab.bgp import Bfd
from e2e.lab.state import LabState, StateFileError, Status, load_state
from e2e.lab.tools import bin_dir

# Commands whose arguments are handed on untouched (no lab flags among them).
PASS_THROUGH = ("exec", "kubectl", "helm")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m e2e.lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the lab and return when ready")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--ipv6", action="store_true", help="dual-stack lab")
    up.add_argument("--without-ironlb", action="store_true", help="do not start the operator and speakers")
    up.add_argument("--kubelet", action="store_true",
                    help="real nodes: containerd, runc and a kubelet per node; IronLB installed by helm")
    up.add_argument("--conformance", action="store_true",
                    help="with --kubelet: cluster DNS (CoreDNS), the upstream e2e images and the e2e client "
                         "(docs/conformance.md)")
    up.add_argument("--bgp", action="store_true",
                    help="add the router (FRR, ASN 64512), bgpclient behind it and an FRR per node (docs/lab.md)")
    up.add_argument("--bfd-interval", type=int, default=300, help="the router's BFD intervals, ms (with --bgp)")
    up.add_argument("--bfd-multiplier", type=int, default=3, help="the router's BFD detection multiplier (with --bgp)")
    sub.add_parser("image", help="build the lab's images (IronLB from the Dockerfile, pause) if out of date")
    sub.add_parser("down", help="stop every lab process and remove every lab namespace")
    sub.add_parser("status", help="print what runs")
    # Listed for --help only: main() hands their arguments on untouched, before parsing.
    sub.add_parser("exec", help="run a command in a lab namespace: exec NAME [--] CMD...", add_help=False)
    for tool in PASS_THROUGH[1:]:
        sub.add_parser(tool, help=f"run the lab's {tool} ARGS...", add_help=False)
    wl = sub.add_parser("workload", help="deploy or delete HTTP pods")
    wsub = wl.add_subparsers(dest="action", required=True)
    dep = wsub.add_parser("deploy")
    dep.add_argument("name")
    dep.add_argument("--replicas", type=int, default=2)
    dep.add_argument("--nodes", default="", help="comma list (default: all nodes)")
    dep.add_argument("--port", type=int, default=8080)
    dep.add_argument("--namespace", default="default")
    dele = wsub.add_parser("delete")
    dele.add_argument("name")
    for action in ("stop-pod", "start-pod"):
        sp = wsub.add_parser(action, help="stop a pod's process and report it not ready (or back)")
        sp.add_argument("pod")
    nd = sub.add_parser("node", help="kill or revive a node")
    nd.add_argument("action", choices=["kill", "revive"])
    nd.add_argument("node")
    rs = sub.add_parser("restart", help="restart operator | restart speaker NODE")
    rs.add_argument("component", choices=["operator", "speaker"])
    rs.add_argument("node", nargs="?")
    il = sub.add_parser("ironlb", help="start or stop the operator and speakers")
    il.add_argument("action", choices=["start", "stop"])
    ml = sub.add_parser("metallb", help="start or stop MetalLB's controller and speakers (IronLB stopped first)")
    ml.add_argument("action", choices=["start", "stop"])
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one lab command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASS_THROUGH:
        return _pass_through(argv[0], argv[1:])
    args = _parser().parse_args(argv)  # an unknown flag is an error, not silently ignored
    if os.geteuid() != 0 and args.cmd != "status":
        print("the lab creates network namespaces: run it as root", file=sys.stderr)
        return 2
    try:
        return _command(args)
    except StateFileError as exc:
        print(exc, file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    """Run one parsed lab command."""
    if args.cmd == "up":
        state = lab.up(args.nodes, args.ipv6, not args.without_ironlb, kubelet=args.kubelet, with_bgp=args.bgp,
                       bfd=Bfd(args.bfd_interval, args.bfd_multiplier), conformance=args.conformance)
        print(f"lab ready in {state.up_seconds} s: {args.nodes} nodes, ipv6={args.ipv6}, "
              f"kubelet={args.kubelet}, bgp={args.bgp}, ironlb={'running' if state.ironlb else 'not started'}")
        print(f"export KUBECONFIG={lab.KUBECONFIG}")
        return 0
    if args.cmd == "image":
        took = lab.build_images()
        print(json.dumps({"built": took, "archives": [str(a) for a in image.archives()]}))
        return 0
    if args.cmd == "down":
        lab.down()
        print("lab down")
        return 0
    if args.cmd == "status":
        report = lab.status()
        print(json.dumps(report, indent=2))
        return 0 if report["status"] == Status.READY else 1
    if args.cmd == "workload":
        return _workload(args)
    if args.cmd == "node":
        (lab.kill_node if args.action == "kill" else lab.revive_node)(args.node)
        return 0
    if args.cmd in ("restart", "ironlb", "metallb") and load_state().kubelet:
        # On real nodes IronLB is the chart's pods: starting host processes would bypass them.
        print(f"{args.cmd}: IronLB runs as pods on real nodes; use `kubectl -n ironlb-system rollout restart` "
              "or `helm install/uninstall`", file=sys.stderr)
        return 2
    if args.cmd == "restart":
        print(ironlb_procs.restart(args.component, args.node))
        return 0
    if args.cmd in ("ironlb", "metallb"):
        return _implementation(args.cmd, args.action)
    return 2


def _implementation(which: str, action: str) -> int:
    """ironlb|metallb start|stop; starting one while the other runs is refused."""
    start, stop = ((ironlb_procs.start_ironlb, ironlb_procs.stop_ironlb) if which == "ironlb"
                   else (metallb.start, metallb.stop))
    try:
        (start if action == "start" else stop)()
    except RuntimeError as exc:
        print(f"{which} {action}: {exc}", file=sys.stderr)
        return 2
    print(f"{which} {'running' if action == 'start' else 'stopped'}")
    return 0


def _pass_through(cmd: str, rest: list[str]) -> int:
    """exec NAME [--] CMD..., kubectl ARGS..., helm ARGS...: arguments go on exactly as given."""
    if cmd != "exec":
        return lab.tool(cmd, rest)
    if not rest or rest[0].startswith("-"):
        print("usage: python -m e2e.lab exec NAME [--] CMD...", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("the lab creates network namespaces: run it as root", file=sys.stderr)
        return 2
    name, cmd_argv = rest[0], rest[1:]
    if cmd_argv[:1] == ["--"]:
        cmd_argv = cmd_argv[1:]
    return lab.exec_in(name, cmd_argv)


def _workload(args: argparse.Namespace) -> int:
    state = load_state()
    if state.kubelet:
        return _real_workload(args, state)
    if args.action == "deploy":
        nodes = [n for n in args.nodes.split(",") if n] or state.node_names
        pods = workload.deploy(args.name, args.replicas, nodes, args.port, args.namespace, state.ipv6)
        print(" ".join(pods))
    elif args.action == "delete":
        print(" ".join(workload.delete(args.name)))
    else:
        workload.set_ready(args.pod, args.action == "start-pod")
    return 0


def _real_workload(args: argparse.Namespace, state: LabState) -> int:
    """workload deploy/delete as real Deployments (`up --kubelet`)."""
    bins = bin_dir()
    if args.action == "deploy":
        nodes = [n for n in args.nodes.split(",") if n] or state.node_names
        print(" ".join(reallab.deploy(bins, args.name, args.replicas, nodes, args.port, args.namespace)))
    elif args.action == "delete":
        print(" ".join(reallab.delete(bins, args.name)))
    else:
        print("stop-pod/start-pod act on lightweight pods; on real nodes use kubectl", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
