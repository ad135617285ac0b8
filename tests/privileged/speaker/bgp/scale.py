"""Measure the driver at scale on the privileged harness (root): `python -m tests.privileged.speaker.bgp.scale N`.

One node's FRR driven by FrrDriver, one router, one peer: N VIPs applied in one batch, until the router's RIB
holds them all; a restarted driver's read-back and diff at N; one withdraw among N; the node's bgpd RSS. It
leaves out several nodes, the router's FIB, and a router that is not FRR.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time

from ironlb.core.bgp.model import Announcement, Attributes, Desired
from ironlb.speaker.bgp.driver import FrrDriver
from tests.privileged.speaker.bgp.frrpair import frr_pair, wait_for
from tests.privileged.speaker.bgp.test_frr_driver import PEER, PROFILE, established


async def measure(count: int) -> None:
    """Print the figures for COUNT VIPs."""
    base = int(ipaddress.ip_address("198.18.40.0"))
    anns = [Announcement(f"{ipaddress.ip_address(base + i)}/32", frozenset({"rtr"}), Attributes.of(
        communities=["65000:1"])) for i in range(count)]
    with frr_pair() as pair:
        driver, restarted = FrrDriver(pair.node.dir), FrrDriver(pair.node.dir)
        try:
            await driver.apply(Desired.of([PEER], [PROFILE]))
            await wait_for(lambda: established(driver))
            start = time.monotonic()
            await driver.apply(Desired.of([PEER], [PROFILE], anns))
            applied = time.monotonic()

            async def all_in() -> bool:
                summary = await pair.router.json("bgpd", "show bgp ipv4 unicast summary json")
                return next(iter(summary.get("peers", {}).values()), {}).get("pfxRcd", 0) >= count
            await wait_for(all_in, timeout=300, period=0.2)
            received = time.monotonic()
            print(f"{count} VIPs: batch {applied - start:.2f} s, all in the router's RIB {received - start:.2f} s")
            start = time.monotonic()
            changes = await restarted.apply(Desired.of([PEER], [PROFILE], anns))
            print(f"restarted driver: read-back and diff {time.monotonic() - start:.2f} s, {len(changes)} changes")
            start = time.monotonic()
            await driver.apply(Desired.of([PEER], [PROFILE], anns[1:]), touched={anns[0].prefix})
            print(f"one withdraw among {count}: batch {(time.monotonic() - start) * 1000:.1f} ms")
            with open(f"{pair.node.dir}/bgpd.pid") as f, open(f"/proc/{int(f.read())}/status") as status:
                rss = next(line for line in status if line.startswith("VmRSS")).split()[1]
            print(f"node bgpd RSS {int(rss) // 1024} MiB")
        finally:
            driver.close()
            restarted.close()


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10000))
