"""Steering around dead nodes: the decision per Service (scenarios), the live targets, and the nftables text."""

from __future__ import annotations

import asyncio
import re

import pytest

from ironlb.api.reasons import SteeringReason
from ironlb.speaker.control.steer import SteeringSettings
from ironlb.speaker.control.steer.nft import MARK, TABLE, chain_name, render
from ironlb.speaker.control.steer.plan import Steer, SteeringPlan, plan
from ironlb.speaker.control.steer.steerer import Steerer, pairs_from
from ironlb.speaker.state.endpoints import SliceTargets, service_ports, slice_targets
from ironlb.speaker.state.snapshot import NodeInfo, ServiceInfo, Snapshot

VIP4, VIP6 = "203.0.113.7", "2001:db8:ffff::7"
POD = {"n1": "198.19.1.5", "n2": "198.19.2.5", "n3": "198.19.3.5"}
POD6 = {"n1": "2001:db8:1::5", "n2": "2001:db8:2::5", "n3": "2001:db8:3::5"}
PORTS = (("http", "TCP", 80),)


def targets(pods: dict[str, str] = POD, family: str = "IPv4", ports: tuple = (("http", "TCP", 8080),),
            unready: tuple[str, ...] = ()) -> SliceTargets:
    """One slim slice with an endpoint per pod."""
    found = slice_targets({"addressType": family, "ports": [{"name": n, "protocol": p, "port": x} for n, p, x in ports],
                           "endpoints": [{"nodeName": n, "conditions": {"ready": n not in unready}} for n in pods],
                           "addresses": list(pods.values())})
    assert found is not None
    return found


def svc(policy: str = "Cluster", ips: tuple[str, ...] = (VIP4,), affinity: bool = False,
        sources: tuple[str | None, ...] = ()) -> ServiceInfo:
    """A Service of pool p."""
    return ServiceInfo("ns/web", ips, "p", policy, frozenset(POD), (("TCP", 80, 31000),), affinity,
                       source_ranges=sources)


def planned(service: ServiceInfo, dead: frozenset[str], slices: list[SliceTargets] | None = None,
            ports: tuple = PORTS, forwarded: bool = False) -> SteeringPlan:
    """The plan of the announcing node for SERVICE's first IP."""
    return plan([(service, service.ips[0])], lambda _: ports, lambda _: [targets()] if slices is None else slices,
                dead, lambda _: forwarded)


S = SteeringReason


@pytest.mark.parametrize("case, service, dead, slices, forwarded, reason", [
    ("nobody dead", svc(), frozenset(), None, False, S.NOT_NEEDED),
    ("a node without endpoints dead", svc(), frozenset({"n4"}), None, False, S.NOT_NEEDED),
    ("an endpoint's node dead", svc(), frozenset({"n3"}), None, False, S.STEERED),
    ("every endpoint's node dead", svc(), frozenset(POD), None, False, S.NO_LIVE_ENDPOINT),
    ("only a not-ready endpoint on the dead node", svc(), frozenset({"n3"}), [targets(unready=("n3",))], False,
     S.NOT_NEEDED),
    ("Local: kube-proxy uses this node's own endpoints", svc("Local"), frozenset({"n3"}), None, False,
     S.LOCAL_POLICY),
    ("NodePort forwarding picks the nodes", svc(), frozenset({"n3"}), None, True, S.NODEPORT_FORWARDED),
    ("no slice", svc(), frozenset({"n3"}), [], False, S.NOT_NEEDED),
])
def test_when_a_service_is_steered(case: str, service: ServiceInfo, dead: frozenset[str],
                                   slices: list[SliceTargets] | None, forwarded: bool, reason: SteeringReason) -> None:
    result = planned(service, dead, slices, forwarded=forwarded)
    assert result.reasons == {"ns/web": reason}, case
    assert bool(result.steers) == (reason is S.STEERED), case


