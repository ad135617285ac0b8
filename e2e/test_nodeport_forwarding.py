"""Pools with `forwarding: NodePort`: the announcing node sends VIP traffic to the NodePorts of
healthy nodes (its own nftables table, ipMode Proxy), through the real kube-proxy on each node."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from e2e.lab import kubeproxy, lab, procs, workload
from e2e.lab.config import CLIENT_IP_V4, CLIENT_IP_V6, LOG_DIR, node, node_named
from e2e.lab.state import load_state
from e2e.lab.tools import bin_dir
from e2e.test_loadbalancer import announcer, announcer_killed, service, settled_election, vip_of
from e2e.testkit.testing import Kube, pool_manifests, wait_for
from ironlb.core.election import elect

pytestmark = pytest.mark.lab
POOL = "e2e-fwd"
NODES = ("node-1", "node-2", "node-3")
NODE_IPS = {"node-1": "192.0.2.11", "node-2": "192.0.2.12", "node-3": "192.0.2.13"}
MARK = "mark=1048576"  # ironlb.speaker.control.forward.nft.MARK on the connection
# A second address of the client namespace on the node segment, outside the Service's source ranges.
OUTSIDER_V4, OUTSIDER_V6 = "192.0.2.200", "2001:db8::200"


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A NodePort-forwarding pool announced from every node."""
    kube.apply(*pool_manifests(POOL, ["203.0.113.160/28", "2001:db8:ffff::a00/124"], forwarding="NodePort"))
    yield
    kube.kubectl("delete", "l2advertisement", POOL, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found")


@pytest.fixture
def web(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A dual-stack workload with a pod on every node behind a Service from the forwarding pool."""
    name = "fwd-" + request.node.name.replace("_", "-")[5:22].strip("-")
    settled_election(kube)  # the node the last test killed is back in the election
    kube.deploy(name, replicas=3, nodes=list(NODES))
    kube.apply(service(name, pool=POOL, ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4", "IPv6"]))
    node_port = kube.get("service", name)["spec"]["ports"][0]["nodePort"]
    for node_name, ip in NODE_IPS.items():  # kube-proxy on every node has synced the new Service
        try:
            wait_for(lambda ip=ip: kube.curl("client", f"http://{ip}:{node_port}/"), what=f"NodePort on {ip}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {kubeproxy.explain(node_named(node_name), node_port)}") from None
    yield name
    kube.kubectl("delete", "service", name, "--wait=false")
    kube.undeploy(name)


def forwarding(kube: Kube, name: str) -> dict | None:
    """The Service's ironlb.io/Forwarding condition."""
    conds = kube.get("service", name).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "ironlb.io/Forwarding"), None)


def forwarded_to(kube: Kube, on: str, node_port: int) -> Counter[str]:
    """Node addresses the announcing node ON rewrote VIP flows to (from its conntrack table)."""
    out = kube.exec(on, "conntrack", "-L", "-p", "tcp", "--dport", str(node_port), check=True).stdout
    return Counter(m.group(1) for line in out.splitlines() if MARK in line
                   and (m := re.search(r"dst=(\S+) sport=\d+ dport=" + str(node_port), line)))


def curl_all(kube: Kube, url: str, count: int) -> list[str | None]:
    """COUNT requests, each a new connection from a new client port."""
    return [kube.curl("client", url, timeout=1) for _ in range(count)]


