"""Heartbeat keys: what a Secret yields, runtime changes, and no split at any moment of a rotation."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ironlb.operator.key_rotation import plan
from ironlb.speaker.control.keys import KeyVerdict, KeyWatcher, read_keys
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, KeySet, Kind, decode, encode


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


OLD, NEW, OTHER = b"o" * 48, b"n" * 48, b"x" * 48

READS: list[tuple[str, dict[str, str] | None, KeyVerdict, KeySet | None, tuple[str, ...]]] = [
    ("one key", {"key": b64(OLD)}, KeyVerdict.OK, KeySet(OLD), ()),
    ("accepting next", {"key": b64(OLD), "next": b64(NEW)}, KeyVerdict.OK, KeySet(OLD, (OLD, NEW)), ()),
    ("retiring previous", {"key": b64(NEW), "previous": b64(OLD)}, KeyVerdict.OK, KeySet(NEW, (NEW, OLD)), ()),
    ("no data", None, KeyVerdict.MISSING, None, ()),
    ("no send key, only next", {"next": b64(NEW)}, KeyVerdict.MISSING, None, ()),
    ("short send key", {"key": b64(b"k" * 31)}, KeyVerdict.TOO_SHORT, None, ()),
    ("garbled send key", {"key": "!!not base64!!"}, KeyVerdict.NOT_BASE64, None, ()),
    ("a short next is refused, the rest stands", {"key": b64(OLD), "next": b64(b"short")}, KeyVerdict.OK,
     KeySet(OLD), ("next",)),
]


@pytest.mark.parametrize(("case", "data", "verdict", "keys", "refused"), READS, ids=[r[0] for r in READS])
def test_read_keys(case: str, data: dict[str, str] | None, verdict: KeyVerdict, keys: KeySet | None,
                   refused: tuple[str, ...]) -> None:
    got = read_keys(data)
    assert (got.verdict, got.keys, got.refused) == (verdict, keys, refused)


def test_a_custom_send_key_name_still_accepts_next_and_previous() -> None:
    assert read_keys({"hmac": b64(NEW), "previous": b64(OLD)}, "hmac").keys == KeySet(NEW, (NEW, OLD))


def beat(keys: KeySet) -> bytes:
    return encode(Heartbeat(Kind.ALIVE, "n1", 7, 1, 9), keys)


def test_a_heartbeat_passes_under_any_accepted_key_and_fails_under_others() -> None:
    assert decode(beat(KeySet(NEW)), KeySet(OLD, (OLD, NEW)))[0] is Decoded.ACCEPTED
    assert decode(beat(KeySet(OLD)), KeySet(OLD, (OLD, NEW)))[0] is Decoded.ACCEPTED
    assert decode(beat(KeySet(OTHER)), KeySet(OLD, (OLD, NEW)))[0] is Decoded.BAD_MAC
    assert decode(beat(KeySet(OLD, (OLD, NEW))), KeySet(NEW))[0] is Decoded.BAD_MAC  # signed with OLD only


def test_runtime_changes_swap_keys_and_bad_edits_keep_the_keys_in_use() -> None:
    swaps: list[KeySet] = []
    w = KeyWatcher(object(), "ns", "hb", "key", swaps.append, KeySet(OLD))  # type: ignore[arg-type]
    assert w.apply({"key": b64(OLD)}) is KeyVerdict.OK and swaps == []  # unchanged: no swap
    assert w.apply({"key": b64(OLD), "next": b64(NEW)}) is KeyVerdict.OK
    assert swaps == [KeySet(OLD, (OLD, NEW))]
    assert w.apply({"key": b64(b"short")}) is KeyVerdict.TOO_SHORT
    assert w.apply({}) is KeyVerdict.MISSING
    assert w.current == KeySet(OLD, (OLD, NEW)) and len(swaps) == 1 and w.refusals == 2
    w._on_event("DELETED", {})
    assert w.current == KeySet(OLD, (OLD, NEW))


# ---- No split during a rotation -------------------------------------------------------------

W = 10.0


def rotation_versions() -> list[tuple[float, dict[str, str]]]:
    """The Secret's data as the real plan writes it: (write time, data) for v0..v3."""
    data: dict[str, str] = {"key": b64(OLD)}
    ann: dict[str, str] = {"ironlb.io/rotate": "r1"}
    versions = [(-1.0, dict(data))]
    for now in (0.0, W, 2 * W):
        p = plan(data, ann, now, W, lambda: NEW.decode())
        for store, patch in ((data, p.data), (ann, p.annotations)):
            for k, v in patch.items():
                store.pop(k, None) if v is None else store.__setitem__(k, v)  # type: ignore[func-returns-value]
        versions.append((now, dict(data)))
    return versions


