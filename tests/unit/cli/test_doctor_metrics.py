"""The speaker's metrics as `ironlb doctor` reads them: its table per IP, its answers per interface."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import generate_latest

from ironlb.cli.doctor.chain import diagnose
from ironlb.cli.doctor.gather import parse_metrics
from ironlb.cli.doctor.model import Mark
from ironlb.speaker.control.fastproc import Heard
from ironlb.speaker.control.metrics import registry_for
from ironlb.speaker.control.steer import SteeringSettings
from ironlb.speaker.control.steer.steerer import Steerer
from ironlb.speaker.fast.l2.responder import Stats
from ironlb.speaker.fast.liveness.transport import Counters
from ironlb.speaker.fast.messages import FastStats
from tests.unit.cli.doctor_facts import NODES, VIP, edited


def fake_speaker(owned: dict[str, frozenset[str]]) -> SimpleNamespace:
    """Just what the collector reads from a speaker (its fast plane's reports: announcements and counters)."""
    stats = FastStats(counters=Counters(sent=1, received=2),
                      responders={name: Stats(requests=9, replies=7, gratuitous=3) for name in owned})
    fast = SimpleNamespace(announcements=lambda: owned, alive=frozenset(NODES), stats=stats, refused=dict,
                           membership=Heard())
    return SimpleNamespace(
        fast=fast, duplicates={},
        status=SimpleNamespace(events=SimpleNamespace(stats=lambda: {})),
        forwarding=None, health=SimpleNamespace(failing=set()), nftables=SimpleNamespace(last_error=None),
        steerer=Steerer(SteeringSettings(), lambda: None))


def scraped(owned: dict[str, frozenset[str]]) -> dict:
    return parse_metrics(generate_latest(registry_for(lambda: fake_speaker(owned))).decode())


def test_the_speaker_exports_each_announced_ip_per_interface() -> None:
    parsed = scraped({"eth0": frozenset({VIP, "2001:db8::10"}), "eth1": frozenset({VIP})})
    table = sorted((s["labels"]["ip"], s["labels"]["interface"]) for s in parsed["samples"]
                   if s["name"] == "ironlb_speaker_announcing")
    assert table == [("2001:db8::10", "eth0"), (VIP, "eth0"), (VIP, "eth1")]
    assert "ironlb_speaker_announcing" in parsed["families"]


def test_doctor_reads_a_real_scrape() -> None:
    node = "node-2"
    facts = edited(lambda f: f.update(speakers={node: scraped({"eth0": frozenset({VIP})})}), announcer=node)
    report = diagnose(facts)
    assert report.links[5].mark is Mark.OK and report.links[5].summary == f"{VIP} in {node}'s table on eth0"
    assert report.links[5].details == (f"{node}/eth0: 7 ARP/NDP replies, 3 gratuitous announcements sent "
                                       "(counted per interface, not per IP)",)
    empty = diagnose(edited(lambda f: f.update(speakers={node: scraped({})}), announcer=node))
    assert empty.failed is not None and empty.failed.id.value == 6
