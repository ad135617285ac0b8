"""`python -m e2e.lab`: up | down | status | exec | kubectl | helm | workload | node | restart | ironlb."""

from __future__ import annotations

import argparse
import json
import os
import sys

from e2e.lab import lab, workload


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m e2e.lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the lab and return when ready")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--ipv6", action="store_true", help="dual-stack lab")
    up.add_argument("--without-ironlb", action="store_true", help="do not start the operator and speakers")
    sub.add_parser("down", help="stop every lab process and remove every lab namespace")
    sub.add_parser("status", help="print what runs")
    ex = sub.add_parser("exec", help="run a command in a lab namespace: exec NAME -- CMD...")
    ex.add_argument("name")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    for tool in ("kubectl", "helm"):
        t = sub.add_parser(tool, help=f"run the lab's {tool}", add_help=False)
        t.add_argument("argv", nargs=argparse.REMAINDER)
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
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one lab command."""
    args, extra = _parser().parse_known_args(argv)
    if os.geteuid() != 0 and args.cmd not in ("status", "kubectl", "helm"):
        print("the lab creates network namespaces: run it as root", file=sys.stderr)
        return 2
    if args.cmd == "up":
        state = lab.up(args.nodes, args.ipv6, not args.without_ironlb)
        print(f"lab ready in {state['up_seconds']} s: {args.nodes} nodes, ipv6={args.ipv6}, "
              f"ironlb={'running' if state.get('ironlb') else 'not started'}")
        print(f"export KUBECONFIG={lab.KUBECONFIG}")
        return 0
    if args.cmd == "down":
        lab.down()
        print("lab down")
        return 0
    if args.cmd == "status":
        print(json.dumps(lab.status(), indent=2))
        return 0 if lab.status()["status"] == "ready" else 1
    if args.cmd == "exec":
        argv_ = [a for a in args.argv if a != "--"][:1] and args.argv[args.argv.index("--") + 1:] \
            if "--" in args.argv else args.argv
        return lab.exec_in(args.name, [*argv_, *extra])
    if args.cmd in ("kubectl", "helm"):
        return lab.tool(args.cmd, [*args.argv, *extra])
    if args.cmd == "workload":
        return _workload(args)
    if args.cmd == "node":
        (lab.kill_node if args.action == "kill" else lab.revive_node)(args.node)
        return 0
    if args.cmd == "restart":
        print(lab.restart(args.component, args.node))
        return 0
    if args.cmd == "ironlb":
        (lab.start_ironlb if args.action == "start" else lab.stop_ironlb)()
        return 0
    return 2


def _workload(args: argparse.Namespace) -> int:
    state = lab.procs.load_state()
    if args.action == "deploy":
        nodes = [n for n in args.nodes.split(",") if n] or [f"node-{i}" for i in range(1, state["nodes"] + 1)]
        pods = workload.deploy(args.name, args.replicas, nodes, args.port, args.namespace, state.get("ipv6", False))
        print(" ".join(pods))
    elif args.action == "delete":
        print(" ".join(workload.delete(args.name)))
    else:
        workload.set_ready(args.pod, args.action == "start-pod")
    return 0


if __name__ == "__main__":
    sys.exit(main())
