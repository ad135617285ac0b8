"""Operator restarts and leader failover against the lab: IPs never change, one leader at a time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from e2e.lab import ironlb_procs, procs
from e2e.lab.config import KUBECONFIG, REPO
from e2e.testkit.testing import Kube, wait_for
from e2e.testkit.testing import pool_manifest as pool
from tests.integration.conftest import ingress_ips, lb_service, wait_ips

pytestmark = pytest.mark.lab
POOL_ANN = "ironlb.io/address-pool"


def http_status(url: str) -> int | None:
    """HTTP status of GET url (None if nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_restart_keeps_every_ip(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-restart", None)
    kube.apply(pool("t-restart", ["198.51.100.128/27"], autoAssign=False))
    names = [f"restart-{i}" for i in range(6)]
    for name in names:
        cleanup("service", name)
        kube.apply(lb_service(name, annotations={POOL_ANN: "t-restart"}))
    before = {n: wait_ips(kube, n) for n in names}
    # Free a low address so that a careless restart would hand it to someone else.
    kube.kubectl("delete", "service", names[0])
    ironlb_procs.restart("operator")
    cleanup("service", "restart-new")
    kube.apply(lb_service("restart-new", annotations={POOL_ANN: "t-restart"}))
    new_ip = wait_ips(kube, "restart-new")
    assert new_ip == before[names[0]]  # the freed one, and only that one
    for name in names[1:]:
        assert ingress_ips(kube, name) == before[name]


def test_metrics_and_health_endpoints(kube: Kube) -> None:
    wait_for(lambda: http_status("http://127.0.0.1:7472/readyz") == 200, what="operator ready")
    assert http_status("http://127.0.0.1:7472/healthz") == 200
    with urllib.request.urlopen("http://127.0.0.1:7472/metrics", timeout=2) as resp:
        text = resp.read().decode()
    assert "ironlb_allocations_total" in text
    assert "ironlb_operator_leader 1.0" in text
    # What the chart's alerts and dashboard read: every pending reason's series, the API writes (the leader
    # renews its Lease), the process' own CPU and memory.
    assert 'ironlb_services_pending{reason="PoolExhausted"}' in text
    assert re.search(r'^ironlb_api_writes_total\{resource="leases",verb="(create|update)"\} [1-9]', text, re.M), text
    assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text


def leader_gauge(port: int) -> float | None:
    """ironlb_operator_leader of the operator serving metrics on PORT (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    found = [line.split()[1] for line in text.splitlines() if line.startswith("ironlb_operator_leader ")]
    return float(found[0]) if found else None


def test_second_replica_waits_then_takes_over(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-lease", None)
    kube.apply(pool("t-lease", ["198.51.100.192/29"], autoAssign=False))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "KUBECONFIG": str(KUBECONFIG)}
    log = open(REPO / ".lab" / "logs" / "operator-standby.log", "wb")  # noqa: SIM115
    standby = subprocess.Popen([sys.executable, "-m", "ironlb.operator", "--metrics-port", "7473",
                                "--identity", "standby"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # A standby is ready (a rolling update waits for it), and says it is not the leader.
        wait_for(lambda: http_status("http://127.0.0.1:7473/readyz") == 200, what="standby serving /readyz")
        time.sleep(2)
        assert leader_gauge(7473) == 0.0 and leader_gauge(7472) == 1.0  # still standby: one leader only
        # The leader dies without a goodbye: the standby takes over when the Lease expires.
        procs.stop("operator", sig=9)  # the leader's whole process group, supervisor included
        took_over = time.monotonic()
        wait_for(lambda: leader_gauge(7473) == 1.0, timeout=40, what="standby leads")
        cleanup("service", "lease-svc")
        kube.apply(lb_service("lease-svc", annotations={POOL_ANN: "t-lease"}))
        assert wait_ips(kube, "lease-svc") == ["198.51.100.192"]
        assert time.monotonic() - took_over < 40
    finally:
        standby.terminate()
        try:
            standby.wait(timeout=10)
        except subprocess.TimeoutExpired:
            standby.kill()
        log.close()
        procs.stop("operator")
        ironlb_procs.start_operator()
        wait_for(lambda: http_status("http://127.0.0.1:7472/readyz") == 200, timeout=40, what="operator back")
