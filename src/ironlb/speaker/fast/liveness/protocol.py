"""The heartbeat message: small, versioned, HMAC-SHA256 authenticated, and bound to its receiver's run.

Wire format (big-endian):  b"ILB" | version u8 | kind u8 | name_len u8 | name (utf-8)
                           | incarnation u64 | sequence u64 | echo u64 | [restart] | hmac-sha256 (32 bytes)
where [restart], in RESTART only, is hold_ms u32 | count u16 | count x (family u8 (4 or 6) | address | MAC 6):
how long to hold the sender's IPs for it, and some of the IPs it answered for, each with the MAC it answered
with (one message carries at most COVERS_PER_MESSAGE; a sender with more sends several).
Version 3 (the ring of monitors, liveness/watch.py) adds, after `echo`: digest u64 (the sender's view, see
watch.py), and in NOTICE only: say u8 | subject_len u8 | subject (utf-8) | subject's incarnation u64 | life u64.
Version 2 is today's full mesh, byte for byte: a speaker that reads only it is sent only it (upgrade.py).
The MAC covers everything before it. `incarnation` is a random number drawn when the sender
starts; `sequence` counts its messages within that incarnation; `echo` is the receiver's own
incarnation as the sender last heard it (0: not heard yet). A message echoing the receiver's
current incarnation was made after the receiver started, so no recording from before can pass
for it, and no clock (wall or otherwise) is compared between nodes.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import struct
from dataclasses import dataclass
from enum import Enum

MAGIC = b"ILB"
VERSION = 2  # 1 carried a wall-clock timestamp and time-ordered incarnations; 1 and 2 do not talk
RING_VERSION = 3  # 2 and a view digest, and notices: read as well as 2, sent only to peers heard sending it
_TAIL = struct.Struct("!QQQ")
_DIGEST = struct.Struct("!Q")
_NOTICE = struct.Struct("!QQ")
_RESTART = struct.Struct("!IH")
MAC_BYTES = 6
# Covers per RESTART message: the largest (IPv6) entries still fit IPv6's minimum MTU, so nothing fragments.
COVERS_PER_MESSAGE = 48
MAC_LEN = 32
MIN_KEY_BYTES = 32  # HMAC-SHA256: a shorter key is guessable offline from one captured heartbeat


class Kind(Enum):
    """What a heartbeat says."""

    ALIVE = 1
    LEAVE = 2
    FENCED = 3  # alive and listening, but not answering for any IP (self-fenced): do not count me
    RESTART = 4  # my speaker restarts, my node still forwards: answer for my IPs with my MACs until I am back
    NOTICE = 5  # version 3 only: a notice of the ring's failure detection (Notice)


_KINDS = {kind.value: kind for kind in Kind}


class Say(Enum):
    """What a notice says (liveness/watch.py)."""

    SUSPECT = 1  # to the subject's other watchers: I no longer hear it
    HEARD = 2    # to a watcher that suspects the subject: I still hear it
    DEAD = 3     # to every node: its watchers agreed it is dead
    LEFT = 4     # to every node: it said goodbye
    ALIVE = 5    # to every node: it is alive (a refutation, a join, or back after a death)
    SYNC = 6     # to a neighbour whose digest differs from ours: send me your view


@dataclass(frozen=True)
class Notice:
    """One notice: SENDER says SAY of SUBJECT's run INCARNATION (0: not known) at its LIFE."""

    say: Say
    sender: str
    subject: str
    incarnation: int = 0
    life: int = 0


class Decoded(Enum):
    """Why a received datagram was accepted or not."""

    ACCEPTED = "accepted"
    NOT_A_PEER = "not-a-peer"        # from an address of no peer's: refused before any decoding
    MALFORMED = "malformed"
    UNKNOWN_VERSION = "unknown-version"
    BAD_MAC = "bad-mac"
    FROM_SELF = "from-self"
    UNKNOWN_PEER = "unknown-peer"    # a node name not in the Node list
    WRONG_SOURCE = "wrong-source"    # sent from an address that is not the named node's
    UNECHOED = "unechoed"            # does not echo our current run: proves nothing about now
    REPLAYED = "replayed"


