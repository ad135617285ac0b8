"""Watch streams: events split anywhere across chunks, bookmarks and ERROR events passed on, a stream cut
inside an event or carrying garbage is an error, and a watch stopped early closes its connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ironlb.common.kubeapi import NODES, SECRETS, Client, ClusterConfig, ProtocolError
from ironlb.common.kubeapi.watch import decode, lines
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply


def event(kind: str, name: str, rv: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name, "resourceVersion": rv}}}


EVENTS = [event("ADDED", "a", "11"), event("MODIFIED", "a", "12"),
          {"type": "BOOKMARK", "object": {"kind": "Node", "metadata": {"resourceVersion": "15"}}},
          {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}]
STREAM = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS)


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_events_split_across_chunks_anywhere_come_out_whole(size: int) -> None:
    chunks = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert [decode(line) for line in lines(chunks)] == EVENTS


def test_blank_lines_are_skipped_and_a_cut_last_event_is_an_error() -> None:
    assert list(lines([b"\n", b'{"a":1}\n\n', b'{"b"', b':2}\n'])) == [b'{"a":1}', b'{"b":2}']
    with pytest.raises(ProtocolError, match="ended inside an event"):
        list(lines([b'{"a":1}\n{"b":']))


def test_an_endless_line_is_refused() -> None:
    with pytest.raises(ProtocolError, match="longer than"):
        list(lines([b"x" * 60, b"y" * 60], max_bytes=100))


@pytest.mark.parametrize("line", [b"not json", b"[1]", b'{"type":"ADDED"}', b'{"type":"WHAT","object":{}}',
                                  b'{"type":"ADDED","object":"text"}'])
def test_what_is_not_a_watch_event_is_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(line)


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[Client]:
    with Client(ClusterConfig("http", "127.0.0.1", server.port)) as c:
        yield c


def test_a_watch_streams_chunked_events_and_asks_as_the_api_expects(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/namespaces/kube-system/secrets", Reply(chunks=[STREAM[:5], STREAM[5:90], STREAM[90:]]))
    with api.watch(SECRETS, "kube-system", resource_version="10", timeout_seconds=60, timeout=(1, 75),
                   fieldSelector="metadata.name=ironlb-heartbeat") as stream:
        assert list(stream) == EVENTS
    assert server.requests[0].query == {"watch": "true", "resourceVersion": "10", "timeoutSeconds": "60",
                                        "allowWatchBookmarks": "true",
                                        "fieldSelector": "metadata.name=ironlb-heartbeat"}
    server.route("GET", "/api/v1/nodes", Reply(body={"items": []}))
    api.list(NODES)
    assert [r.connection for r in server.requests] == [1, 1]  # a watch read to its end leaves the connection usable


def test_a_watch_stopped_early_closes_its_connection(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/nodes", lambda r: Reply(chunks=[STREAM]) if r.query.get("watch") else
                 Reply(body={"items": []}))
    with api.watch(NODES, resource_version="1", timeout_seconds=5) as stream:
        assert next(iter(stream)) == EVENTS[0]
    api.list(NODES)
    assert [r.connection for r in server.requests] == [1, 2]


def test_a_watch_refused_at_once_raises_the_api_error(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/nodes", Reply(410, {"kind": "Status", "code": 410, "reason": "Gone"}))
    with pytest.raises(Exception) as err:
        api.watch(NODES, resource_version="1", timeout_seconds=5)
    assert getattr(err.value, "gone", False)


def test_a_stream_cut_inside_an_event_is_an_error(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/nodes", Reply(chunks=[STREAM[:30]]))
    with api.watch(NODES, resource_version="1", timeout_seconds=5) as stream, pytest.raises(ProtocolError):
        list(stream)
