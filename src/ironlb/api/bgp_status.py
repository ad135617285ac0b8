"""BGPNodeStatus: one object per node, named after it, with each BGP session of the node as FRR reports it.

The node's speaker writes it (whole, by server-side apply, only when something changed); the doctor, the
metrics and the tests read it. Both sides use these dataclasses, so the words and the shape are defined once:
`NodeBGPStatus.to_object()` is what the speaker applies, `NodeBGPStatus.from_object()` what readers get back.

Why one object per node (and not one per node and peer, as FRR-K8s's BGPSessionState, nor one per Service
and node, as MetalLB's ServiceBGPStatus): a speaker's change is one write however many sessions it touches,
the object's name is the node's, so an admission policy can hold each speaker to its own object, and a
reader gets a node's whole BGP picture in one read. Which nodes and peers carry a Service's IP is on the
Service itself (its ironlb.io/BGPAnnounced condition), not in another object per Service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ironlb.api import constants
from ironlb.api.constants import API_VERSION, BGPNODESTATUS_KIND
from ironlb.api.reasons import BGPSessionReason, parse
from ironlb.api.schema import AGE_COLUMN, Schema, column, conditions, crd, object_root, rule, string


class SessionState(Enum):
    """A BGP session's state: the finite state machine of RFC 4271 section 8, as FRR names it."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class BFDState(Enum):
    """The state of a session's BFD session (RFC 5880), or Off when its peer names no BFDProfile."""

    UP = "Up"
    DOWN = "Down"
    INIT = "Init"
    ADMIN_DOWN = "AdminDown"
    OFF = "Off"


# Bounds of the written object, shared with its schema (ironlb.api.bgp_crds).
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class SessionError:
    """The last thing that took a session down or kept it from coming up."""

    reason: BGPSessionReason
    message: str  # FRR's words, e.g. "Notification received (OPEN Message Error/Bad Peer AS)"
    time: str  # RFC 3339, UTC

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "message": self.message[:MAX_MESSAGE], "time": self.time}


@dataclass(frozen=True)
class SessionStatus:
    """One BGP session of a node: to one BGPPeer (on a node, a BGPPeer is one FRR neighbor)."""

    peer: str  # the BGPPeer's name
    state: SessionState
    since: str  # when it entered `state` (RFC 3339, UTC)
    peer_address: str = ""  # the address dialed, or empty for an unnumbered session on `interface`
    interface: str = ""
    vrf: str = ""
    bfd: BFDState = BFDState.OFF
    hold_time_s: int | None = None  # negotiated (the smaller of both proposals): set while Established
    keepalive_time_s: int | None = None
    prefixes_sent_ipv4: int = 0
    prefixes_sent_ipv6: int = 0
    last_error: SessionError | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"peer": self.peer, "state": self.state.value, "since": self.since}
        for key, value in (("peerAddress", self.peer_address), ("interface", self.interface), ("vrf", self.vrf)):
            if value:
                out[key] = value
        out["bfdState"] = self.bfd.value
        if self.hold_time_s is not None:
            out["holdTime"] = self.hold_time_s
        if self.keepalive_time_s is not None:
            out["keepaliveTime"] = self.keepalive_time_s
        out["prefixesSentIPv4"] = self.prefixes_sent_ipv4
        out["prefixesSentIPv6"] = self.prefixes_sent_ipv6
        if self.last_error is not None:
            out["lastError"] = self.last_error.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionStatus | None:
        """The session as written, or None when a word in it is not IronLB's (another version wrote it)."""
        state, bfd = parse(SessionState, data.get("state")), parse(BFDState, data.get("bfdState", "Off"))
        if state is None or bfd is None or not isinstance(data.get("peer"), str):
            return None
        error = data.get("lastError") or None
        last_error = None
        if isinstance(error, Mapping):
            reason = parse(BGPSessionReason, error.get("reason"))
            if reason is not None:
                last_error = SessionError(reason, str(error.get("message", "")), str(error.get("time", "")))
        return cls(
            peer=data["peer"], state=state, since=str(data.get("since", "")),
            peer_address=str(data.get("peerAddress", "")), interface=str(data.get("interface", "")),
            vrf=str(data.get("vrf", "")), bfd=bfd, hold_time_s=_int_or_none(data.get("holdTime")),
            keepalive_time_s=_int_or_none(data.get("keepaliveTime")),
            prefixes_sent_ipv4=_int_or_none(data.get("prefixesSentIPv4")) or 0,
            prefixes_sent_ipv6=_int_or_none(data.get("prefixesSentIPv6")) or 0, last_error=last_error,
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class NodeBGPStatus:
    """A node's BGPNodeStatus: its sessions, keyed by peer, and the conditions its speaker sets on it."""

    node: str
    sessions: tuple[SessionStatus, ...] = ()
    router_id: str = ""
    updated: str = ""  # when the speaker last changed it (RFC 3339, UTC)
    conditions: tuple[Mapping[str, Any], ...] = field(default=())  # made by ironlb.api.conditions.condition

    @property
    def established(self) -> int:
        """How many sessions are Established."""
        return sum(s.state is SessionState.ESTABLISHED for s in self.sessions)

    def session(self, peer: str) -> SessionStatus | None:
        """The session to the BGPPeer named PEER, if the node has one."""
        return next((s for s in self.sessions if s.peer == peer), None)

    def to_object(self, node_uid: str = "") -> dict[str, Any]:
        """The whole object, as the speaker applies it; with NODE_UID (its Node's uid), owned by the Node, so that
        the garbage collector deletes it with the node."""
        status: dict[str, Any] = {"node": self.node}
        if self.router_id:
            status["routerID"] = self.router_id
        if self.updated:
            status["lastUpdateTime"] = self.updated
        status["established"] = self.established
        status["configured"] = len(self.sessions)
        status["sessions"] = [s.to_dict() for s in sorted(self.sessions, key=lambda s: s.peer)]
        if self.conditions:
            status["conditions"] = [dict(c) for c in self.conditions]
        metadata: dict[str, Any] = {"name": self.node}
        if node_uid:
            metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.node, "uid": node_uid}]
        return {"apiVersion": API_VERSION, "kind": BGPNODESTATUS_KIND, "metadata": metadata, "status": status}

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> NodeBGPStatus:
        """What a BGPNodeStatus says; sessions written in words this version does not know are left out."""
        status = obj.get("status") or {}
        sessions = (SessionStatus.from_dict(s) for s in status.get("sessions") or [] if isinstance(s, Mapping))
        return cls(
            node=str(status.get("node") or (obj.get("metadata") or {}).get("name", "")),
            sessions=tuple(s for s in sessions if s is not None),
            router_id=str(status.get("routerID", "")), updated=str(status.get("lastUpdateTime", "")),
            conditions=tuple(c for c in status.get("conditions") or [] if isinstance(c, Mapping)),
        )


