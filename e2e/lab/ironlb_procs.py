"""IronLB in the lightweight lab: the operator on the host and a speaker in each node namespace, started
from the working tree (with the lab's own credentials or given ones), restarted and stopped."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from e2e.lab import bgp, metallb, procs
from e2e.lab.config import KUBECONFIG, REPO, node_named
from e2e.lab.state import load_state, update_state
from e2e.lab.tools import kubectl
from e2e.probes import nodeagent
from ironlb.operator.heartbeat_secret import new_key
from ironlb.speaker.bgp.drain import DrainSettings

# What a BGP-mode speaker's SIGTERM takes beyond its drain's bound and settle time: its vty batches (graceful
# shutdown, withdraw, close) and its exit.
SPEAKER_STOP_MARGIN_S = 5.0


def ironlb_available(component: str = "operator") -> bool:
    """True once a component's entry point (ironlb.operator / ironlb.speaker) exists in the tree."""
    return importlib.util.find_spec(f"ironlb.{component}.__main__") is not None


def ironlb_env() -> dict[str, str]:
    """Environment for IronLB processes started from the working tree."""
    return {"PYTHONPATH": str(REPO / "src"), "KUBECONFIG": str(KUBECONFIG), "PYTHONUNBUFFERED": "1"}


def start_operator() -> int:
    """Start the operator on the host, beside the API server (short Lease: the lab tests failover)."""
    # Supervised like a Deployment's pod: an operator that loses its Lease exits and is restarted.
    return procs.spawn("operator", [sys.executable, "-m", "e2e.probes.supervise", "--", sys.executable, "-m",
                                    "ironlb.operator", "--identity", "lab-operator"],
                       env={**ironlb_env(), "IRONLB_LEASE_DURATION": "6", "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
                            # It manages the lab's heartbeat Secret as the chart's operator does (rotations);
                            # the window is short because the lab's speakers see a change within milliseconds.
                            "IRONLB_HEARTBEAT_SECRET": "ironlb-heartbeat", "IRONLB_HEARTBEAT_ROTATION_WINDOW": "3"})


# The lab's speakers serve plain metrics on every address of their node, as an explicit opt-in: the lab's tools
# read them on the node's loopback and `ironlb doctor` through the API server's node proxy, which forwards no
# credentials. e2e/test_hostile_metrics.py runs a speaker as the chart does instead.
LAB_METRICS = {"IRONLB_METRICS_HOST": "0.0.0.0", "IRONLB_METRICS_AUTH": "none"}


def speaker_stop_s(env: Mapping[str, str]) -> float | None:
    """The least time SIGTERM must give a speaker started with ENV (over the lab's own environment): in BGP mode
    (told its FRR's DIR) its drain's bound, its settle time and a margin; None otherwise (it stops at once).

    Its node's FRR outlives it: a speaker killed mid-drain leaves FRR announcing, its sessions up."""
    merged = {**os.environ, **env}
    if not merged.get("IRONLB_FRR_SOCKET_DIR"):
        return None
    bound = max(0.0, float(merged.get("IRONLB_BGP_DRAIN_SECONDS") or DrainSettings.bound_s))
    return bound + DrainSettings.settle_s + SPEAKER_STOP_MARGIN_S


def start_speaker(node_name: str, env: dict[str, str] | None = None, bgp_mode: bool | None = None) -> int:
    """Start the speaker inside a node namespace (ENV: extra settings, e.g. IRONLB_REANNOUNCE_INTERVAL); in a
    `--bgp` lab it is told its FRR's DIR, unless BGP_MODE is False (None: as the lab runs)."""
    n = node_named(node_name)
    with_bgp = load_state().bgp if bgp_mode is None else bgp_mode
    frr_flag, frr_env = bgp.speaker_args(n) if with_bgp else ([], {})
    # Its Pod is the one the node's agent keeps (start_node_agent).
    speaker_env = {**ironlb_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}", "POD_NAME": f"speaker-{n.name}",
                   **frr_env, "IRONLB_SPEAKER_SELECTOR": nodeagent.SELECTOR, **LAB_METRICS, **(env or {})}
    return procs.spawn(f"speaker-{n.name}", [sys.executable, "-m", "e2e.probes.supervise", "--", sys.executable,
                                             "-m", "ironlb.speaker", "--node", n.name, "--namespace",
                                             "kube-system", "--exclude-interfaces", "mgmt0", *frr_flag],
                       netns=n.netns, env=speaker_env, stop_s=speaker_stop_s(speaker_env))