def test_vip_traffic_goes_through_the_node_ports_of_every_node(kube: Kube, web: str) -> None:
    def both_vips() -> dict | None:
        svc = kube.get("service", web)
        return svc if len(svc["status"]["loadBalancer"].get("ingress") or []) == 2 else None

    svc = wait_for(both_vips, what="two VIPs")
    assert [i["ipMode"] for i in svc["status"]["loadBalancer"]["ingress"]] == ["Proxy", "Proxy"]
    vip4, vip6 = (i["ip"] for i in svc["status"]["loadBalancer"]["ingress"])
    node_port = svc["spec"]["ports"][0]["nodePort"]
    on = announcer(kube, web)
    cond = wait_for(lambda: (c := forwarding(kube, web)) and c["status"] == "True" and c, what="Forwarding condition")
    assert f"NodePort {node_port} on node-1, node-2, node-3" in cond["message"]
    # ipMode Proxy: kube-proxy leaves the VIP alone, so what carries it is the speaker's table.
    assert vip4 not in kube.exec(on, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
    kube.exec(on, "conntrack", "-F", check=True)
    answers = curl_all(kube, f"http://{vip4}/", 30)
    assert all(a and a.startswith(web) for a in answers), answers
    assert set(forwarded_to(kube, on, node_port)) == set(NODE_IPS.values())  # its own NodePort and the others'
    assert wait_for(lambda: kube.curl("client", f"http://[{vip6}]/"), what="IPv6 VIP").startswith(web)
    # The NodePort still answers on its own, and the rewrite back to the VIP leaves direct clients alone.
    assert kube.curl("client", f"http://192.0.2.13:{node_port}/").startswith(web)


def test_client_ip_affinity_keeps_a_client_on_one_node(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    on = announcer(kube, web)
    node_port = kube.get("service", web)["spec"]["ports"][0]["nodePort"]
    kube.kubectl("patch", "service", web, "-p", '{"spec":{"sessionAffinity":"ClientIP"}}')
    wait_for(lambda: "saddr mod" in kube.exec(on, "nft", "list", "table", "inet", "ironlb").stdout,
             what="affinity in the table")
    kube.exec(on, "conntrack", "-F", check=True)
    assert all(curl_all(kube, f"http://{vip}/", 12))
    assert len(forwarded_to(kube, on, node_port)) == 1


def test_a_failing_backend_is_left_out(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    on = announcer(kube, web)
    node_port = kube.get("service", web)["spec"]["ports"][0]["nodePort"]
    other = next(n for n in NODES if n != on)
    wait_for(lambda: (c := forwarding(kube, web)) and "node-1, node-2, node-3" in c["message"], what="all backends")

    # kube-proxy stopped: its rules stay, but its health check fails, so the node is taken out.
    ipv6 = load_state().ipv6
    procs.stop(kubeproxy.proc_name(node(int(other[-1]))))
    try:
        cond = wait_for(lambda: (c := forwarding(kube, web)) and f"{other}: failing-health-check" in c["message"]
                        and c, timeout=15, what="health check failure reported")
        assert other not in cond["message"].split(" (")[0]
    finally:
        kubeproxy.start(node(int(other[-1])), bin_dir(), ipv6)
    wait_for(lambda: (c := forwarding(kube, web)) and "node-1, node-2, node-3" in c["message"], timeout=15,
             what="backend back after kube-proxy returns")

    # The node dies (its pod taken out of the endpoints first, as the endpoints controller would):
    # heartbeats drop it at once, and every new connection goes to the remaining nodes.
    workload.set_ready(f"{web}-{NODES.index(other)}", False)
    lab.kill_node(other)
    try:
        killed = time.monotonic()
        wait_for(lambda: (c := forwarding(kube, web)) and f"{other}: not-alive" in c["message"], timeout=10,
                 interval=0.1, what="dead backend dropped")
        assert time.monotonic() - killed < 5
        kube.exec(on, "conntrack", "-F", check=True)
        answers = curl_all(kube, f"http://{vip}/", 20)
        assert all(answers), answers
        assert NODE_IPS[other] not in forwarded_to(kube, on, node_port)
    finally:
        lab.revive_node(other)
        workload.set_ready(f"{web}-{NODES.index(other)}", True)


def table_of(kube: Kube, on: str) -> str:
    """The speaker's nftables table on node ON ('' when it has none)."""
    return kube.exec(on, "nft", "list", "table", "inet", "ironlb").stdout


def evidence(kube: Kube, web: str, on: str) -> str:
    """What a failed forwarding check needs: the Service's status, ON's table and speaker log tail."""
    log = (LOG_DIR / f"speaker-{on}.log").read_text(errors="replace").splitlines()
    return "\n".join([json.dumps(kube.get("service", web).get("status"), indent=1),
                      f"--- nft list table inet ironlb on {on}:", table_of(kube, on) or "(no table)",
                      f"--- last lines of speaker-{on}.log:", *log[-60:]])


def test_forwarding_moves_with_the_announcement(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    old = announcer(kube, web, ip=vip)
    assert old == elect(vip, NODES)
    wait_for(lambda: vip in table_of(kube, old), what="forwarding programmed")
    assert all(vip not in table_of(kube, n) for n in NODES if n != old)  # only the announcer forwards
    with announcer_killed(kube, web, vip, old):
        heir = elect(vip, [n for n in NODES if n != old])
        new = wait_for(lambda: (n := announcer(kube, web, ip=vip)) == heir and n, what="the heir reported")
        # The status and the nftables programmer follow the announcer's move each at its own pace.
        try:
            wait_for(lambda: vip in table_of(kube, new), timeout=5, what="forwarding programmed on the new announcer")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{evidence(kube, web, new)}") from None
    wait_for(lambda: announcer(kube, web, ip=vip) == old, timeout=20, what="announcement back on the revived node")
    wait_for(lambda: vip in table_of(kube, old) and vip not in table_of(kube, new), timeout=10,
             what="forwarding back on the revived node only")
    # Every new connection lands, whichever node's NodePort its bucket picks (the revived one included).
    assert all(curl_all(kube, f"http://{vip}/", 40))


@contextlib.contextmanager
def outsider_addresses(kube: Kube) -> Iterator[None]:
    """The client namespace also holds OUTSIDER_V4/V6 (deprecated in IPv6: never picked as a default source)."""
    added = [("-4", f"{OUTSIDER_V4}/32", ()), ("-6", f"{OUTSIDER_V6}/128", ("nodad", "preferred_lft", "0"))]
    for family, address, extra in added:
        kube.exec("client", "ip", family, "addr", "add", address, "dev", "eth0", *extra, check=True)
    try:
        yield
    finally:
        for family, address, _ in added:
            kube.exec("client", "ip", family, "addr", "del", address, "dev", "eth0")


def curl_from(kube: Kube, source: str, url: str) -> str | None:
    """GET URL from the client namespace with source address SOURCE; the body, or None if nothing answered."""
    res = kube.exec("client", "curl", "-s", "-g", "-m", "1", "--interface", source, url, timeout=6)
    return res.stdout.strip() if res.returncode == 0 else None


def test_source_ranges_let_in_only_clients_inside_them(kube: Kube, web: str) -> None:
    svc = wait_for(lambda: len((s := kube.get("service", web))["status"]["loadBalancer"].get("ingress") or []) == 2
                   and s, what="two VIPs")
    vips = [i["ip"] for i in svc["status"]["loadBalancer"]["ingress"]]
    # url -> (a client source inside the ranges, one outside), both families
    pairs = {(f"http://[{vip}]/" if ":" in vip else f"http://{vip}/"):
             ((CLIENT_IP_V6, OUTSIDER_V6) if ":" in vip else (CLIENT_IP_V4, OUTSIDER_V4)) for vip in vips}
    with outsider_addresses(kube):
        for url, (_, outside) in pairs.items():  # open to both before any range is set
            answer = wait_for(lambda u=url, o=outside: curl_from(kube, o, u), what=f"{url} from {outside}")
            assert answer.startswith(web)
        ranges = [f"{CLIENT_IP_V4}/32", f"{CLIENT_IP_V6}/128"]
        kube.kubectl("patch", "service", web, "-p", json.dumps({"spec": {"loadBalancerSourceRanges": ranges}}))
        on = announcer(kube, web)
        still_open = []  # every family checked before failing: each must close on its own
        for url, (_, outside) in pairs.items():
            try:
                wait_for(lambda u=url, o=outside: curl_from(kube, o, u) is None, timeout=15,
                         what=f"{url} closed to {outside}, outside the source ranges")
            except AssertionError as exc:
                still_open.append(str(exc))
        assert not still_open, "\n".join(still_open) + "\n" + evidence(kube, web, on)
        # Checked over many new connections, interleaved: inside always answered, outside never.
        for _ in range(8):
            for url, (inside, outside) in pairs.items():
                assert (curl_from(kube, inside, url) or "").startswith(web), f"{url} from {inside}"
                assert curl_from(kube, outside, url) is None, f"{url} answered {outside}, outside the ranges"
        # An empty list opens the Service again.
        kube.kubectl("patch", "service", web, "--type=json",
                     "-p", '[{"op": "remove", "path": "/spec/loadBalancerSourceRanges"}]')
        for url, (_, outside) in pairs.items():
            wait_for(lambda u=url, o=outside: curl_from(kube, o, u), timeout=15, what=f"{url} open again to {outside}")


def test_a_source_range_the_speaker_cannot_read_is_reported_and_opens_nothing(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    # Leading zeros: the API server's sloppy CIDR parser takes it, the speaker refuses it (never guesses).
    ranges = [f"{CLIENT_IP_V4}/32", "192.0.2.010/32"]
    res = kube.kubectl("patch", "service", web, "-p", json.dumps({"spec": {"loadBalancerSourceRanges": ranges}}),
                       check=False)
    if res.returncode != 0:
        pytest.skip(f"this API server refuses the entry itself: {res.stderr.strip()}")
    cond = wait_for(lambda: (c := forwarding(kube, web)) and c["reason"] == "InvalidSourceRanges" and c,
                    what="InvalidSourceRanges condition")
    assert cond["status"] == "False" and "192.0.2.010/32" in cond["message"], cond
    events = wait_for(lambda: json.loads(kube.kubectl(
        "get", "events", "-o", "json", "--field-selector",
        f"involvedObject.name={web},reason=InvalidSourceRanges").stdout)["items"], what="InvalidSourceRanges Event")
    assert [e["type"] for e in events] == ["Warning"], events
    with outsider_addresses(kube):
        assert (curl_from(kube, CLIENT_IP_V4, f"http://{vip}/") or "").startswith(web)  # the valid range still works
        assert curl_from(kube, OUTSIDER_V4, f"http://{vip}/") is None