# --- the CRD ----------------------------------------------------------------------------------------------

MAX_SESSIONS = 256


def _count(description: str) -> Schema:
    return {"type": "integer", "format": "int64", "minimum": 0, "description": description}


def _time(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def _session() -> Schema:
    return {
        "type": "object",
        "description": "One BGP session of the node: to one BGPPeer.",
        "required": ["peer", "state"],
        "properties": {
            "peer": string("The BGPPeer's name.", max_length=253),
            "peerAddress": string("The address dialed (none for an unnumbered session).", max_length=39),
            "interface": string("The interface of an unnumbered session.", max_length=15),
            "vrf": string("The session's VRF (none: the default VRF).", max_length=15),
            "state": {"type": "string", "enum": [s.value for s in SessionState],
                      "description": "The session's state (RFC 4271): Established when routes flow."},
            "since": _time("When the session entered its state."),
            "bfdState": {"type": "string", "enum": [s.value for s in BFDState],
                         "description": "The state of its BFD session; Off when the peer names no BFDProfile."},
            "holdTime": _count("The negotiated hold time, in seconds (while Established)."),
            "keepaliveTime": _count("The negotiated keepalive interval, in seconds (while Established)."),
            "prefixesSentIPv4": _count("IPv4 prefixes sent to the peer."),
            "prefixesSentIPv6": _count("IPv6 prefixes sent to the peer."),
            "lastError": {
                "type": "object",
                "description": "The last thing that took the session down or kept it from coming up.",
                "required": ["reason"],
                "properties": {
                    "reason": {"type": "string", "enum": [r.value for r in BGPSessionReason],
                               "description": "What happened, as a word programs read."},
                    "message": string("What FRR said.", max_length=MAX_MESSAGE),
                    "time": _time("When it happened."),
                },
            },
        },
    }


def bgpnodestatus_schema() -> Schema:
    status: Schema = {
        "type": "object",
        "description": "The node's BGP sessions, written by its speaker when they change.",
        "required": ["node"],
        "properties": {
            "node": string("The node.", max_length=253),
            "routerID": string("The node's BGP router ID.", max_length=15),
            "lastUpdateTime": _time("When the speaker last changed this status."),
            "established": _count("Sessions Established."),
            "configured": _count("Sessions the node should have (one per BGPPeer that selects it)."),
            "sessions": {
                "type": "array", "description": "The sessions, one per BGPPeer.", "maxItems": MAX_SESSIONS,
                "items": _session(), "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["peer"],
            },
            "conditions": conditions(),
        },
    }
    root = object_root("BGPNodeStatus: one node's BGP sessions, named after the node, written by its speaker.",
                       None, status)
    return root | {
        "x-kubernetes-validations": [rule(
            "self.metadata.name == self.status.node",
            "a BGPNodeStatus is named after its node: metadata.name and status.node must be equal")],
    }


def bgpnodestatus_crd() -> dict[str, Any]:
    """The per-node status CRD: no status subresource, since the object is all status and its one writer
    creates and changes it in one apply."""
    out = crd(constants.BGPNODESTATUS_KIND, constants.BGPNODESTATUSES, constants.BGPNODESTATUS_SINGULAR,
              constants.BGPNODESTATUS_SHORT_NAMES, bgpnodestatus_schema(), [
                  column("Router ID", "string", ".status.routerID", "The node's BGP router ID."),
                  column("Established", "integer", ".status.established", "Sessions Established."),
                  column("Configured", "integer", ".status.configured", "Sessions the node should have."),
                  column("Updated", "date", ".status.lastUpdateTime", "Time since the speaker last changed it."),
                  AGE_COLUMN,
              ])
    del out["spec"]["versions"][0]["subresources"]
    return out
