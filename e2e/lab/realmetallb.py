"""MetalLB on the real-node lab (`up --kubelet`), installed as a user would: MetalLB's own manifest
(`config/manifests/metallb-native.yaml` of the pinned module, unchanged: its controller Deployment, its speaker
DaemonSet with memberlist, L2 mode) applied with kubectl, after IronLB's release is uninstalled.

Its images are built without Docker like IronLB's (`e2e.lab.image`): each a from-scratch image holding the binary
`tools/metallb/build.sh` built from the pin, named as the manifest names it, so the manifest applies as shipped.
The archives are cached outside the repo, keyed by the build's own key (the pin and the Go toolchain).

The lab's API server runs on the host, which has no route to the pod CIDRs: it cannot call MetalLB's validating
webhook, so the install deletes the ValidatingWebhookConfiguration, as MetalLB's troubleshooting guide does when
the webhook is unreachable. The controller still runs its webhook server; nothing calls it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from e2e.lab import image, metallb, reallab, realnode, tools
from e2e.lab.config import KUBECONFIG, REPO
from e2e.lab.state import load_state, update_state

NAMESPACE = metallb.NAMESPACE
WEBHOOK_CONFIGURATION = "metallb-webhook-configuration"
PROGRAMS = ("speaker", "controller")
ROLLOUT_TIMEOUT_S = 240


def module_dir() -> Path:
    """The pinned MetalLB module's source, as the Go module cache holds it."""
    out = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "go.universe.tf/metallb"], check=True,
                         capture_output=True, text=True, cwd=REPO / "tools" / "metallb" / "module").stdout
    return Path(out.strip())


def manifest() -> Path:
    """MetalLB's own install manifest for L2 (native) mode."""
    return module_dir() / "config" / "manifests" / "metallb-native.yaml"


def image_name(program: str) -> str:
    """The image the manifest runs PROGRAM from."""
    return f"quay.io/metallb/{program}:{metallb.version()}"


def archive(program: str) -> Path:
    """Where PROGRAM's image archive is cached: under the key of the binaries it holds."""
    return image.CACHE / metallb.bin_dir().parent.name / f"{program}.oci.tar"


def build(program: str) -> Path:
    """A from-scratch image with PROGRAM as its entrypoint, as upstream's images run it; cached."""
    out = archive(program)
    if out.exists():
        return out
    ctr = image.buildah("from", "scratch").stdout.strip()
    try:
        image.buildah("copy", ctr, str(metallb.bin_dir() / program), f"/{program}")
        image.buildah("config", "--entrypoint", f'["/{program}"]', ctr)
        image.buildah("commit", "--quiet", ctr, image_name(program))
    finally:
        image.buildah("rm", ctr)
    image.push(image_name(program), out)
    return out


def import_images() -> list[Path]:
    """Build MetalLB's images if missing and import them into every live node's containerd."""
    archives = [build(p) for p in PROGRAMS]
    for node in load_state().live_nodes:
        for path in archives:
            image.import_into(realnode.containerd_socket(node), path)
    return archives


def _kubectl(bin_dir: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return tools.kubectl(*args, check=check, timeout=timeout, bins=bin_dir)


def uninstall_ironlb(bin_dir: Path) -> None:
    """`helm uninstall` IronLB's release and wait until its pods are gone."""
    subprocess.run([str(bin_dir / "helm"), f"--kubeconfig={KUBECONFIG}", "uninstall", reallab.RELEASE,
                    "-n", reallab.NAMESPACE, "--wait", "--timeout", "180s", "--ignore-not-found"],
                   check=True, capture_output=True, text=True, timeout=240)
    update_state(ironlb=False)


def install(bin_dir: Path) -> None:
    """IronLB's release out, MetalLB's manifest in; return when its controller and every speaker are ready."""
    uninstall_ironlb(bin_dir)
    import_images()
    _kubectl(bin_dir, "apply", "-f", str(manifest()), timeout=180)
    _kubectl(bin_dir, "delete", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "--ignore-not-found")
    for workload in ("deployment/controller", "daemonset/speaker"):
        _kubectl(bin_dir, "rollout", "status", workload, "-n", NAMESPACE, f"--timeout={ROLLOUT_TIMEOUT_S}s",
                 timeout=ROLLOUT_TIMEOUT_S + 30)
    update_state(metallb=True)


def uninstall(bin_dir: Path) -> None:
    """Delete what MetalLB's manifest made (its namespace, CRDs and cluster roles with it)."""
    _kubectl(bin_dir, "delete", "-f", str(manifest()), "--ignore-not-found", "--timeout=180s", timeout=240)
    update_state(metallb=False)


def back_to_ironlb(bin_dir: Path) -> None:
    """MetalLB deleted if installed, and IronLB's release installed as `up --kubelet` does if it is not."""
    if load_state().metallb:
        uninstall(bin_dir)
    if not load_state().ironlb:
        reallab.helm_install(bin_dir)
        update_state(ironlb=True)


def pool(name: str, addresses: list[str]) -> list[dict[str, Any]]:
    """A metallb.io IPAddressPool NAME (assigned only on request) and an L2Advertisement of it, MetalLB's
    defaults otherwise."""
    meta = {"name": name, "namespace": NAMESPACE}
    return [{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": meta,
             "spec": {"addresses": addresses, "autoAssign": False}},
            {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement", "metadata": dict(meta),
             "spec": {"ipAddressPools": [name]}}]


def announcing_node(bin_dir: Path, service: str, namespace: str = "default") -> str | None:
    """The node MetalLB's ServiceL2Status names for SERVICE, if exactly one does."""
    out = _kubectl(bin_dir, "get", "servicel2statuses.metallb.io", "-n", NAMESPACE, "-o", "json").stdout
    nodes = {item.get("status", {}).get("node") for item in json.loads(out)["items"]
             if item.get("status", {}).get("serviceName") == service
             and item.get("status", {}).get("serviceNamespace") == namespace}
    return nodes.pop() if len(nodes) == 1 else None
