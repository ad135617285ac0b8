"""The lab's certificates and kubeconfigs, made with openssl (a CA, serving and client certs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from e2e.lab.config import API_URL, HOST_IP_V4, PKI_DIR

# Client identities: file stem -> (common name, organisation). The CNs are the ones Kubernetes'
# default RBAC already binds (system:kube-proxy, system:kube-controller-manager).
CLIENTS = {
    "admin": ("lab-admin", "system:masters"),
    "kube-proxy": ("system:kube-proxy", ""),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
}
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
APISERVER_SANS = [
    f"IP:{HOST_IP_V4}", "IP:127.0.0.1", "IP:198.18.0.1", "IP:2001:db8:5::1",
    "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def _sign(stem: str, subject: str, ext: str) -> None:
    """Issue PKI_DIR/STEM.crt for PKI_DIR/STEM.key, signed by the lab CA with extensions `ext`."""
    key, csr, crt, extfile = (PKI_DIR / f"{stem}.{s}" for s in ("key", "csr", "crt", "ext"))
    _key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    extfile.write_text(ext)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI_DIR / "ca.crt"), "-CAkey",
             str(PKI_DIR / "ca.key"), "-CAcreateserial", "-days", "30", "-sha256",
             "-extfile", str(extfile), "-out", str(crt))


def ensure_pki() -> None:
    """Create the CA, the API server's serving cert, client certs and the service-account keys."""
    if (PKI_DIR / "ca.crt").exists() and (PKI_DIR / "sa.pub").exists():
        for stem, (cn, org) in CLIENTS.items():  # identities added since the CA was made
            if not (PKI_DIR / f"{stem}.crt").exists():
                _sign(stem, f"/CN={cn}" + (f"/O={org}" if org else ""), CLIENT_EXT)
        return
    PKI_DIR.mkdir(parents=True, exist_ok=True)
    _key(PKI_DIR / "ca.key")
    _openssl("req", "-x509", "-new", "-key", str(PKI_DIR / "ca.key"), "-subj", "/CN=ironlb-lab-ca",
             "-days", "30", "-sha256", "-out", str(PKI_DIR / "ca.crt"))
    _sign("apiserver", "/CN=kube-apiserver",
          "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
          f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(APISERVER_SANS)}\n")
    for stem, (cn, org) in CLIENTS.items():
        subject = f"/CN={cn}" + (f"/O={org}" if org else "")
        _sign(stem, subject, CLIENT_EXT)
    _key(PKI_DIR / "sa.key")
    _openssl("pkey", "-in", str(PKI_DIR / "sa.key"), "-pubout", "-out", str(PKI_DIR / "sa.pub"))


def ensure_node_cert(node_name: str) -> None:
    """A kubelet's client certificate, system:node:NODE in system:nodes (the Node authorizer's form)."""
    if not (PKI_DIR / f"node-{node_name}.crt").exists():
        _sign(f"node-{node_name}", f"/CN=system:node:{node_name}/O=system:nodes", CLIENT_EXT)


def write_kubeconfig(path: Path, client: str, server: str = API_URL) -> Path:
    """Write a kubeconfig for client identity `client` (a stem of CLIENTS)."""
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: {server}
    certificate-authority: {PKI_DIR / 'ca.crt'}
users:
- name: {client}
  user:
    client-certificate: {PKI_DIR / f'{client}.crt'}
    client-key: {PKI_DIR / f'{client}.key'}
contexts:
- name: lab
  context: {{cluster: lab, user: {client}}}
current-context: lab
""")
    return path