def ensure_heartbeat_secret() -> None:
    """The speakers' shared HMAC key, as the Helm chart would generate it."""
    if kubectl("-n", "kube-system", "get", "secret", "ironlb-heartbeat", check=False).returncode == 0:
        return
    kubectl("-n", "kube-system", "create", "secret", "generic", "ironlb-heartbeat", f"--from-literal=key={new_key()}")


def start_ironlb() -> None:
    """Install the CRDs, then start the operator and a speaker on each live node."""
    if metallb.running():
        raise RuntimeError("MetalLB runs in this lab; only one implementation at a time: "
                           "`python -m e2e.lab metallb stop` first")
    kubectl("apply", "--server-side", "-f", str(REPO / "charts" / "ironlb" / "crds"))
    ensure_heartbeat_secret()
    start_operator()
    for n in load_state().live_nodes:
        if ironlb_available("speaker"):
            start_speaker(n.name)
    update_state(ironlb=True)


def start_speaker_as(node_name: str, kubeconfig: Path, namespace: str, secret: str,
                     env: dict[str, str] | None = None) -> int:
    """Start NODE_NAME's speaker with given credentials (e.g. the chart's ServiceAccount) and extra ENV."""
    n = node_named(node_name)
    speaker_env = {"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PYTHONUNBUFFERED": "1", "KUBECONFIG": str(kubeconfig),
                   **LAB_METRICS, **(env or {})}
    return procs.spawn(f"speaker-{n.name}", [sys.executable, "-m", "e2e.probes.supervise", "--", sys.executable, "-m",
                                             "ironlb.speaker", "--node", n.name, "--namespace", namespace,
                                             "--heartbeat-secret", secret, "--exclude-interfaces", "mgmt0"],
                       netns=n.netns, env=speaker_env, stop_s=speaker_stop_s(speaker_env))


def stop_ironlb() -> None:
    """Stop the operator and all speakers (a BGP-mode speaker given its drain); then each lightweight node's FRR,
    which outlives its speaker, holds nothing of IronLB's (what a speaker killed anyway left is removed, and said)."""
    procs.stop_all("operator")
    procs.stop_all("speaker-")
    for n in load_state().all_nodes:
        if bgp.node_frr_running(n):
            for line in bgp.clear_node_frr(n):
                print(f"{n.name}'s FRR still held, removed: {line}", file=sys.stderr)
    update_state(ironlb=False)


def restart(component: str, node_name: str | None = None, env: dict[str, str] | None = None) -> int:
    """Restart the operator, or the speaker of one node (with extra ENV settings, if given)."""
    if component == "operator":
        procs.stop("operator")
        return start_operator()
    if component == "speaker" and node_name:
        procs.stop(f"speaker-{node_name}")
        return start_speaker(node_name, env)
    raise ValueError("restart operator | restart speaker NODE")


def start_ironlb_as(operator_kubeconfig: Path, speaker_kubeconfig: Path | dict[str, Path], namespace: str,
                    secret: str, pods: dict[str, str] | None = None) -> None:
    """Run the operator and speakers with given credentials (e.g. the Helm chart's ServiceAccounts); SPEAKER
    may be one kubeconfig for all, or one per node (`speaker_kubeconfigs`); PODS names each node's speaker Pod
    (POD_NAME, where it reports whether it hears peers)."""
    stop_ironlb()
    base = {"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PYTHONUNBUFFERED": "1"}
    procs.spawn("operator", [sys.executable, "-m", "e2e.probes.supervise", "--", sys.executable, "-m",
                             "ironlb.operator", "--identity", "chart-operator", "--lease-namespace", namespace,
                             "--heartbeat-secret", secret, "--owner-deployment", "ironlb-operator"],
                env={**base, "KUBECONFIG": str(operator_kubeconfig), "IRONLB_LEASE_DURATION": "6"})
    for n in load_state().all_nodes:
        start_speaker_as(n.name, speaker_kubeconfig[n.name] if isinstance(speaker_kubeconfig, dict)
                         else speaker_kubeconfig, namespace, secret,
                         {"POD_NAME": pods[n.name]} if pods and n.name in pods else None)
    update_state(ironlb=True)
