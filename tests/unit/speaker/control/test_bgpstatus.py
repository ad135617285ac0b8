"""BGPNodeStatus from FRR's sessions: the words mapped, a session's error kept until another comes, and the object
written on change only, at most once a second."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ironlb.api.bgp_status import BFDState, NodeBGPStatus, SessionState
from ironlb.api.reasons import BGPDaemonReason, BGPSessionReason
from ironlb.core.bgp.model import Announcement, Desired, Peer
from ironlb.speaker.bgp.component import FrrState
from ironlb.speaker.bgp.status import Session
from ironlb.speaker.control.bgpstatus import NodeStatusWriter, session_status

TOR = Peer("tor", 64513, 64512, address="192.0.2.254", router_id="192.0.2.11")
DESIRED = Desired.of([TOR], announcements=[Announcement("203.0.113.1/32", frozenset({"tor"})),
                                           Announcement("2001:db8::1/128", frozenset({"tor"}))])


def session(state: SessionState = SessionState.ESTABLISHED, sent: int = 2, error: BGPSessionReason | None = None,
            count: int = 1, bfd: BFDState = BFDState.UP) -> Session:
    return Session("tor", "192.0.2.254", "", state, bfd, 9000, 3000, sent, count, error, "words")


@pytest.mark.parametrize(("frr", "state", "hold", "v4", "v6"), [
    (session(), SessionState.ESTABLISHED, 9, 1, 1),
    (session(sent=1), SessionState.ESTABLISHED, 9, 0, 1),
    (session(SessionState.ACTIVE, sent=0), SessionState.ACTIVE, None, 0, 0),
    (session(SessionState.IDLE, sent=0), SessionState.IDLE, None, 0, 0),
    (None, SessionState.IDLE, None, 0, 0),
])
def test_a_session_in_the_status_words(frr: Session | None, state: SessionState, hold: int | None, v4: int,
                                       v6: int) -> None:
    out = session_status("tor", frr, "t0", None, 1)
    assert (out.state, out.hold_time_s, out.prefixes_sent_ipv4, out.prefixes_sent_ipv6) == (state, hold, v4, v6)
    assert out.bfd is (BFDState.UP if frr else BFDState.OFF)


@dataclass
class Component:
    frr: FrrState = FrrState.IN_SYNC
    sessions: list[Session] = field(default_factory=list)


class Api:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    def get(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"metadata": {"uid": "node-uid"}}

    def request(self, method: str, path: str, params: dict[str, Any], *, body: Any, **_: Any) -> dict[str, Any]:
        assert method == "PATCH" and path.endswith("/bgpnodestatuses/n1") and params["fieldManager"]
        self.applied.append(body)
        return {}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_written_on_change_and_at_most_once_a_second() -> None:
    api, component, clock = Api(), Component(sessions=[session(SessionState.ACTIVE, sent=0)]), Clock()
    writer = NodeStatusWriter(api, "n1", component, lambda: DESIRED, clock)  # type: ignore[arg-type]
    assert await writer.tick()
    assert not await writer.tick()  # nothing changed
    component.sessions = [session()]
    clock.now += 0.5
    assert not await writer.tick()  # changed, but the last write is half a second old
    clock.now += 0.5
    assert await writer.tick()
    status = NodeBGPStatus.from_object(api.applied[-1])
    assert status.established == 1 and status.session("tor").prefixes_sent_ipv6 == 1  # type: ignore[union-attr]
    assert api.applied[-1]["metadata"]["ownerReferences"][0]["uid"] == "node-uid"
    assert len(api.applied) == 2


async def test_an_error_is_kept_with_its_time_and_frr_unreachable_is_said() -> None:
    component, clock = Component(sessions=[session(SessionState.ACTIVE, 0, BGPSessionReason.BFD_DOWN)]), Clock()
    writer = NodeStatusWriter(Api(), "n1", component, lambda: DESIRED, clock)  # type: ignore[arg-type]
    first = writer.current().sessions[0].last_error
    assert first is not None and first.reason is BGPSessionReason.BFD_DOWN
    assert writer.current().sessions[0].last_error == first  # the same error: the same record, the same time
    component.frr, component.sessions = FrrState.UNREACHABLE, []
    status = writer.current()
    assert status.sessions[0].state is SessionState.IDLE
    assert status.conditions[0]["reason"] == BGPDaemonReason.UNREACHABLE.value
    assert status.conditions[0]["status"] == "False"


async def test_nothing_is_written_before_frrs_state_is_known() -> None:
    api, component = Api(), Component(frr=FrrState.STARTING, sessions=[session()])
    writer = NodeStatusWriter(api, "n1", component, lambda: Desired(), Clock())  # type: ignore[arg-type]
    assert not await writer.tick() and api.applied == []  # a restarted speaker before the feed's first update
    component.frr = FrrState.IN_SYNC
    assert await writer.tick()
