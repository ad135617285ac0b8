"""bgpd's route-map delay timer against a real FRR: FRR's default (5 s) holds a new neighbor's routes and every
prefix-list change that long; the driver sets it to ROUTE_MAP_DELAY_S with the first router."""

from __future__ import annotations

import time

import pytest

from ironlb.core.bgp.model import ROUTE_MAP_DELAY_S, Announcement, Desired, Peer
from ironlb.speaker.bgp.driver import FrrDriver
from tests.privileged.speaker.bgp.frrpair import NODE_ASN, ROUTER_ASN, Pair, wait_for
from tests.privileged.speaker.bgp.test_frr_driver import ATTRS, PEER, PROFILE, VIP, VIP2, desired, established

pytestmark = pytest.mark.privileged

FRR_DEFAULT_DELAY_S = 5
# A second peer of the VRF that never comes up: a prefix given to it alone is an exclusion of PEER's.
ABSENT = Peer("absent", NODE_ASN, ROUTER_ASN, address="198.18.39.3", hold_time_s=3, connect_time_s=1)


async def _routed(pair: Pair, prefix: str) -> bool:
    return bool((await pair.router_path(prefix)).get("paths"))


async def test_a_fresh_bgpd_gets_its_routes_to_the_router_well_before_frrs_default_delay(pair: Pair) -> None:
    pair.node.stop()
    pair.node.start_all()  # empty, as a restarted frr container's
    driver = FrrDriver(pair.node.dir)
    try:
        start = time.monotonic()
        await driver.apply(desired(VIP))
        await wait_for(lambda: _routed(pair, VIP), timeout=15, period=0.02)
        took = time.monotonic() - start
        print(f"\nwhole config into a fresh bgpd: {VIP} at the router after {took:.2f} s")
        assert took < FRR_DEFAULT_DELAY_S - 2, took
        await wait_for(lambda: established(driver))  # BFD up too, in bgpd's view
        assert f"bgp route-map delay-timer {ROUTE_MAP_DELAY_S}" in await pair.node.show("bgpd", "show running-config")
        assert (await driver.read_back()).route_map_delay_s == ROUTE_MAP_DELAY_S
    finally:
        await driver.apply(Desired())
        driver.close()
    # The last router gone, FRR's default is back: nothing of IronLB's stays in bgpd.
    assert "delay-timer" not in await pair.node.show("bgpd", "show running-config")


def _with_exclusion(excluded: bool) -> Desired:
    """VIP to PEER and ABSENT, or to ABSENT alone (EXCLUDED: in PEER's exclusion list); VIP2 to PEER."""
    to = frozenset({"absent"} if excluded else {"rtr", "absent"})
    return Desired.of([PEER, ABSENT], [PROFILE], [Announcement(VIP, to, ATTRS),
                                                  Announcement(VIP2, frozenset({"rtr"}), ATTRS)])


async def test_an_exclusion_reaches_the_router_within_the_drivers_delay(pair: Pair) -> None:
    """A prefix a peer stops getting while another keeps it is a prefix-list change: bgpd applies some at once and
    others when its delay timer runs out (at 0, on FRR 8.4, an added exclusion never): the time until the router
    loses it, and gets it back."""
    driver = FrrDriver(pair.node.dir)
    took = []
    try:
        await driver.apply(_with_exclusion(False))
        await wait_for(lambda: _routed(pair, VIP), timeout=15)
        for excluded in (True, False, True, False):
            start = time.monotonic()
            await driver.apply(_with_exclusion(excluded), touched={VIP})

            async def changed(excluded: bool = excluded) -> bool:
                return await _routed(pair, VIP) != excluded
            await wait_for(changed, timeout=15, period=0.02)
            took.append(time.monotonic() - start)
    finally:
        await driver.apply(Desired())
        driver.close()
    print(f"\nexclusion added / removed: at the router after {[round(t, 2) for t in took]} s")
    assert max(took) < FRR_DEFAULT_DELAY_S - 2, took