def view_at(t: float, seen: list[float | None], versions: list[tuple[float, dict[str, str]]]) -> KeySet:
    """A speaker's keys at T: the newest version it has seen (None: a version it never sees)."""
    current = versions[0][1]
    for when, (_, data) in zip(seen, versions, strict=True):
        if when is not None and when <= t:
            current = data
    keys = read_keys(current).keys
    assert keys is not None
    return keys


# (case, speaker A's delay per version v1..v3, speaker B's, split expected). A delay of None: never seen
# (a watch relist that skipped it).
SPLITS: list[tuple[str, list[float | None], list[float | None], bool]] = [
    ("both see every version at once", [0, 0, 0], [0, 0, 0], False),
    ("B lags 0.9 window on every version", [0, 0, 0], [9, 9, 9], False),
    ("A lags on the switch, B on the drop", [0, 9.9, 0], [0, 0, 9.9], False),
    ("B sees next late but within the window, A switches at once", [0, 0, 0], [9.99, 0.5, 0], False),
    ("B skips the drop (stays on 'previous' accepted)", [0, 0, 0], [0, 0, None], False),
    ("B restarts mid-rotation and reads v2 directly", [0, 0, 0], [None, 0, 0], False),
    # The bound is real: beyond the window, speakers stop trusting each other.
    ("B sees next only after A switched (lag beyond the window)", [0, 0, 0], [10.5, 10.5, 10.5], True),
    ("B misses next and sees the switch after A", [0, 0, 0], [None, 2, 2], True),
    ("B still on the old key when A drops it", [0, 0, 0], [0, 10.5, 10.5], True),
]


@pytest.mark.parametrize(("case", "a", "b", "split"), SPLITS, ids=[s[0] for s in SPLITS])
def test_no_split_at_any_moment_of_a_rotation(case: str, a: list[float | None], b: list[float | None],
                                              split: bool) -> None:
    versions = rotation_versions()
    seen = {name: [-1.0, *[None if d is None else versions[i + 1][0] + d for i, d in enumerate(lag)]]
            for name, lag in (("a", a), ("b", b))}
    # Every moment something changes, and just after it.
    moments = sorted({t + e for s in seen.values() for t in s if t is not None for e in (0.0, 1e-6)})
    broken: list[tuple[float, str]] = []
    for t in moments:
        ka, kb = view_at(t, seen["a"], versions), view_at(t, seen["b"], versions)
        for sender, receiver, who in ((ka, kb, "a->b"), (kb, ka, "b->a")):
            if decode(beat(sender), receiver)[0] is not Decoded.ACCEPTED:
                broken.append((t, who))
    assert bool(broken) is split, broken
    assert read_keys(versions[-1][1]).keys == KeySet(NEW)  # the rotation did rotate


def test_watcher_follows_a_rotation_in_order(monkeypatch: Any) -> None:
    swaps: list[KeySet] = []
    w = KeyWatcher(object(), "ns", "hb", "key", swaps.append, KeySet(OLD))  # type: ignore[arg-type]
    for _, data in rotation_versions():
        w._on_event("MODIFIED", {"data": data})
    assert swaps == [KeySet(OLD, (OLD, NEW)), KeySet(NEW, (NEW, OLD)), KeySet(NEW)]
