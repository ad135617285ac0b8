"""A speaker's metrics port under a hostile host: read by token only, and a flood of connections moves nothing.

The announcing node's speaker runs as the chart runs it: /metrics on the node's address behind a bearer
token (TokenReview + SubjectAccessReview), /healthz and /readyz on the node's loopback. From the client
namespace (the node network), 30,000 idle or slow connections and a loop of /metrics requests hit the
metrics port. Checked every half second while it lasts: the speaker's processes stay under the chart's
memory limit and hold a bounded number of sockets, /healthz answers within a second, and the VIP is
answered by its node alone; afterwards no peer saw a death.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.lab import ironlb_procs, lab
from e2e.lab.config import node as lab_node
from e2e.lab.state import load_state
from e2e.test_hostile_lan import LAB_PY, NODES, arp_replies, metrics, pool, service_on_every_node, total
from e2e.testkit.testing import Kube, wait_for

pytestmark = pytest.mark.lab
assert pool  # the module's pool fixture, shared with test_hostile_lan
LIMIT = 384 * 1024 * 1024  # the chart's speaker memory limit (values.yaml speaker.resources.limits.memory)
FLOOD, SECONDS = 30_000, 20.0
# Descriptors the flood may add to the speaker's own: both capped listeners full (http.MAX_CONNECTIONS), and the
# accept pipeline (asyncio accepts up to its backlog of 100 a wake-up; a refused one is closed a few turns later).
HELD = 2 * 64 + 5 * 100
HEALTH = "http://127.0.0.1:7474/healthz"  # the chart's liveness probe: the node's loopback
METRICS_PORT = 7473
READER = "ironlb-e2e-metrics-reader"


@pytest.fixture(scope="module")
def token(kube: Kube) -> Iterator[str]:
    """A ServiceAccount token allowed `get` on /metrics, as Prometheus' would be."""
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": READER, "namespace": "default"}},
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": READER},
                "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]},
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": READER},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": READER},
                "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": "default"}]})
    yield kube.kubectl("create", "token", READER, "-n", "default", "--duration", "1h").stdout.strip()
    kube.kubectl("delete", "clusterrolebinding,clusterrole", READER, "--ignore-not-found")
    kube.kubectl("delete", "serviceaccount", READER, "-n", "default", "--ignore-not-found")


@pytest.fixture
def target(kube: Kube) -> Iterator[tuple[str, str, str]]:
    """A Service with a pod on every node; its announcing node's speaker serves metrics as the chart does."""
    for name, vip, node in service_on_every_node(kube, "hostile-metrics"):
        as_chart(node)
        try:
            yield name, vip, node
        finally:
            ironlb_procs.restart("speaker", node)
            wait_for(lambda n=node: speaker_ready(kube, n), timeout=60, what="speaker back on lab defaults")


def as_chart(node: str) -> None:
    """Restart NODE's speaker with the chart's listeners (metrics on the node's address, token required)."""
    ip = lab_node(int(node.rsplit("-", 1)[1])).ipv4
    ironlb_procs.restart("speaker", node, env={"IRONLB_METRICS_HOST": ip, "IRONLB_METRICS_AUTH": "kubernetes"})


def speaker_ready(kube: Kube, node: str) -> bool:
    """NODE's speaker answers its readiness probe with 200."""
    res = kube.exec(node, "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}",
                    HEALTH.replace("/healthz", "/readyz"))
    return res.stdout.strip() == "200"


def scrape(kube: Kube, node: str, token: str | None) -> tuple[int, str]:
    """(status, body) of NODE's /metrics on its address, from the client, with TOKEN if given."""
    ip = lab_node(int(node.rsplit("-", 1)[1])).ipv4
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    res = kube.exec("client", "curl", "-s", "-m", "5", "-w", "\n%{http_code}", *auth,
                    f"http://{ip}:{METRICS_PORT}/metrics")
    body, _, status = res.stdout.rpartition("\n")
    return int(status or 0), body


def speaker_pids(node: str) -> list[int]:
    """The PIDs under NODE's speaker supervisor: the control plane and the fast plane."""
    root = load_state().procs[f"speaker-{node}"].pid
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found += [int(c) for c in children]
            todo += [int(c) for c in children]
    return found


