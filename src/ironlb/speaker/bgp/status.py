"""Session state read from bgpd (`show bgp vrf all neighbors json`), parsed straight into the API's words
(ironlb.api.bgp_status, ironlb.api.reasons): the status object, the metrics and the doctor read the same enums."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ironlb.api.bgp_status import BFDState, SessionState
from ironlb.api.reasons import BGPSessionReason
from ironlb.speaker.bgp.render import DESCRIPTION

# bgpd's states that RFC 4271's machine lacks (a session being torn down) read as Idle.
STATES = {s.value: s for s in SessionState}
BFD_STATES = {s.value: s for s in (BFDState.UP, BFDState.DOWN, BFDState.INIT, BFDState.ADMIN_DOWN)}

# bgpd's peer_down_str indices (bgpd/bgp_fsm.c) in the API's words; a code not listed is a reset.
RESET_CODES = {2: BGPSessionReason.ADMIN_SHUTDOWN, 3: BGPSessionReason.ADMIN_SHUTDOWN,
               11: BGPSessionReason.ADMIN_SHUTDOWN, 12: BGPSessionReason.ADMIN_SHUTDOWN,
               13: BGPSessionReason.NOTIFICATION_RECEIVED, 14: BGPSessionReason.NOTIFICATION_SENT,
               15: BGPSessionReason.CONNECTION_RESET, 16: BGPSessionReason.ADMIN_SHUTDOWN,
               21: BGPSessionReason.ADMIN_SHUTDOWN, 24: BGPSessionReason.BFD_DOWN,
               25: BGPSessionReason.CONNECT_FAILED, 27: BGPSessionReason.CONNECT_FAILED,
               32: BGPSessionReason.CONNECT_FAILED, 34: BGPSessionReason.CONNECT_FAILED}
# Codes bgpd sets while a session comes up, not when one goes down (bgp_nht.c: no route to the peer yet; a route,
# and no OPEN from the peer yet): an error only while the session is not up. A session that never went down
# keeps the second one once Established.
COMING_UP_CODES = frozenset({27, 32})


@dataclass(frozen=True)
class Session:
    """One neighbor's session as bgpd reports it."""

    peer: str  # IronLB's peer name ('' for a neighbor IronLB did not configure)
    neighbor: str
    vrf: str
    state: SessionState
    bfd: BFDState  # Off when the peer has no BFD profile; Down when bfdd says nothing IronLB knows
    hold_time_ms: int
    keepalive_ms: int
    prefixes_sent: int
    established_count: int
    last_error: BGPSessionReason | None  # None: the session never went down
    last_error_text: str  # FRR's words, for people
    updates_sent: int = 0
    out_queue: int = 0


def sessions(neighbors_json: str) -> list[Session]:
    """The sessions in the output of `show bgp vrf all neighbors json`."""
    out = []
    for vrf_name, vrf in json.loads(neighbors_json or "{}").items():
        for neighbor, info in vrf.items():
            if isinstance(info, dict):
                out.append(_session("" if vrf_name == "default" else vrf_name, neighbor, info))
    return sorted(out, key=lambda s: (s.vrf, s.neighbor))


def _session(vrf: str, neighbor: str, info: dict) -> Session:
    description = str(info.get("nbrDesc", ""))
    bfd_info = info.get("peerBfdInfo")
    bfd = BFDState.OFF if bfd_info is None else BFD_STATES.get(bfd_info.get("status", ""), BFDState.DOWN)
    families = info.get("addressFamilyInfo", {}).values()
    stats = info.get("messageStats", {})
    state = STATES.get(info.get("bgpState", ""), SessionState.IDLE)
    code = int(info.get("lastResetCode", 0))
    if code in COMING_UP_CODES and state is SessionState.ESTABLISHED:
        code = 0
    text = " ".join(str(t) for t in (info.get("lastResetDueTo", ""), info.get("lastNotificationReason", "")) if t)
    return Session(
        peer=description[len(DESCRIPTION):] if description.startswith(DESCRIPTION) else "",
        neighbor=neighbor, vrf=vrf, state=state, bfd=bfd,
        hold_time_ms=int(info.get("bgpTimerHoldTimeMsecs", 0)),
        keepalive_ms=int(info.get("bgpTimerKeepAliveIntervalMsecs", 0)),
        prefixes_sent=sum(int(f.get("sentPrefixCounter", 0)) for f in families),
        established_count=int(info.get("connectionsEstablished", 0)),
        last_error=RESET_CODES.get(code, BGPSessionReason.CONNECTION_RESET) if code else None, last_error_text=text,
        updates_sent=int(stats.get("updatesSent", 0)), out_queue=int(stats.get("depthOutq", 0)))