@dataclass(frozen=True)
class KeySet:
    """The key heartbeats are signed with, and every key they are accepted under (it included)."""

    send: bytes
    accepted: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.send not in self.accepted:  # the key we sign with is always one we accept
            object.__setattr__(self, "accepted", (self.send, *self.accepted))

    @classmethod
    def of(cls, key: bytes | KeySet) -> KeySet:
        """KEY as a KeySet (a bare key accepts only itself)."""
        return key if isinstance(key, KeySet) else cls(key)


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat."""

    kind: Kind
    node: str
    incarnation: int
    sequence: int
    echo: int = 0
    hold_ms: int = 0  # RESTART: how long at most to answer for the sender
    covers: tuple[tuple[str, bytes], ...] = ()  # RESTART: (IP, the MAC it was answered with)
    digest: int | None = None  # the sender's view digest: version 3; None: version 2
    notice: Notice | None = None  # NOTICE: what it says (its sender is `node`)


def new_incarnation() -> int:
    """A random, nonzero incarnation for a speaker that is starting."""
    return secrets.randbits(64) or 1


def encode(msg: Heartbeat, key: bytes | KeySet) -> bytes:
    """Serialise and sign (with a KeySet's send key)."""
    key = key.send if isinstance(key, KeySet) else key
    name = msg.node.encode()
    version = VERSION if msg.digest is None else RING_VERSION
    if (msg.kind is Kind.NOTICE) != (msg.notice is not None) or (msg.kind is Kind.NOTICE and msg.digest is None):
        raise ValueError("a NOTICE, and only a NOTICE, carries a notice, in version 3")
    body = MAGIC + bytes([version, msg.kind.value, len(name)]) + name + _TAIL.pack(
        msg.incarnation, msg.sequence, msg.echo)
    if msg.digest is not None:
        body += _DIGEST.pack(msg.digest)
    if msg.kind is Kind.RESTART:
        body += _encode_restart(msg)
    if msg.notice is not None:
        subject = msg.notice.subject.encode()
        body += bytes([msg.notice.say.value, len(subject)]) + subject + _NOTICE.pack(msg.notice.incarnation,
                                                                                     msg.notice.life)
    return body + hmac.digest(key, body, "sha256")


def _encode_restart(msg: Heartbeat) -> bytes:
    out = [_RESTART.pack(msg.hold_ms, len(msg.covers))]
    for ip, mac in msg.covers:
        packed = ipaddress.ip_address(ip).packed
        out.append(bytes([4 if len(packed) == 4 else 6]) + packed + mac)
    return b"".join(out)


def _decode_restart(payload: bytes) -> tuple[int, tuple[tuple[str, bytes], ...]] | None:
    """(hold_ms, covers) of a RESTART's payload; None if it is not exactly one."""
    if len(payload) < _RESTART.size:
        return None
    hold_ms, count = _RESTART.unpack_from(payload)
    covers, at = [], _RESTART.size
    for _ in range(count):
        size = {4: 4, 6: 16}.get(payload[at]) if at < len(payload) else None
        if size is None or at + 1 + size + MAC_BYTES > len(payload):
            return None
        ip = str(ipaddress.ip_address(payload[at + 1:at + 1 + size]))
        covers.append((ip, bytes(payload[at + 1 + size:at + 1 + size + MAC_BYTES])))
        at += 1 + size + MAC_BYTES
    return (hold_ms, tuple(covers)) if at == len(payload) else None


def _decode_notice(payload: bytes, sender: str) -> Notice | None:
    """A NOTICE's payload; None if it is not exactly one."""
    if len(payload) < 2 or len(payload) != 2 + payload[1] + _NOTICE.size:
        return None
    try:
        say, subject = Say(payload[0]), payload[2:2 + payload[1]].decode()
    except (ValueError, UnicodeDecodeError):
        return None
    incarnation, life = _NOTICE.unpack_from(payload, 2 + payload[1])
    return Notice(say, sender, subject, incarnation, life)


def decode(data: bytes, key: bytes | KeySet) -> tuple[Decoded, Heartbeat | None]:
    """Verify under any accepted key and parse (freshness and replay are the Membership's to judge)."""
    if len(data) < 6 + _TAIL.size + MAC_LEN or data[:3] != MAGIC:
        return Decoded.MALFORMED, None
    if data[3] not in (VERSION, RING_VERSION):
        return Decoded.UNKNOWN_VERSION, None
    body, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    keys = key.accepted if isinstance(key, KeySet) else (key,)
    for accepted in keys:
        if hmac.compare_digest(mac, hmac.digest(accepted, body, "sha256")):
            break
    else:
        return Decoded.BAD_MAC, None
    name_len = body[5]
    end = 6 + name_len + _TAIL.size
    kind = _KINDS.get(body[4])  # a dict, not Kind(...): the enum's lookup is several calls, on every datagram
    try:
        node = body[6:6 + name_len].decode()
    except UnicodeDecodeError:
        return Decoded.MALFORMED, None
    if kind is None:
        return Decoded.MALFORMED, None
    digest = None
    if data[3] == RING_VERSION:
        if len(body) < end + _DIGEST.size:
            return Decoded.MALFORMED, None
        (digest,), end = _DIGEST.unpack_from(body, end), end + _DIGEST.size
    elif kind is Kind.NOTICE:
        return Decoded.MALFORMED, None
    restart = _decode_restart(body[end:]) if kind is Kind.RESTART else (0, ())
    notice = _decode_notice(body[end:], node) if kind is Kind.NOTICE else None
    rest_is_payload = kind in (Kind.RESTART, Kind.NOTICE)
    if len(body) < end or restart is None or (kind is Kind.NOTICE and notice is None) or \
            (not rest_is_payload and len(body) != end):
        return Decoded.MALFORMED, None
    incarnation, sequence, echo = _TAIL.unpack_from(body, 6 + name_len)
    return Decoded.ACCEPTED, Heartbeat(kind, node, incarnation, sequence, echo, *restart, digest, notice)
