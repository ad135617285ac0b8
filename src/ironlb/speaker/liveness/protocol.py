"""The heartbeat message: small, versioned, HMAC-SHA256 authenticated, replay- and staleness-checked.

Wire format (big-endian):  b"ILB" | version u8 | kind u8 | name_len u8 | name (utf-8)
                           | incarnation u64 | sequence u64 | sent_ms u64 | hmac-sha256 (32 bytes)
The MAC covers everything before it. `incarnation` is the sender's start time in ns: a restarted
speaker starts a new incarnation, so its sequence numbers may start again from zero.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import Enum

MAGIC = b"ILB"
VERSION = 1
_TAIL = struct.Struct("!QQQ")
MAC_LEN = 32


class Kind(Enum):
    """What a heartbeat says."""

    ALIVE = 1
    LEAVE = 2


class Decoded(Enum):
    """Why a received datagram was accepted or not."""

    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    UNKNOWN_VERSION = "unknown-version"
    BAD_MAC = "bad-mac"
    FROM_SELF = "from-self"
    STALE = "stale"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat."""

    kind: Kind
    node: str
    incarnation: int
    sequence: int
    sent_ms: int


def encode(msg: Heartbeat, key: bytes) -> bytes:
    """Serialise and sign."""
    name = msg.node.encode()
    body = MAGIC + bytes([VERSION, msg.kind.value, len(name)]) + name + _TAIL.pack(
        msg.incarnation, msg.sequence, msg.sent_ms)
    return body + hmac.new(key, body, hashlib.sha256).digest()


def decode(data: bytes, key: bytes) -> tuple[Decoded, Heartbeat | None]:
    """Verify and parse (freshness and replay are the Membership's to judge, it knows the peer)."""
    if len(data) < 6 + _TAIL.size + MAC_LEN or data[:3] != MAGIC:
        return Decoded.MALFORMED, None
    if data[3] != VERSION:
        return Decoded.UNKNOWN_VERSION, None
    body, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        return Decoded.BAD_MAC, None
    name_len = body[5]
    if len(body) != 6 + name_len + _TAIL.size:
        return Decoded.MALFORMED, None
    try:
        kind = Kind(body[4])
        node = body[6:6 + name_len].decode()
    except (ValueError, UnicodeDecodeError):
        return Decoded.MALFORMED, None
    incarnation, sequence, sent_ms = _TAIL.unpack_from(body, 6 + name_len)
    return Decoded.ACCEPTED, Heartbeat(kind, node, incarnation, sequence, sent_ms)
