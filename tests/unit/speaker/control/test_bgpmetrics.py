"""BGP mode's metrics: per peer, in the API's words, 1 on the current state only; FRR up; updates and their time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ironlb.api.bgp_status import BFDState, SessionState
from ironlb.api.reasons import BGPSessionReason
from ironlb.speaker.bgp.component import FrrState
from ironlb.speaker.bgp.driver import ApplyStats
from ironlb.speaker.control.bgpmetrics import bgp_families
from ironlb.speaker.control.bgpstatus import NodeStatusWriter
from tests.unit.speaker.control.test_bgpstatus import DESIRED, Api, Component, session


class Collector:
    def __init__(self, sp: Any) -> None:
        self.sp = sp

    def collect(self) -> Any:
        return bgp_families(self.sp)


def scrape(sp: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(Collector(sp))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_sessions_frr_and_updates() -> None:
    component = Component(sessions=[session(SessionState.ACTIVE, sent=0, error=BGPSessionReason.BFD_DOWN,
                                            bfd=BFDState.DOWN)])
    stats = ApplyStats()
    stats.observe(0.003, True)
    stats.observe(0.2, False)
    sp = SimpleNamespace(bgp_status=NodeStatusWriter(Api(), "n1", component, lambda: DESIRED),  # type: ignore
                         bgp=SimpleNamespace(driver=SimpleNamespace(driver=SimpleNamespace(stats=stats))))
    got = scrape(sp)
    state = {dict(k)["state"]: v for (n, k), v in got.items() if n == "ironlb_speaker_bgp_session_state"}
    assert state == {s.value: (1.0 if s is SessionState.ACTIVE else 0.0) for s in SessionState}
    assert got[("ironlb_speaker_bgp_bfd_state", (("peer", "tor"), ("state", "Down")))] == 1
    assert got[("ironlb_speaker_bgp_session_last_error", (("peer", "tor"), ("reason", "BFDDown")))] == 1
    assert got[("ironlb_speaker_bgp_frr_up", ())] == 1
    assert got[("ironlb_speaker_bgp_daemon_state", (("reason", "DaemonReady"),))] == 1
    assert got[("ironlb_speaker_bgp_updates_total", (("outcome", "applied"),))] == 1
    assert got[("ironlb_speaker_bgp_update_seconds_bucket", (("le", "0.005"),))] == 1
    assert got[("ironlb_speaker_bgp_update_seconds_bucket", (("le", "+Inf"),))] == 2
    component.frr = FrrState.UNREACHABLE
    assert scrape(sp)[("ironlb_speaker_bgp_frr_up", ())] == 0


def test_without_bgp_mode_the_families_are_empty() -> None:
    assert scrape(SimpleNamespace()) == {}
