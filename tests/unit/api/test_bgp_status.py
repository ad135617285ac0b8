"""BGPNodeStatus: the speaker's dataclass writes what the CRD's schema describes, and readers get it back."""

from __future__ import annotations

from typing import Any

from ironlb.api import constants
from ironlb.api.bgp_status import (
    BFDState,
    NodeBGPStatus,
    SessionError,
    SessionState,
    SessionStatus,
    bgpnodestatus_schema,
)
from ironlb.api.reasons import BGPSessionReason

T0 = "2026-01-01T00:00:00Z"
STATUS = NodeBGPStatus("node-a", router_id="198.18.36.11", updated=T0, sessions=(
    SessionStatus("tor-b", SessionState.ACTIVE, T0, interface="eth1", vrf="red",
                  last_error=SessionError(BGPSessionReason.HOLD_TIMER_EXPIRED, "Hold Timer Expired", T0)),
    SessionStatus("tor-a", SessionState.ESTABLISHED, T0, peer_address="198.18.36.1", bfd=BFDState.UP,
                  hold_time_s=9, keepalive_time_s=3, prefixes_sent_ipv4=12, prefixes_sent_ipv6=3),
))


def _keys_in_schema(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Every key of VALUE that SCHEMA does not describe (the API server would prune or refuse it)."""
    if isinstance(value, dict) and "properties" in schema:
        missing = [f"{path}.{k}" for k in value if k not in schema["properties"]]
        return missing + [m for k, v in value.items() if k in schema["properties"]
                          for m in _keys_in_schema(v, schema["properties"][k], f"{path}.{k}")]
    if isinstance(value, list) and "items" in schema:
        return [m for v in value for m in _keys_in_schema(v, schema["items"], f"{path}[]")]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}={value!r}"]
    return []


def test_what_the_speaker_writes_is_what_the_schema_describes() -> None:
    obj = STATUS.to_object()
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]) == (constants.API_VERSION, "BGPNodeStatus",
                                                                 {"name": "node-a"})
    assert _keys_in_schema(obj, bgpnodestatus_schema()) == []
    status = obj["status"]
    assert (status["established"], status["configured"]) == (1, 2)
    assert [s["peer"] for s in status["sessions"]] == ["tor-a", "tor-b"]  # sorted: a rewrite changes nothing
    assert status["sessions"][1]["lastError"] == {"reason": "HoldTimerExpired", "message": "Hold Timer Expired",
                                                  "time": T0}
    assert "holdTime" not in status["sessions"][1]  # only while Established


def test_the_check_of_the_test_itself_sees_a_key_the_schema_lacks() -> None:
    obj = STATUS.to_object()
    obj["status"]["sessions"][0]["uptime"] = 5
    obj["status"]["sessions"][0]["state"] = "Up"
    unknown = [".status.sessions[].uptime", ".status.sessions[].state='Up'"]
    assert _keys_in_schema(obj, bgpnodestatus_schema()) == unknown


def test_readers_get_back_what_was_written() -> None:
    back = NodeBGPStatus.from_object(STATUS.to_object())
    assert back == NodeBGPStatus(STATUS.node, tuple(sorted(STATUS.sessions, key=lambda s: s.peer)), STATUS.router_id,
                                 STATUS.updated)
    assert back.established == 1 and back.session("tor-b").last_error.reason is BGPSessionReason.HOLD_TIMER_EXPIRED
    assert back.session("nope") is None


def test_words_of_another_version_are_left_out_not_guessed() -> None:
    obj = STATUS.to_object()
    obj["status"]["sessions"][0]["state"] = "Flapping"
    obj["status"]["sessions"][1]["lastError"]["reason"] = "Unheard"
    back = NodeBGPStatus.from_object(obj)
    assert [s.peer for s in back.sessions] == ["tor-b"] and back.sessions[0].last_error is None


def test_long_messages_are_cut_to_the_schemas_bound() -> None:
    error = SessionError(BGPSessionReason.NOTIFICATION_RECEIVED, "x" * 5000, T0)
    limit = bgpnodestatus_schema()["properties"]["status"]["properties"]["sessions"]["items"]["properties"][
        "lastError"]["properties"]["message"]["maxLength"]
    assert len(error.to_dict()["message"]) == limit


def test_owned_by_its_node_when_the_nodes_uid_is_given() -> None:
    assert STATUS.to_object(node_uid="u-1")["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "u-1"}]
    assert "ownerReferences" not in STATUS.to_object()["metadata"]
