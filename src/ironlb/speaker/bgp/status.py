"""Session state read from bgpd (`show bgp vrf all neighbors json`): typed, for the status object and metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from ironlb.speaker.bgp.render import DESCRIPTION


class SessionState(Enum):
    """A BGP session's FSM state, plus UNREACHABLE when bgpd itself cannot be asked."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"
    CLEARING = "Clearing"
    DELETED = "Deleted"
    UNREACHABLE = "Unreachable"
    OTHER = "Other"


class BfdState(Enum):
    """BFD's view of the session's path (NOT_CONFIGURED when the peer has no BFD profile)."""

    UP = "Up"
    DOWN = "Down"
    INIT = "Init"
    ADMIN_DOWN = "AdminDown"
    UNKNOWN = "Unknown"
    NOT_CONFIGURED = "NotConfigured"


class LastError(Enum):
    """Why the session last went down, from bgpd's reset code (bgpd/bgpd.h, PEER_DOWN_*)."""

    NONE = "None"
    ADMIN_SHUTDOWN = "AdminShutdown"
    NOTIFICATION_RECEIVED = "NotificationReceived"
    NOTIFICATION_SENT = "NotificationSent"
    PEER_CLOSED = "PeerClosed"
    NEIGHBOR_DELETED = "NeighborDeleted"
    BFD_DOWN = "BfdDown"
    INTERFACE_DOWN = "InterfaceDown"
    NO_PATH = "NoPath"
    CONFIG_CHANGED = "ConfigChanged"
    WAITING_FOR_OPEN = "WaitingForOpen"
    SOCKET_ERROR = "SocketError"
    OTHER = "Other"


# bgpd's peer_down_str indices (bgpd/bgp_fsm.c) for the reasons a reader acts on.
RESET_CODES = {0: LastError.NONE, 2: LastError.CONFIG_CHANGED, 3: LastError.CONFIG_CHANGED,
               11: LastError.ADMIN_SHUTDOWN, 12: LastError.CONFIG_CHANGED, 13: LastError.NOTIFICATION_RECEIVED,
               14: LastError.NOTIFICATION_SENT, 15: LastError.PEER_CLOSED, 16: LastError.NEIGHBOR_DELETED,
               21: LastError.CONFIG_CHANGED, 24: LastError.BFD_DOWN, 25: LastError.INTERFACE_DOWN,
               27: LastError.NO_PATH, 32: LastError.WAITING_FOR_OPEN, 34: LastError.SOCKET_ERROR}


@dataclass(frozen=True)
class Session:
    """One neighbor's session as bgpd reports it."""

    peer: str  # IronLB's peer name ('' for a neighbor IronLB did not configure)
    neighbor: str
    vrf: str
    state: SessionState
    bfd: BfdState
    hold_time_ms: int
    keepalive_ms: int
    prefixes_sent: int
    established_count: int
    last_error: LastError
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
    try:
        state = SessionState(info.get("bgpState", ""))
    except ValueError:
        state = SessionState.OTHER
    bfd_info = info.get("peerBfdInfo")
    bfd = BfdState.NOT_CONFIGURED
    if bfd_info is not None:
        bfd = {"Up": BfdState.UP, "Down": BfdState.DOWN, "Init": BfdState.INIT,
               "AdminDown": BfdState.ADMIN_DOWN}.get(bfd_info.get("status", ""), BfdState.UNKNOWN)
    families = info.get("addressFamilyInfo", {}).values()
    stats = info.get("messageStats", {})
    code = int(info.get("lastResetCode", 0))
    text = " ".join(str(t) for t in (info.get("lastResetDueTo", ""), info.get("lastNotificationReason", "")) if t)
    return Session(
        peer=description[len(DESCRIPTION):] if description.startswith(DESCRIPTION) else "",
        neighbor=neighbor, vrf=vrf, state=state, bfd=bfd,
        hold_time_ms=int(info.get("bgpTimerHoldTimeMsecs", 0)),
        keepalive_ms=int(info.get("bgpTimerKeepAliveIntervalMsecs", 0)),
        prefixes_sent=sum(int(f.get("sentPrefixCounter", 0)) for f in families),
        established_count=int(info.get("connectionsEstablished", 0)),
        last_error=RESET_CODES.get(code, LastError.OTHER), last_error_text=text,
        updates_sent=int(stats.get("updatesSent", 0)), out_queue=int(stats.get("depthOutq", 0)))
