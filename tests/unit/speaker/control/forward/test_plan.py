"""NodePort forwarding: backend scenarios, rendezvous buckets, the nftables text, the status condition."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import pytest

from ironlb.api.reasons import ForwardingReason
from ironlb.core.addresses import IPV4, IPV6
from ironlb.core.source_ranges import MAX_ENTRY_CHARS, MAX_REPORTED, SourceRangeProblem, parse_source_ranges
from ironlb.speaker.control.forward.buckets import buckets
from ironlb.speaker.control.forward.nft import MARK, chain_name, render
from ironlb.speaker.control.forward.plan import BUCKETS, Backend, Probe, ServicePlan, plan, probes
from ironlb.speaker.control.status import forwarding_condition, forwarding_reason
from ironlb.speaker.state.cluster import source_ranges
from ironlb.speaker.state.snapshot import EXCLUDE_LABEL, NodeInfo, ServiceInfo, Snapshot

ADDR = {"n1": ("192.0.2.11", "2001:db8::b"), "n2": ("192.0.2.12", "2001:db8::c"), "n3": ("192.0.2.13",)}
VIP4, VIP6 = "203.0.113.7", "2001:db8:ffff::7"


def nodes(**changes: dict) -> dict[str, NodeInfo]:
    """Three ready nodes; keyword arguments override fields of one node."""
    out = {n: NodeInfo(n, addresses=a) for n, a in ADDR.items()}
    for name, fields in changes.items():
        out[name] = NodeInfo(**{"name": name, "addresses": ADDR[name], **fields})
    return out


def svc(policy: str = "Cluster", ready: tuple[str, ...] = ("n1", "n2", "n3"), affinity: bool = False,
        ports: tuple[tuple[str, int, int], ...] = (("TCP", 80, 31000),), ips: tuple[str, ...] = (VIP4,)) -> ServiceInfo:
    """A Service of pool fwd with one TCP port."""
    check_port = 32000 if policy == "Local" else 0
    return ServiceInfo("ns/web", ips, "fwd", policy, frozenset(ready), ports, affinity, check_port)


def snap(service: ServiceInfo, node_map: dict[str, NodeInfo] | None = None, alive: tuple[str, ...] = ("n1", "n2", "n3"),
         forwarding: str = "NodePort") -> Snapshot:
    """A snapshot with one Service in pool fwd."""
    return Snapshot({service.key: service}, node_map or nodes(), frozenset(alive), (), {"fwd": {}},
                    {"fwd": forwarding})


def states(snapshot: Snapshot, failing: frozenset[Probe] = frozenset(), vip: str = VIP4) -> dict[str, Backend]:
    """Backend state per node, as planned by the announcing node n1."""
    return dict(plan(snapshot, "n1", [vip], failing).services["ns/web"].backends)


H, D = Backend.HEALTHY, Backend.DEAD


@pytest.mark.parametrize("case, snapshot, failing, expected", [
    ("every live node", snap(svc()), frozenset(), {"n1": H, "n2": H, "n3": H}),
    ("dead by heartbeat", snap(svc(), alive=("n1", "n3")), frozenset(), {"n1": H, "n2": D, "n3": H}),
    ("dead by Node Ready", snap(svc(), nodes(n3={"ready": False})), frozenset(), {"n1": H, "n2": H, "n3": D}),
    ("network unavailable", snap(svc(), nodes(n2={"network_unavailable": True})), frozenset(),
     {"n1": H, "n2": Backend.NETWORK_UNAVAILABLE, "n3": H}),
    ("excluded by label", snap(svc(), nodes(n3={"labels": {EXCLUDE_LABEL: ""}})), frozenset(),
     {"n1": H, "n2": H, "n3": Backend.EXCLUDED_BY_LABEL}),
    ("Local: only nodes with endpoints", snap(svc("Local", ready=("n2",))), frozenset(),
     {"n1": Backend.NO_LOCAL_ENDPOINT, "n2": H, "n3": Backend.NO_LOCAL_ENDPOINT}),
    ("kube-proxy healthz failing", snap(svc()), frozenset({Probe("n2", "192.0.2.12", 10256, "/healthz")}),
     {"n1": H, "n2": Backend.FAILING_HEALTH_CHECK, "n3": H}),
    ("Local check is the health check node port", snap(svc("Local")),
     frozenset({Probe("n3", "192.0.2.13", 32000, "/")}), {"n1": H, "n2": H, "n3": Backend.FAILING_HEALTH_CHECK}),
])
def test_backend_scenarios(case: str, snapshot: Snapshot, failing: frozenset[Probe], expected: dict) -> None:
    assert states(snapshot, failing) == expected, case


def test_ipv6_vip_skips_nodes_without_ipv6_and_uses_their_ipv6_addresses() -> None:
    snapshot = snap(svc(ips=(VIP6,)))
    result = plan(snapshot, "n1", [VIP6])
    assert result.services["ns/web"].backends["n3"] is Backend.NO_ADDRESS
    assert set(result.forwards[0].buckets) == {"2001:db8::b", "2001:db8::c"}


def test_only_announced_vips_of_nodeport_pools_are_forwarded() -> None:
    assert plan(snap(svc()), "n1", []).forwards == ()
    assert plan(snap(svc(), forwarding="KubeProxy"), "n1", [VIP4]).forwards == ()
    assert [f.vip for f in plan(snap(svc()), "n1", [VIP4]).forwards] == [VIP4]


def test_ports_without_node_port_or_of_other_protocols_are_reported_not_dropped_silently() -> None:
    service = svc(ports=(("TCP", 80, 31000), ("SCTP", 99, 31001), ("UDP", 53, 0)))
    result = plan(snap(service), "n1", [VIP4])
    assert [(f.protocol, f.port, f.node_port) for f in result.forwards] == [("TCP", 80, 31000)]
    problems = " ".join(result.services["ns/web"].problems)
    assert "99/SCTP is not forwarded" in problems and "53/UDP has no nodePort" in problems


def test_no_healthy_backend_means_no_forward_and_a_false_condition() -> None:
    result = plan(snap(svc(), alive=()), "n1", [VIP4])
    assert result.forwards == ()
    cond = forwarding_condition(result.services["ns/web"], {"spec": {"ports": []}})
    assert not cond.true and cond.reason is ForwardingReason.NO_HEALTHY_BACKEND
    assert "n2: not-alive" in cond.message


def test_condition_names_vips_ports_nodes_and_unused_nodes() -> None:
    result = plan(snap(svc(), alive=("n1", "n2")), "n1", [VIP4])
    body = {"spec": {"ports": [{"port": 80, "protocol": "TCP", "nodePort": 31000}]}}
    cond = forwarding_condition(result.services["ns/web"], body)
    assert cond.wire() == ("True", "Forwarding",
                           f"{VIP4}: 80/TCP -> NodePort 31000 on n1, n2 (not used: n3: not-alive)")
    off = forwarding_condition(ServicePlan("ns/web", {}, disabled=True), body)
    assert off.reason is ForwardingReason.DISABLED and "speaker.nodePortForwarding" in off.message


def test_probes_cover_every_node_with_an_address_of_the_vip_family() -> None:
    assert probes(snap(svc()), [VIP4]) == {Probe(n, a[0], 10256, "/healthz") for n, a in ADDR.items()}
    assert {p.node for p in probes(snap(svc(ips=(VIP6,))), [VIP6])} == {"n1", "n2"}
    assert probes(snap(svc()), []) == set()


def test_buckets_spread_and_only_a_leaving_nodes_buckets_move() -> None:
    before = buckets(VIP4, ["a", "b", "c", "d"], BUCKETS)
    after = buckets(VIP4, ["a", "b", "d"], BUCKETS)
    assert len(before) == BUCKETS and min(Counter(before).values()) >= BUCKETS // 8
    assert all(old == new for old, new in zip(before, after, strict=True) if old != "c")
    assert "c" not in after and buckets(VIP4, [], BUCKETS) == ()


def test_buckets_do_not_depend_on_node_order() -> None:
    names = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
    assert len({buckets(VIP4, list(p), BUCKETS) for p in itertools.permutations(names)}) == 1


def test_render_dispatches_rewrites_and_marks() -> None:
    script = render(plan(snap(svc(affinity=True, ips=(VIP4, VIP6))), "n1", [VIP4, VIP6]))
    assert script.startswith("table inet ironlb\ndelete table inet ironlb\n")
    fwd4 = plan(snap(svc(ips=(VIP4, VIP6))), "n1", [VIP4]).forwards[0]
    assert f"{VIP4} . tcp . 80 : jump {chain_name(fwd4)}" in script
    assert f"{VIP6} . tcp . 80 : jump" in script
    assert "ip daddr set jhash ip saddr mod 64" in script  # ClientIP affinity: the client address alone
    assert "ip6 daddr set jhash ip6 saddr mod 64" in script
    assert "tcp dport set 31000" in script
    assert f"tcp . 31000 : {VIP4}" in script and f"tcp . 31000 : {VIP6}" in script and "tcp . 31000 : 80" in script
    assert f"ct original ip daddr != {{ {ADDR['n1'][0]} }} masquerade" in script
    assert f"meta mark set meta mark | {MARK:#010x}" in script
    assert "priority raw - 10" in script  # before conntrack: see the module docstring


def test_render_without_affinity_hashes_the_client_port_too() -> None:
    assert "jhash ip saddr . tcp sport mod 64" in render(plan(snap(svc()), "n1", [VIP4]))


def test_render_of_nothing_removes_the_table() -> None:
    assert render(plan(snap(svc()), "n1", [])) == "table inet ironlb\ndelete table inet ironlb\n"


def ranged(ranges: tuple, ips: tuple[str, ...] = (VIP4, VIP6)) -> ServiceInfo:
    """The dual-stack Service with loadBalancerSourceRanges RANGES."""
    return dataclasses.replace(svc(ips=ips), source_ranges=ranges)


def forwards_by_vip(service: ServiceInfo) -> dict[str, tuple[str, ...] | None]:
    """VIP -> the client networks its forward lets in, as n1 (announcing both VIPs) plans it."""
    return {f.vip: f.sources for f in plan(snap(service), "n1", [VIP4, VIP6]).forwards}


def test_no_source_ranges_leave_the_vips_open() -> None:
    assert forwards_by_vip(ranged(())) == {VIP4: None, VIP6: None}
    script = render(plan(snap(ranged(())), "n1", [VIP4, VIP6]))
    assert "saddr !=" not in script and "    drop" not in script


def test_source_ranges_are_enforced_per_family_and_before_the_rewrite() -> None:
    service = ranged(("192.0.2.0/25", " 2001:db8::/64 ", "192.0.2.100/32", "198.51.100.7/24"))
    assert forwards_by_vip(service) == {VIP4: ("192.0.2.0/25", "198.51.100.0/24"), VIP6: ("2001:db8::/64",)}
    lines = render(plan(snap(service), "n1", [VIP4, VIP6])).splitlines()
    filter4 = lines.index("    ip saddr != { 192.0.2.0/25, 198.51.100.0/24 } drop")
    filter6 = lines.index("    ip6 saddr != { 2001:db8::/64 } drop")
    # Each filter sits in its VIP's chain, ahead of the mark and the rewrite.
    assert "ip daddr set jhash" in lines[filter4 + 2] and "ip6 daddr set jhash" in lines[filter6 + 2]
    assert "meta mark set" in lines[filter4 + 1] and "meta mark set" in lines[filter6 + 1]


def test_ranges_of_the_other_family_do_not_open_a_family() -> None:
    result = plan(snap(ranged(("192.0.2.0/24",))), "n1", [VIP4, VIP6])
    assert {f.vip: f.sources for f in result.forwards} == {VIP4: ("192.0.2.0/24",), VIP6: ()}
    fwd6 = next(f for f in result.forwards if f.vip == VIP6)
    script = render(result)
    chain6 = script[script.index(f"chain {chain_name(fwd6)}"):]
    assert chain6.splitlines()[2] == "    drop"  # the IPv6 VIP admits no client
    assert f"{VIP6} admits no client" in " ".join(result.services["ns/web"].problems)


def test_invalid_source_ranges_are_refused_with_a_reason_and_never_open_the_service() -> None:
    bad = ("not-a-cidr", "198.51.100.0/33", None, "\x1b[31mred\x1b[0m", "192.0.2.0/24")
    result = plan(snap(ranged(bad)), "n1", [VIP4, VIP6])
    assert {f.vip: f.sources for f in result.forwards} == {VIP4: ("192.0.2.0/24",), VIP6: ()}
    service_plan = result.services["ns/web"]
    assert service_plan.invalid_range_count == 4
    assert [why for _, why in service_plan.invalid_ranges] == [
        SourceRangeProblem.NOT_A_CIDR, SourceRangeProblem.NOT_A_CIDR, SourceRangeProblem.NOT_A_STRING,
        SourceRangeProblem.NOT_A_CIDR]
    assert forwarding_reason(service_plan) is ForwardingReason.INVALID_SOURCE_RANGES
    cond = forwarding_condition(service_plan, {"spec": {"ports": []}})
    assert not cond.true and cond.reason is ForwardingReason.INVALID_SOURCE_RANGES
    assert "not-a-cidr" in cond.message and "\x1b" not in cond.message
    only_bad = plan(snap(ranged(("nonsense",))), "n1", [VIP4, VIP6])
    assert {f.sources for f in only_bad.forwards} == {()}  # nothing valid: closed, not open


def test_reported_invalid_entries_are_bounded() -> None:
    parsed = parse_source_ranges(["x" * 500] * 100)
    assert parsed.invalid_count == 100 and len(parsed.invalid) == MAX_REPORTED
    assert all(len(entry) <= MAX_ENTRY_CHARS for entry, _ in parsed.invalid)
    assert parsed.allowed(IPV4) == () and parsed.allowed(IPV6) == ()


def test_source_ranges_are_read_from_the_service_spec() -> None:
    assert source_ranges(None) == () and source_ranges([]) == ()
    assert source_ranges(["192.0.2.0/24", 7, {"a": 1}]) == ("192.0.2.0/24", None, None)
    assert source_ranges("192.0.2.0/24") == ("192.0.2.0/24",)