def rss_and_fds(pids: list[int]) -> tuple[int, int]:
    """Summed resident bytes and open file descriptors of PIDS (the ones still running)."""
    rss = fds = 0
    for pid in pids:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            fds += sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
        except (OSError, ValueError):
            continue
        rss += pages * 4096
    return rss, fds


def test_metrics_off_loopback_need_a_token_the_api_server_allows(kube: Kube, token: str,
                                                                 target: tuple[str, str, str]) -> None:
    _, _, node = target
    wait_for(lambda: speaker_ready(kube, node), timeout=60, what="speaker ready with the chart's listeners")
    assert scrape(kube, node, None)[0] == 401
    assert scrape(kube, node, "not-a-token")[0] == 401
    status, body = scrape(kube, node, token)
    assert status == 200 and "ironlb_speaker_announced_ips" in body


def test_a_connection_flood_on_the_metrics_port_moves_nothing(kube: Kube, token: str,
                                                              target: tuple[str, str, str]) -> None:
    _, vip, node = target
    mac = lab.node_mac(node)
    wait_for(lambda: speaker_ready(kube, node), timeout=60, what="speaker ready with the chart's listeners")
    others = [n for n in NODES if n != node]
    deaths_before = {n: total(metrics(kube, n), "ironlb_speaker_peer_deaths_total") for n in others}
    pids = speaker_pids(node)
    _, baseline_fds = rss_and_fds(pids)
    ip = lab_node(int(node.rsplit("-", 1)[1])).ipv4
    # Two flooding processes (each under the lab's descriptor limit), each with half the source ports.
    result: dict[int, subprocess.CompletedProcess[str]] = {}
    floods = [threading.Thread(target=lambda i=i, ports=ports: result.update({i: kube.exec(
        "client", *LAB_PY, "-m", "e2e.probes.connflood", ip, str(METRICS_PORT), "--connections", str(FLOOD // 2),
        "--seconds", str(SECONDS), "--scrapers", "2", "--ports", ports, timeout=SECONDS + 60)}), daemon=True)
        for i, ports in enumerate(("10000-37499", "37500-64999"))]
    for flood in floods:
        flood.start()
    worst = {"rss": 0, "fds": 0, "health_s": 0.0, "baseline_fds": baseline_fds}
    failures: list[str] = []
    started = time.monotonic()
    while any(f.is_alive() for f in floods) and time.monotonic() - started < SECONDS + 60:
        rss, fds = rss_and_fds(pids)
        worst.update(rss=max(worst["rss"], rss), fds=max(worst["fds"], fds))
        asked = time.monotonic()
        res = kube.exec(node, "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", HEALTH)
        worst["health_s"] = max(worst["health_s"], time.monotonic() - asked)
        at = f"at {time.monotonic() - started:.1f} s"
        if rss >= LIMIT:
            failures.append(f"speaker RSS {rss >> 20} MiB {at}")
        if fds > baseline_fds + HELD:
            failures.append(f"speaker holds {fds} descriptors {at}")
        if res.stdout.strip() != "200":
            failures.append(f"/healthz answered {res.stdout.strip() or 'nothing'} {at}")
        if (replies := arp_replies(kube, vip, wait=0.3)) != [mac]:
            failures.append(f"ARP for {vip} answered by {replies} {at}")
        time.sleep(0.5)
    for flood in floods:
        flood.join(5)
    assert all(run.returncode == 0 for run in result.values()), [run.stderr[-2000:] for run in result.values()]
    figures = [json.loads(run.stdout.strip().splitlines()[-1]) for run in result.values()]
    print(json.dumps({"flood": figures, "worst": worst}))  # the run's figures, for the report
    assert not failures, failures[:10]
    assert sum(f["opened"] for f in figures) >= FLOOD  # the flood did happen
    assert sum(f["metrics"].get("200", 0) for f in figures) == 0  # no page rendered for anyone without a token
    # A scrape with a token works again once the listener has refused the flood's queued connections.
    wait_for(lambda: scrape(kube, node, token)[0] == 200, timeout=30, interval=1, what="a scrape with a token")
    assert {n: total(metrics(kube, n), "ironlb_speaker_peer_deaths_total") for n in others} == deaths_before
    assert arp_replies(kube, vip) == [mac]