def test_a_steered_port_goes_to_the_live_endpoints_of_its_family_on_the_slice_port_of_its_name() -> None:
    slices = [targets(ports=(("http", "TCP", 8080), ("dns", "UDP", 5353))), targets(POD6, "IPv6")]
    ports = (("http", "TCP", 80), ("dns", "UDP", 53), ("metrics", "TCP", 9100), ("sctp", "SCTP", 9))
    result = planned(svc(), frozenset({"n2"}), slices, ports)
    assert result.steers == (
        Steer("ns/web", VIP4, "TCP", 80, (("198.19.1.5", 8080), ("198.19.3.5", 8080))),
        Steer("ns/web", VIP4, "UDP", 53, (("198.19.1.5", 5353), ("198.19.3.5", 5353))),
    )  # no slice port named metrics, and SCTP is not steered: both are left to kube-proxy
    assert result.skipped == {"ns/web": frozenset({"n2"})}
    six = plan([(svc(ips=(VIP6,)), VIP6)], lambda _: PORTS, lambda _: slices, frozenset({"n2"}), lambda _: False)
    assert six.steers[0].targets == (("2001:db8:1::5", 8080), ("2001:db8:3::5", 8080))


def test_an_unnamed_port_matches_the_unnamed_slice_port() -> None:
    result = planned(svc(), frozenset({"n1"}), [targets(ports=(("", "TCP", 8080),))], (("", "TCP", 80),))
    assert [s.targets for s in result.steers] == [(("198.19.2.5", 8080), ("198.19.3.5", 8080))]


def test_the_table_sends_steered_vips_to_live_endpoints_and_masquerades_them() -> None:
    steer = Steer("ns/web", VIP4, "TCP", 80, (("198.19.1.5", 8080), ("198.19.3.5", 8080)))
    name = chain_name(steer)
    text = render(SteeringPlan((steer,), {"ns/web": S.STEERED}))
    assert f"delete table inet {TABLE}" not in text  # refilled in place, never rebuilt
    assert f"{VIP4} . tcp . 80 : goto {name}" in text
    assert "type nat hook prerouting priority dstnat - 5;" in text  # before kube-proxy's DNAT
    assert f"map {name}_to {{ typeof numgen random mod 1 : ip daddr . tcp dport; elements = " \
           "{ 0 : 198.19.1.5 . 8080, 1 : 198.19.3.5 . 8080 } }" in text
    assert f"meta l4proto tcp dnat ip to numgen random mod 2 map @{name}_to" in text
    assert f"ct mark & {MARK:#010x} == {MARK:#010x} ct direction original masquerade" in text
    sticky_steer = Steer("ns/web", VIP6, "UDP", 53, (("2001:db8:1::5", 53),), True,
                         ("2001:db8::/64", "2001:db8::1/128"))
    sticky, sticky_name = render(SteeringPlan((sticky_steer,))), chain_name(sticky_steer)
    assert f"ip6 saddr != @{sticky_name}_from return" in sticky  # outside the source ranges: kube-proxy decides
    assert "elements = { 2001:db8::/64 } }" in sticky  # merged: an interval set takes no overlap
    assert re.search(rf"dnat ip6 to jhash ip6 saddr mod 1 seed 0x[0-9a-f]+ map @{sticky_name}_to", sticky)
    closed = render(SteeringPlan((Steer("ns/web", VIP4, "TCP", 80, (("198.19.1.5", 80),), sources=()),)))
    assert "    return\n" in closed


def test_a_reapply_empties_and_refills_in_one_script_and_removes_only_what_is_stale() -> None:
    web = Steer("ns/web", VIP4, "TCP", 80, (("198.19.1.5", 8080),))
    dns = Steer("ns/dns", VIP4, "UDP", 53, (("198.19.1.5", 53),))
    lines = render(SteeringPlan((web,)), stale=(web, dns)).splitlines()
    flush, refill = lines.index(f"flush table inet {TABLE}"), lines.index(f"table inet {TABLE} {{", 1)
    assert lines[0] == f"table inet {TABLE} {{" and flush < refill  # declared, emptied, filled
    assert [line for line in lines if line.startswith("delete")] == [
        f"delete chain inet {TABLE} {chain_name(dns)}", f"delete map inet {TABLE} {chain_name(dns)}_to",
        f"delete set inet {TABLE} {chain_name(dns)}_from"]
    assert f"  chain {chain_name(dns)} {{ }}" in lines[:flush]  # declared first: removed whether or not it is there
    standing = render(SteeringPlan(), standing=True)
    assert "chain prerouting {" in standing and "elements" not in standing  # hooked, with nothing in its maps


