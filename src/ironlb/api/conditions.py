"""The one builder of the conditions IronLB writes (metav1.Condition shape), and how to find one.

The operator (on pools, advertisements and Services) and the speaker (on Services) make every
condition with `condition`, from a type and a reason that are enum members of ironlb.api.reasons.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from ironlb.api.reasons import AnnounceReason, BGPDrainReason, ConditionType, Reason, parse

# How the Announced condition names each IP's announcing node: written by `announced_part`, read back by
# `announced_from` (the speakers' election, the doctor). One format, in one place.
_ANNOUNCED = re.compile(r"(?P<ip>[0-9a-fA-F:.]+) from node (?P<node>\S+) on "
                        r"(?:interface (?P<ifaces>[^;\s]+)|all interfaces)")
ALL_INTERFACES_TEXT = "all interfaces"


def status_word(true: bool) -> str:
    """A condition's status as written: "True" or "False"."""
    return "True" if true else "False"


def now_stamp() -> str:
    """The current time as a condition's lastTransitionTime (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(type_: ConditionType, true: bool, reason: Reason, message: str, *, since: str,
              generation: int | None = None) -> dict[str, Any]:
    """A condition of TYPE_, True or not, for REASON, changed last at SINCE; observedGeneration when given."""
    out: dict[str, Any] = {"type": type_.value, "status": status_word(true), "reason": reason.value,
                           "message": message, "lastTransitionTime": since}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def find(status: Mapping[str, Any] | None, type_: ConditionType) -> Mapping[str, Any] | None:
    """The condition of TYPE_ in an object's STATUS, if it has one."""
    found = ((status or {}).get("conditions") or [])
    return next((c for c in found if isinstance(c, Mapping) and c.get("type") == type_.value), None)


def changed_since(status: Mapping[str, Any] | None, type_: ConditionType, true: bool) -> str:
    """lastTransitionTime for TYPE_ being TRUE now: the shown one while its status is unchanged, else now."""
    old = find(status, type_)
    if old and old.get("status") == status_word(true) and old.get("lastTransitionTime"):
        return str(old["lastTransitionTime"])
    return now_stamp()


def announced_part(ip: str, node: str, interfaces: tuple[str, ...] | None) -> str:
    """The Announced condition's words for IP answered from NODE on INTERFACES (None: all of them)."""
    where = "interface " + ",".join(interfaces) if interfaces else ALL_INTERFACES_TEXT
    return f"{ip} from node {node} on {where}"


def announced_in(message: str) -> dict[str, tuple[str, str]]:
    """IP -> (announcing node, interfaces in words) as an Announced condition's MESSAGE names them."""
    return {m["ip"]: (m["node"], m["ifaces"] or ALL_INTERFACES_TEXT) for m in _ANNOUNCED.finditer(message)}


def announcers(status: Mapping[str, Any] | None) -> dict[str, str]:
    """IP -> the node a Service's Announced condition says announces it (only while it says Announcing)."""
    cond = find(status, ConditionType.SERVICE_ANNOUNCED)
    if not cond or cond.get("status") != "True" or cond.get("reason") != AnnounceReason.ANNOUNCING.value:
        return {}
    message = cond.get("message")
    return {ip: node for ip, (node, _) in announced_in(message).items()} if isinstance(message, str) else {}


# --- BGP mode: the Service's BGPAnnounced condition names, for each IP, every node that carries it and the
# peers each node sends it to, and which of those nodes drain (BGPDrainReason). Written by `bgp_announced_part`
# (the speakers), read back by `bgp_carriers` and `bgp_draining_in`. The draining mark is optional: messages
# written before it existed read the same.
_BGP_ANNOUNCED = re.compile(r"(?P<ip>[0-9a-fA-F:.]+) from node (?P<node>\S+) to peers? (?P<peers>[^;\s]+)"
                            r"(?: \(draining: (?P<draining>[A-Za-z]+)\))?")


def bgp_announced_part(ip: str, node: str, peers: tuple[str, ...], draining: BGPDrainReason | None = None) -> str:
    """The BGPAnnounced condition's words for IP sent by NODE to PEERS (BGPPeer names), marked when NODE drains
    (DRAINING: why); parts join with '; '."""
    words = f"{ip} from node {node} to {'peer' if len(peers) == 1 else 'peers'} {','.join(peers)}"
    return f"{words} (draining: {draining.value})" if draining is not None else words


def bgp_announced_in(message: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """IP -> node -> peers, as a BGPAnnounced condition's MESSAGE names them (draining or not)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for m in _BGP_ANNOUNCED.finditer(message):
        out.setdefault(m["ip"], {})[m["node"]] = tuple(m["peers"].split(","))
    return out


def bgp_draining_in(message: str) -> dict[str, BGPDrainReason]:
    """Node -> why it drains, for the carriers a BGPAnnounced condition's MESSAGE marks as draining (a reason
    this version does not know is left out)."""
    found = ((m["node"], parse(BGPDrainReason, m["draining"])) for m in _BGP_ANNOUNCED.finditer(message)
             if m["draining"])
    return {node: reason for node, reason in found if reason is not None}


def bgp_carriers(status: Mapping[str, Any] | None) -> dict[str, dict[str, tuple[str, ...]]]:
    """IP -> node -> peers that a Service's BGPAnnounced condition says carry it (while it is True: Advertised,
    or Draining before a withdraw)."""
    cond = find(status, ConditionType.SERVICE_BGP_ANNOUNCED)
    if not cond or cond.get("status") != "True":
        return {}
    message = cond.get("message")
    return bgp_announced_in(message) if isinstance(message, str) else {}
