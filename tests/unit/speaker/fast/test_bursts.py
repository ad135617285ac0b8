"""Gratuitous bursts, paced: thousands of IPs taken at once never hold the loop for all of their frames."""

from __future__ import annotations

import asyncio

from e2e.probes import asker
from ironlb.speaker.fast.announcer import PACE_BATCH, Announcer
from ironlb.speaker.state.desired import ALL_INTERFACES
from tests.unit.speaker.control.test_reannounce import IFACES, announcer


async def test_five_hundred_ips_taken_at_once_go_out_a_batch_per_turn() -> None:
    ann, ios = announcer()
    ips = [f"{net}.{i}" for net in ("203.0.113", "198.51.100") for i in range(1, 255)]  # the lab's pool ranges
    ann.apply({ip: frozenset({"eth0"}) for ip in ips}, IFACES)
    arp = ios["eth0"][0]
    per_turn: list[int] = []
    while ann.bursts.queue:
        before = len(arp.sent)
        await asyncio.sleep(0)
        per_turn.append(len(arp.sent) - before)
    assert max(per_turn) <= PACE_BATCH
    sent = [asker.parse_arp(f).target_ip for f in arp.sent]
    assert sorted(sent) == sorted(ips * 3)  # every IP its whole burst, nothing twice more


async def test_an_ip_given_up_mid_burst_is_not_announced_again() -> None:
    ann, ios = announcer()
    ann.apply({"203.0.113.10": ALL_INTERFACES, "203.0.113.11": ALL_INTERFACES}, IFACES)
    await asyncio.sleep(0.01)  # first frames out
    ann.apply({"203.0.113.11": ALL_INTERFACES}, IFACES)
    await asyncio.wait_for(ann.bursts.task, 2)  # type: ignore[arg-type]
    sent = [asker.parse_arp(f).target_ip for f in ios["eth0"][0].sent]
    assert sent.count("203.0.113.10") == 1 and sent.count("203.0.113.11") == 3


async def test_closing_stops_the_bursts() -> None:
    ann: Announcer
    ann, _ = announcer()
    ann.apply({"203.0.113.10": ALL_INTERFACES}, IFACES)
    tasks = ann.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert not ann.bursts.queue and all(t.done() for t in tasks)
