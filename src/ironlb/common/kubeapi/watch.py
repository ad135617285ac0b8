"""A watch response: newline-delimited JSON events, each `{"type": ..., "object": ...}`, read as they arrive.

The server sends one event per line, in chunks that need not end on a line: a chunk may hold
several events or part of one. A stream that ends in the middle of an event was cut (the
connection dropped), which is an error, not a short list of events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ironlb.common.kubeapi.transport import Exchange, ProtocolError

MAX_EVENT_BYTES = 64 << 20  # far above any object etcd accepts (1.5 MiB by default): a line past it is garbage
EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


def lines(chunks: Iterable[bytes], max_bytes: int = MAX_EVENT_BYTES) -> Iterator[bytes]:
    """The complete, non-blank lines in CHUNKS; ProtocolError if the last one is cut or one is too long."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            line = bytes(buf[start:end])
            start = end + 1
            if line.strip():
                yield line
        del buf[:start]  # once per chunk, not per line: a chunk of many small events stays linear
        if len(buf) > max_bytes:
            raise ProtocolError(f"a watch event longer than {max_bytes} bytes")
    if buf.strip():
        raise ProtocolError(f"the watch stream ended inside an event ({len(buf)} bytes of it)")


def decode(line: bytes) -> dict[str, Any]:
    """One event; ProtocolError if it is not JSON with a known type and an object."""
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"a watch event is not JSON: {line[:200]!r}") from exc
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES or not isinstance(event.get("object"), dict):
        raise ProtocolError(f"not a watch event: {line[:200]!r}")
    return event


class WatchStream:
    """The events of one watch, as they arrive; close() (or leaving a `with`) ends it early."""

    def __init__(self, exchange: Exchange, max_bytes: int = MAX_EVENT_BYTES) -> None:
        self.exchange, self.max_bytes = exchange, max_bytes

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in lines(self.exchange.chunks(), self.max_bytes):
            yield decode(line)

    def close(self) -> None:
        """End the watch (its connection is closed unless the server had already ended it)."""
        self.exchange.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
