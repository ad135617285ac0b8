"""The two implementations benchmarks.compare drives, and what it reads from the lab around them:
which node answers ARP for a VIP, the speakers' memory and CPU, the API server's write counters.

They differ only in the CRs each needs (ironlb.io vs metallb.io) and how they are started; the
Services, the workload, the prober and the kill are the same for both.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.lab import ironlb_procs, metallb, procs
from e2e.lab import lab as lab_ctl
from e2e.testkit.testing import Kube, speaker_hears_all, wait_for

POOL_ANNOTATION = "metallb.io/address-pool"  # both honour it, so the Services are byte-identical
MUTATING_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Impl:
    """One implementation: how to start and stop it, and its pool + advertisement CRs."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]
    api_version: str
    cr_namespace: str | None
    speaker_prefix: str
    advertisement_extra: dict[str, Any]

    def pool(self, name: str, addresses: list[str]) -> list[dict[str, Any]]:
        """An IPAddressPool NAME (served only on request, by the pool annotation) and its L2Advertisement."""
        meta: dict[str, Any] = {"name": name, **({"namespace": self.cr_namespace} if self.cr_namespace else {})}
        return [{"apiVersion": self.api_version, "kind": "IPAddressPool", "metadata": meta,
                 "spec": {"addresses": addresses, "autoAssign": False}},
                {"apiVersion": self.api_version, "kind": "L2Advertisement", "metadata": dict(meta),
                 "spec": {"ipAddressPools": [name], **self.advertisement_extra}}]

    def delete_pools(self, kube: Kube, *names: str) -> None:
        """Delete this implementation's pools and advertisements NAMES."""
        group = self.api_version.split("/")[0]
        ns = ["-n", self.cr_namespace] if self.cr_namespace else []
        for kind in ("l2advertisements", "ipaddresspools"):
            kube.kubectl("delete", f"{kind}.{group}", *names, *ns, "--ignore-not-found", check=False)

    def speakers(self) -> dict[str, dict[str, Any]]:
        """The lab's recorded speaker processes of this implementation, by process name."""
        return procs.running(self.speaker_prefix)

    def ready(self, kube: Kube) -> bool:
        """Every node's speaker runs and (IronLB) hears every peer."""
        if len(self.speakers()) != len(kube.nodes):
            return False
        return self.name != "ironlb" or all(speaker_hears_all(kube, n) for n in kube.nodes)


IRONLB = Impl("ironlb", ironlb_procs.start_ironlb, ironlb_procs.stop_ironlb, "ironlb.io/v1beta1", None, "speaker-", {})
# Announce on the node segment only, as the lab's IronLB speakers do (--exclude-interfaces mgmt0).
METALLB = Impl("metallb", metallb.start, metallb.stop, "metallb.io/v1beta1", metallb.NAMESPACE,
               "metallb-speaker-", {"interfaces": ["eth0"]})
IMPLS = (IRONLB, METALLB)


def stop_all() -> None:
    """Stop whichever implementation runs."""
    for impl in IMPLS:
        impl.stop()


def answering_node(kube: Kube, vip: str) -> str | None:
    """The node whose MAC the client resolves VIP to, from a fresh ARP exchange (None if no answer)."""
    kube.exec("client", "ip", "neigh", "flush", "to", vip)
    if not kube.curl("client", f"http://{vip}/", timeout=1):
        return None
    neigh = kube.exec("client", "ip", "neigh", "show", vip).stdout.lower()
    return next((n for n in kube.nodes if lab_ctl.node_mac(n).lower() in neigh), None)


def _tree(pid: int) -> list[int]:
    """PID and its descendants (through /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return out


def _is_harness(pid: int) -> bool:
    """The lab's own wrappers (supervisor, `ip netns exec`) are not the speaker."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"e2e.probes.supervise" in cmd or Path(cmd[0].decode() or "x").name == "ip"


def speaker_pids(impl: Impl) -> dict[str, list[int]]:
    """Per speaker, the PIDs of the speaker's own processes."""
    return {name: [p for p in _tree(e.pid) if not _is_harness(p)] for name, e in impl.speakers().items()}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of PIDS so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def rss_mb(pids: list[int]) -> float:
    """Resident memory of PIDS, in MB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


def api_writes(kube: Kube) -> dict[str, float]:
    """kube-apiserver's cumulative count of mutating requests, by resource (apiserver_request_total)."""
    text = kube.kubectl("get", "--raw", "/metrics", timeout=30).stdout
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("verb") in MUTATING_VERBS:
            key = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def start(impl: Impl, kube: Kube) -> None:
    """Start IMPL alone and wait until all its speakers run (and, for IronLB, hear each other)."""
    stop_all()
    impl.start()
    wait_for(lambda: impl.ready(kube), timeout=60, interval=0.5, what=f"{impl.name} speakers ready")


def wait_settled(seconds: float) -> None:
    """Let start-up writes (leases, statuses, Events) pass before measuring steady state."""
    time.sleep(seconds)


def metallb_version() -> str:
    """The pinned MetalLB version."""
    return metallb.version()


def run_in_client(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a lab Python module in the client namespace."""
    from e2e.lab.config import REPO

    return subprocess.run(["ip", "netns", "exec", "ilb-client", str(REPO / ".venv/bin/python"), "-m", *argv],
                          capture_output=True, text=True, check=True, timeout=timeout,
                          env={"PYTHONPATH": f"{REPO}/src:{REPO}"})