def test_nothing_steered_removes_the_table() -> None:
    assert render(SteeringPlan()) == f"table inet {TABLE}\ndelete table inet {TABLE}\n"


def test_slice_targets_keep_ready_endpoints_with_an_address_of_the_slice_type() -> None:
    found = slice_targets({"addressType": "IPv4", "ports": [{"name": "http", "port": 8080}, {"port": "x"}],
                           "endpoints": [{"nodeName": "n1"}, {"nodeName": "n2", "conditions": {"ready": False}},
                                         {"nodeName": "n3"}, {"nodeName": "n4"}],
                           "addresses": ["198.19.1.5", "198.19.2.5", "2001:db8::1", None]})
    assert found is not None and list(found.endpoints()) == [("n1", "198.19.1.5")]
    assert found.port("http", "TCP") == 8080 and found.port("http", "UDP") is None
    assert slice_targets({"addressType": "FQDN", "endpoints": [{"nodeName": "n1"}], "addresses": ["a.example"]}) is None
    assert slice_targets({"addressType": "IPv4", "endpoints": [], "addresses": []}) is None
    assert service_ports({"spec": {"ports": [{"port": 80}, {"name": "dns", "protocol": "UDP", "port": 53},
                                             {"port": True}]}}) == (("", "TCP", 80), ("dns", "UDP", 53))


def snapshot(alive: tuple[str, ...]) -> Snapshot:
    """Three nodes, a Cluster Service announced here."""
    nodes = {n: NodeInfo(n, addresses=(f"192.0.2.{i}",)) for i, n in enumerate(POD, 1)}
    return Snapshot({"ns/web": svc()}, nodes, frozenset(alive), (), {"p": {}})


def steer(steerer: Steerer, alive: tuple[str, ...], slices: list[SliceTargets] | None = None) -> SteeringPlan:
    """One pass of STEERER over `snapshot(ALIVE)`, VIP4 announced, the Service's slices SLICES."""
    now = snapshot(alive)
    found = [targets()] if slices is None else slices
    return steerer.update(now, pairs_from(now, [VIP4]), lambda _: PORTS, lambda _: found)


def test_only_a_death_the_data_path_confirms_is_steered_around_and_a_return_ends_it() -> None:
    answering = {"192.0.2.1": True, "192.0.2.2": True, "192.0.2.3": False}  # n3's host is gone

    async def check(address: str, port: int, timeout: float) -> bool:
        return answering[address]

    async def scenario() -> list[tuple[SteeringReason, frozenset[tuple[str, int]]]]:
        steerer = Steerer(SteeringSettings(), lambda: None)  # its table is wanted, never applied here
        steerer.confirmer.check = check
        seen = []
        for alive in (("n2", "n3"),  # n1 never heard: not dead, and never probed
                      ("n1", "n2", "n3"),
                      ("n1", "n3"),  # n2 silent, but its host answers: a frozen speaker, not a dead node
                      ("n1", "n2"),  # n3 silent and its host gone: confirmed
                      ("n1", "n2", "n3")):  # n3 back in the mesh: at once, whatever the probe said
            steer(steerer, alive)
            await asyncio.sleep(0.05)  # the probes run
            result = steer(steerer, alive)
            seen.append((result.reasons["ns/web"], frozenset(t for st in result.steers for t in st.targets)))
        await steerer.close()
        return seen

    seen = asyncio.run(scenario())
    live = frozenset({("198.19.1.5", 8080), ("198.19.2.5", 8080)})
    assert seen == [(S.NOT_NEEDED, frozenset()), (S.NOT_NEEDED, frozenset()), (S.NOT_NEEDED, frozenset()),
                    (S.STEERED, live), (S.NOT_NEEDED, frozenset())]


