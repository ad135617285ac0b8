"""Who the lab's IronLB processes are to the API server: ServiceAccount tokens, bound to Pod objects as a
kubelet's projected tokens are (the API server then names the Pod's node in the token: the speakers' node
identity, which the chart's admission policy reads)."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.lab.config import API_URL, LAB_DIR, PKI_DIR
from e2e.lab.state import load_state
from e2e.lab.tools import kubectl


def token_kubeconfig(service_account: str, namespace: str, path: Path, pod: str | None = None) -> Path:
    """A kubeconfig holding a TokenRequest token of a ServiceAccount (what its pod would get); bound to POD
    when given, as the kubelet's projected token is: the API server then puts the Pod's node in the token."""
    bound = ["--bound-object-kind", "Pod", "--bound-object-name", pod] if pod else []
    token = kubectl("create", "token", service_account, "-n", namespace, "--duration", "2h", *bound).stdout.strip()
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {{server: {API_URL}, certificate-authority: {PKI_DIR / 'ca.crt'}}}
users:
- name: {service_account}
  user: {{token: {token}}}
contexts:
- name: lab
  context: {{cluster: lab, user: {service_account}, namespace: {namespace}}}
current-context: lab
""")
    path.chmod(0o600)
    return path


def speaker_pod(service_account: str, namespace: str, node_name: str) -> str:
    """Create (if absent) the Pod object a DaemonSet would have on NODE_NAME for a speaker run as a process;
    return its name. Nothing runs it: it is what a token is bound to, so the token names the node."""
    name = f"{service_account}-{node_name}"
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                           "labels": {"ironlb.io/lab": "speaker-identity"}},
            "spec": {"nodeName": node_name, "serviceAccountName": service_account, "hostNetwork": True,
                     "automountServiceAccountToken": False, "containers": [{"name": "speaker", "image": "ironlb"}]}}
    kubectl("apply", "-f", "-", input=json.dumps(body))
    return name


def speaker_kubeconfigs(service_account: str, namespace: str) -> dict[str, Path]:
    """Per node: a kubeconfig with a token bound to that node's speaker Pod object (node identity in the token)."""
    out = {}
    for n in load_state().all_nodes:
        pod = speaker_pod(service_account, namespace, n.name)
        out[n.name] = token_kubeconfig(service_account, namespace, LAB_DIR / f"{pod}.kubeconfig", pod=pod)
    return out
