"""`ironlb doctor`'s BGP links, a scenario table over plain objects: advertisement -> nodes -> sessions -> sent,
the first broken one with its reason enum and exit code; a Service only BGP announces skips L2's own links."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ironlb.api.bgp_status import BFDState, NodeBGPStatus, SessionState, SessionStatus
from ironlb.api.conditions import bgp_announced_part
from ironlb.api.reasons import BGPAnnounceReason, BGPDrainReason
from ironlb.cli.doctor.chain import diagnose
from ironlb.cli.doctor.model import BgpLinkId, LinkId, Mark
from ironlb.cli.doctor.render import as_json, human
from tests.unit.cli.doctor_facts import NODES, VIP, edited

T0 = "2026-01-01T00:00:00Z"
Edit = Callable[[dict[str, Any]], None]


def session(state: SessionState = SessionState.ESTABLISHED, bfd: BFDState = BFDState.UP, sent: int = 1
            ) -> SessionStatus:
    return SessionStatus("tor", state, T0, peer_address="198.18.36.1", bfd=bfd, prefixes_sent_ipv4=sent)


def bgp(facts: dict[str, Any], l2: bool = False) -> None:
    """BGP mode: a peer and an advertisement of pool-a on every node, sessions up, the condition written."""
    facts["bgpPeers"] = [{"metadata": {"name": "tor"}, "spec": {"myASN": 64513, "peerASN": 64512,
                                                                  "peerAddress": "198.18.36.1"}}]
    facts["bgpAdvertisements"] = [{"metadata": {"name": "bgp-a"}, "spec": {"ipAddressPools": ["pool-a"]}}]
    facts["bgpNodeStatuses"] = [NodeBGPStatus(n, (session(),)).to_object() for n in NODES]
    if not l2:
        facts["advertisements"] = []
    facts["service"]["status"]["conditions"].append({
        "type": "ironlb.io/BGPAnnounced", "status": "True", "reason": "Advertised",
        "message": "; ".join(bgp_announced_part(VIP, n, ("tor",)) for n in NODES)})


def sessions(s: SessionStatus) -> Edit:
    def edit(facts: dict[str, Any]) -> None:
        facts["bgpNodeStatuses"] = [NodeBGPStatus(n, (s,)).to_object() for n in NODES]
    return edit


def spec(kind: str, **fields: Any) -> Edit:
    def edit(facts: dict[str, Any]) -> None:
        facts[kind][0]["spec"].update(fields)
    return edit


def no_condition(facts: dict[str, Any]) -> None:
    facts["service"]["status"]["conditions"] = [c for c in facts["service"]["status"]["conditions"]
                                                if c["type"] != "ironlb.io/BGPAnnounced"]


@pytest.mark.parametrize(("case", "edits", "broken", "reason"), [
    ("healthy", [], None, None),
    ("pool not covered", [spec("bgpAdvertisements", ipAddressPools=["other"])], BgpLinkId.ADVERTISEMENT,
     BGPAnnounceReason.NO_BGP_ADVERTISEMENT),
    ("no node selected", [spec("bgpPeers", nodeSelectors=[{"matchLabels": {"rack": "none"}}])], BgpLinkId.NODES,
     BGPAnnounceReason.NO_ANNOUNCING_NODE),
    ("sessions down", [sessions(session(SessionState.ACTIVE, sent=0))], BgpLinkId.SESSIONS,
     BGPAnnounceReason.NO_ESTABLISHED_SESSION),
    ("BFD down", [sessions(session(bfd=BFDState.DOWN))], BgpLinkId.SESSIONS,
     BGPAnnounceReason.NO_ESTABLISHED_SESSION),
    ("nothing sent", [sessions(session(sent=0))], BgpLinkId.SENT, BGPAnnounceReason.ADVERTISED),
    ("no speaker said it", [no_condition], BgpLinkId.SENT, BGPAnnounceReason.NO_ESTABLISHED_SESSION),
])
def test_the_first_broken_bgp_link_its_reason_and_exit_code(case: str, edits: list[Edit], broken: BgpLinkId | None,
                                                            reason: BGPAnnounceReason | None) -> None:
    report = diagnose(edited(bgp, *edits))
    failed = report.bgp_failed
    assert (failed.id if failed else None, failed.reason if failed else None) == (broken, reason), case
    if broken is BgpLinkId.ADVERTISEMENT:  # neither mode covers the pool: L2's link 3 is broken too, and first
        assert report.failed is not None and report.exit_code == LinkId.ADVERTISEMENT.exit_code
        return
    assert report.failed is None, case  # L2's chain holds: its own links are skipped, endpoints checked
    assert [link.mark for link in report.links if link.id in (LinkId.ADVERTISEMENT, LinkId.ANNOUNCER)] == [
        Mark.NOT_CHECKED, Mark.NOT_CHECKED]
    assert report.exit_code == (broken.exit_code if broken else 0)
    if broken is not None:
        assert f"broken at BGP link {broken.value}" in human(report) and failed is not None and failed.fix


def test_without_bgp_objects_there_are_no_bgp_links_and_l2_is_walked_as_before() -> None:
    report = diagnose(edited())
    assert report.bgp == () and report.links[2].mark is Mark.OK


def test_l2_and_bgp_together_walk_both_and_say_the_reasons_in_json() -> None:
    report = diagnose(edited(lambda f: bgp(f, l2=True)))
    assert report.links[2].mark is Mark.OK and [link.mark for link in report.bgp] == [Mark.OK] * 4
    assert '"reason": "Advertised"' in as_json(report)


def draining(*nodes: str) -> Edit:
    """The speakers' condition marks NODES as draining (cordoned); all of them: the reason Draining."""
    def edit(facts: dict[str, Any]) -> None:
        (cond,) = [c for c in facts["service"]["status"]["conditions"] if c["type"] == "ironlb.io/BGPAnnounced"]
        cond["message"] = "; ".join(bgp_announced_part(VIP, n, ("tor",), BGPDrainReason.CORDONED if n in nodes
                                                       else None) for n in NODES)
        if set(nodes) >= set(NODES):
            cond["reason"] = BGPAnnounceReason.DRAINING.value
    return edit


@pytest.mark.parametrize(("nodes", "reason"), [
    (NODES[:1], BGPAnnounceReason.ADVERTISED),
    (NODES, BGPAnnounceReason.DRAINING),  # still sent, less preferred: not a broken link
])
def test_draining_nodes_are_named_and_still_carry(nodes: tuple[str, ...] | list[str], reason: BGPAnnounceReason
                                                  ) -> None:
    report = diagnose(edited(bgp, draining(*nodes)))
    assert report.bgp_failed is None and report.bgp[-1].reason is reason
    named = next(link for link in report.bgp if link.id is BgpLinkId.NODES).summary
    assert all(f"{n} (draining: Cordoned)" in named for n in nodes)
    assert all(f"{n} (draining" not in named for n in NODES if n not in nodes)