def test_a_service_stays_steered_for_the_hand_over_after_kubernetes_drops_the_dead_endpoint() -> None:
    answering = {"192.0.2.1": True, "192.0.2.2": True, "192.0.2.3": False}
    without_n3 = targets({"n1": POD["n1"], "n2": POD["n2"]})

    async def check(address: str, port: int, timeout: float) -> bool:
        return answering[address]

    async def scenario() -> list[tuple[SteeringReason, int]]:
        passes = asyncio.Event()
        steerer = Steerer(SteeringSettings(handover_s=0.3), passes.set)
        steerer.confirmer.check = check
        seen = []

        async def step(slices: list[SliceTargets]) -> None:
            result = steer(steerer, ("n1", "n2"), slices)
            seen.append((result.reasons["ns/web"], len(result.steers)))

        steer(steerer, ("n1", "n2", "n3"))
        await step([targets()])
        await asyncio.sleep(0.05)  # n3 confirmed dead
        await step([targets()])  # steered around n3
        await step([without_n3])  # n3's endpoint no longer ready: kube-proxy may still use it for a moment
        passes.clear()
        await asyncio.wait_for(passes.wait(), timeout=2)  # the hand-over's end asks for a pass
        await step([without_n3])
        await steerer.close()
        return seen

    assert asyncio.run(scenario()) == [(S.NOT_NEEDED, 0), (S.STEERED, 1), (S.STEERED, 1), (S.NOT_NEEDED, 0)]


def test_without_net_admin_every_service_says_disabled_and_no_table_is_wanted() -> None:
    steerer = Steerer(SteeringSettings(enabled=False), lambda: None)
    steer(steerer, tuple(POD))
    result = steer(steerer, ("n1", "n2"))
    assert result == SteeringPlan((), {"ns/web": S.DISABLED})
    assert steerer.nftables._wanted == steerer.nftables.remove


def test_the_flows_to_a_dead_pod_are_forgotten_once_and_only_after_the_table_steering_around_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[tuple[str, str | None]] = []

    async def forget(address: str, conntrack: str = "conntrack") -> bool:
        forgotten.append((address, steerer.nftables.applied))
        return True

    async def check(address: str, port: int, timeout: float) -> bool:
        return address != "192.0.2.3"

    monkeypatch.setattr("ironlb.speaker.control.steer.steerer.forget_flows", forget)
    steerer = Steerer(SteeringSettings(), lambda: None)
    steerer.confirmer.check = check

    async def scenario() -> None:
        steer(steerer, tuple(POD))
        for _ in range(3):  # n3 dies; passes come and go while it stays dead
            steer(steerer, ("n1", "n2"))
            await asyncio.sleep(0.02)
        assert forgotten == []  # nothing before the table is in
        await steerer.nftables.apply(steerer.nftables._wanted)  # as the programmer would
        await asyncio.sleep(0.01)
        await steerer.close()

    steerer.nftables.nft = "true"  # the script "applies": no kernel here
    asyncio.run(scenario())
    assert [a for a, _ in forgotten] == ["198.19.3.5"]
    assert forgotten[0][1] is not None and "198.19.1.5 . 8080" in forgotten[0][1]  # after the steering table


def test_the_steerer_removes_a_steer_that_ended_until_a_script_without_it_is_applied() -> None:
    async def check(address: str, port: int, timeout: float) -> bool:
        return address != "192.0.2.3"

    async def scenario() -> list[bool]:
        steerer = Steerer(SteeringSettings(), lambda: None)
        steerer.confirmer.check = check
        steerer.nftables.nft = "true"  # the script "applies": no kernel here
        removes = []
        steer(steerer, tuple(POD))
        steer(steerer, ("n1", "n2"))
        await asyncio.sleep(0.05)  # n3 confirmed dead
        assert steer(steerer, ("n1", "n2")).steers
        await steerer.nftables.apply(steerer.nftables._wanted)
        for _ in range(2):  # n3 back: nothing steered, and its steer removed until a script without it is in
            steer(steerer, tuple(POD))
            removes.append("delete chain" in steerer.nftables._wanted)
            await steerer.nftables.apply(steerer.nftables._wanted)
        await steerer.close()
        return removes

    assert asyncio.run(scenario()) == [True, False]
