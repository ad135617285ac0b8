"""The informer with a scripted list and watch: resume from resourceVersion, 410 relists and diffs,
every request carries a timeout, and a broken connection keeps what was known."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ironlb.common import informer as informer_mod
from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import NODES, ApiError, Client, ClusterConfig
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply, Request


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class Watch:
    """A scripted watch: its events, and whether it was closed."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events, self.closed = events, False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def close(self) -> None:
        self.closed = True


class Script:
    """A ListWatch played from a script; records how each list and watch was asked for."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], str]], watches: list[Any]) -> None:
        self.lists, self.watches = lists, watches
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []
        self.informer: Informer | None = None
        self.streams: list[Watch] = []

    def list(self, **kwargs: Any) -> dict[str, Any]:
        self.list_calls.append(kwargs)
        items, rv = self.lists.pop(0) if self.lists else ([], "0")
        return {"items": items, "metadata": {"resourceVersion": rv}}

    def watch(self, **kwargs: Any) -> Watch:
        self.watch_calls.append(kwargs)
        if not self.watches:
            assert self.informer is not None
            self.informer.stop()
            self.streams.append(Watch([]))
            return self.streams[-1]
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        self.streams.append(Watch(step))
        return self.streams[-1]


async def run(script: Script, keep_objects: bool = True) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    loop = asyncio.get_running_loop()
    inf = Informer("t", script, lambda kind, o: seen.append(
        (kind, o["metadata"]["name"], o["metadata"]["resourceVersion"])), loop, keep_objects=keep_objects)
    script.informer = inf
    inf.start()
    await asyncio.to_thread(inf._thread.join, 10)
    await asyncio.sleep(0.05)
    return seen


async def test_a_finished_watch_resumes_from_the_last_version_and_bookmark(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1")], "10")], [
        [{"type": "MODIFIED", "object": obj("a", "11")}, {"type": "BOOKMARK", "object": obj("", "15")}],
        [{"type": "ADDED", "object": obj("b", "16")}],
    ])
    seen = await run(script)
    assert seen == [("ADDED", "a", "1"), ("MODIFIED", "a", "11"), ("ADDED", "b", "16")]
    assert len(script.list_calls) == 1  # never relisted
    assert [c["resource_version"] for c in script.watch_calls] == ["10", "15", "16"]


async def test_gone_relists_and_emits_only_the_difference(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1"), obj("b", "2"), obj("c", "3")], "10"),
                     ([obj("a", "1"), obj("b", "7"), obj("d", "8")], "20")], [
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
    ])
    seen = await run(script)
    assert seen[3:] == [("MODIFIED", "b", "7"), ("ADDED", "d", "8"), ("DELETED", "c", "3")]
    assert [c["resource_version"] for c in script.watch_calls] == ["10", "20"]


async def test_keeping_versions_only_diffs_a_relist_the_same_way(monkeypatch: Any) -> None:
    """For a caller with its own view (the speaker): the same events, DELETED carrying the object's identity, and no
    object held here."""
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1"), obj("b", "2"), obj("c", "3")], "10"),
                     ([obj("a", "1"), obj("b", "7"), obj("d", "8")], "20")], [
        [{"type": "MODIFIED", "object": obj("a", "11")}, {"type": "DELETED", "object": obj("a", "12")},
         {"type": "ADDED", "object": obj("a", "13")}],
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
    ])
    seen, inf = await run_transformed(script, None, keep_objects=False)
    names = [(kind, o["metadata"]["name"], o["metadata"]["resourceVersion"]) for kind, o in seen]
    assert names[6:] == [("MODIFIED", "a", "1"), ("MODIFIED", "b", "7"), ("ADDED", "d", "8"), ("DELETED", "c", "3")]
    assert seen[-1][1] == {"metadata": {"name": "c", "namespace": "ns", "resourceVersion": "3"}}
    assert inf._known == {"ns/a": "1", "ns/b": "7", "ns/d": "8"}  # versions, not objects
    with pytest.raises(RuntimeError, match="keeps versions only"):
        inf.known()


async def test_a_relist_hops_to_the_loop_a_page_at_a_time_in_order(monkeypatch: Any) -> None:
    """A relist's events go to the loop in pages (not one hop per object), in the order they were listed; a
    handler that fails on one is reported as a failed callback would be, and the others are still delivered."""
    monkeypatch.setattr(informer_mod, "PAGE_SIZE", 2)
    loop = asyncio.get_running_loop()
    hops, seen, reported = [], [], []
    monkeypatch.setattr(loop, "call_soon_threadsafe", lambda fn, *args: hops.append(1) or loop.call_soon(fn, *args))
    monkeypatch.setattr(loop, "call_exception_handler", reported.append)

    def handler(kind: str, o: dict[str, Any]) -> None:
        if o["metadata"]["name"] == "b":
            raise ValueError("b")
        seen.append((kind, o["metadata"]["name"]))

    items = [obj(name, "1") for name in "abcde"]
    inf = Informer("t", Script([(items, "10")], []), handler, loop)
    assert inf.relist() == "10"
    await asyncio.sleep(0)
    assert seen == [("ADDED", "a"), ("ADDED", "c"), ("ADDED", "d"), ("ADDED", "e")]
    assert len(hops) == 3  # five events, pages of two
    assert [type(r["exception"]) for r in reported] == [ValueError]


def test_a_cluster_scoped_stub_has_no_namespace() -> None:
    assert informer_mod._stub("/node-1", "5") == {"metadata": {"name": "node-1", "resourceVersion": "5"}}


async def test_a_410_raised_by_the_client_also_relists(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([], "10"), ([obj("a", "30")], "30")], [ApiError(410, "Gone")])
    seen = await run(script)
    assert seen == [("ADDED", "a", "30")]
    assert script.informer is not None and script.informer.counts["gone"] == 1


async def test_errors_keep_what_is_known_and_resume_without_relisting(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1")], "10")], [OSError("connection reset"), ApiError(500, "Internal Error"), []])
    seen = await run(script)
    assert seen == [("ADDED", "a", "1")]
    assert len(script.list_calls) == 1
    assert [c["resource_version"] for c in script.watch_calls][:3] == ["10", "10", "10"]
    assert script.informer is not None and script.informer.known() == [obj("a", "1")]


async def test_every_request_has_a_timeout(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([], "10")], [[]])
    await run(script)
    assert all(c.get("timeout") for c in script.list_calls + script.watch_calls)
    assert all(c["timeout_seconds"] < c["timeout"][1] for c in script.watch_calls)  # silence past the end: dead
    assert all(s.closed for s in script.streams)


def fat(name: str, rv: str, note: str = "x") -> dict[str, Any]:
    """An object with a field the transform below drops."""
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "managedFields": [{"note": note}]},
            "spec": {"kept": name}}


def drop_managed_fields(o: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in o["metadata"].items() if k != "managedFields"}
    return {"metadata": meta, "spec": o.get("spec"), "slim": True}


async def run_transformed(script: Script, transform: Any,
                          keep_objects: bool = True) -> tuple[list[tuple[str, dict[str, Any]]], Informer]:
    """Run SCRIPT through an informer with TRANSFORM; the events with their objects, and the informer."""
    seen: list[tuple[str, dict[str, Any]]] = []
    inf = Informer("t", script, lambda kind, o: seen.append((kind, o)), asyncio.get_running_loop(),
                   transform=transform, keep_objects=keep_objects)
    script.informer = inf
    inf.start()
    await asyncio.to_thread(inf._thread.join, 10)
    await asyncio.sleep(0.05)
    return seen, inf


async def test_the_transform_applies_to_list_items_every_watch_event_and_what_is_known(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([fat("a", "1"), fat("b", "2")], "10")], [[
        {"type": "ADDED", "object": fat("c", "11")}, {"type": "MODIFIED", "object": fat("a", "12")},
        {"type": "DELETED", "object": fat("b", "13")}, {"type": "BOOKMARK", "object": obj("", "14")},
    ]])
    seen, inf = await run_transformed(script, drop_managed_fields)
    assert [(kind, o["metadata"]["name"]) for kind, o in seen] == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert all(o.get("slim") and "managedFields" not in o["metadata"] for _, o in seen)
    assert sorted(o["metadata"]["name"] for o in inf.known()) == ["a", "c"]
    assert all(o.get("slim") for o in inf.known())
    assert inf.known()[0] is seen[3][1]  # what is kept is what was handed on: one copy, not two
    assert script.watch_calls[-1]["resource_version"] == "14"


async def test_a_relist_after_a_transform_emits_nothing_for_unchanged_objects(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    # The second list differs only in what the transform drops (and one version): only that one is news.
    script = Script([([fat("a", "1"), fat("b", "2")], "10"), ([fat("a", "1", "other"), fat("b", "3")], "20")], [
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
    ])
    seen, inf = await run_transformed(script, drop_managed_fields)
    assert [(kind, o["metadata"]["name"]) for kind, o in seen] == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "b")]
    assert inf.counts["gone"] == 1 and inf.counts["lists"] == 2


async def test_a_failing_transform_keeps_the_object_whole_and_counts(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)

    def picky(o: dict[str, Any]) -> dict[str, Any]:
        if o["metadata"]["name"] == "odd":
            raise KeyError("spec")
        return drop_managed_fields(o)

    script = Script([([fat("a", "1"), fat("odd", "2")], "10")], [[{"type": "MODIFIED", "object": fat("odd", "3")}]])
    seen, inf = await run_transformed(script, picky)
    assert [(kind, o["metadata"]["name"], "slim" in o) for kind, o in seen] == [
        ("ADDED", "a", True), ("ADDED", "odd", False), ("MODIFIED", "odd", False)]
    assert inf.counts["transform_errors"] == 2 and inf.counts["errors"] == 0  # the watch went on
    assert len(script.list_calls) == 1


class Pages(Script):
    """One list of ITEMS served in pages of `limit` with continue tokens; a token in EXPIRED gets a 410."""

    def __init__(self, items: list[dict[str, Any]], expired: tuple[str, ...] = ()) -> None:
        super().__init__([], [])
        self.items, self.expired = items, expired

    def list(self, **kwargs: Any) -> dict[str, Any]:
        self.list_calls.append(kwargs)
        token = kwargs.get("continue_token")
        if token in self.expired:
            raise ApiError(410, "Gone", "continue token expired", "Expired")
        start, limit = int(token or 0), kwargs.get("limit") or len(self.items)
        end = start + limit
        more = str(end) if end < len(self.items) else ""
        return {"items": self.items[start:end], "metadata": {"resourceVersion": "50", "continue": more}}


async def test_lists_come_in_pages_and_the_watch_starts_from_their_version(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    monkeypatch.setattr(informer_mod, "PAGE_SIZE", 2)
    script = Pages([fat(f"o{i}", str(i)) for i in range(5)])
    seen, inf = await run_transformed(script, drop_managed_fields)
    assert [o["metadata"]["name"] for _, o in seen] == ["o0", "o1", "o2", "o3", "o4"]
    assert [(c["limit"], c["continue_token"]) for c in script.list_calls] == [(2, None), (2, "2"), (2, "4")]
    assert inf.counts["lists"] == 1 and len(inf.known()) == 5
    assert script.watch_calls[0]["resource_version"] == "50"
    assert all("limit" not in c and "continue_token" not in c for c in script.watch_calls)


async def test_an_expired_continue_token_lists_again_in_one_piece(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    monkeypatch.setattr(informer_mod, "PAGE_SIZE", 2)
    script = Pages([fat(f"o{i}", str(i)) for i in range(5)], expired=("4",))
    seen, inf = await run_transformed(script, drop_managed_fields)
    assert [o["metadata"]["name"] for _, o in seen] == ["o0", "o1", "o2", "o3", "o4"]  # each once
    assert [(c.get("limit"), c.get("continue_token")) for c in script.list_calls] == [
        (2, None), (2, "2"), (2, "4"), (None, None)]
    assert inf.counts["lists"] == 1 and inf.counts["errors"] == 0


async def test_over_http_pages_watches_and_a_410_error_event_relist(monkeypatch: Any) -> None:
    """The informer on the real client against a scripted server: the requests it makes, what it makes of them."""
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    monkeypatch.setattr(informer_mod, "PAGE_SIZE", 1)
    lists = {"": ([obj("a", "1")], "t1"), "t1": ([obj("b", "2")], ""), "relist": ([obj("b", "2")], "")}
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}
    watches = [[{"type": "MODIFIED", "object": obj("a", "11")}, {"type": "BOOKMARK", "object": obj("", "15")}],
               [gone]]

    def answer(req: Request) -> Reply:
        if req.query.get("watch") != "true":
            relisting = len(watches) < 2  # once a watch has been served, a list is the relist after the 410
            items, more = lists[req.query.get("continue") or ("relist" if relisting else "")]
            return Reply(body={"items": items, "metadata": {"resourceVersion": "10" if more else "20",
                                                            "continue": more}})
        if not watches:
            inf.stop()
            return Reply(chunks=[])
        return Reply(chunks=[b"".join(json.dumps(e).encode() + b"\n" for e in watches.pop(0))])

    seen: list[tuple[str, str, str]] = []
    with FakeApiServer() as server, Client(ClusterConfig("http", "127.0.0.1", server.port)) as api:
        server.route("GET", "/api/v1/nodes", answer)
        inf = Informer("nodes", ResourceListWatch(api, NODES), lambda kind, o: seen.append(
            (kind, o["metadata"]["name"], o["metadata"]["resourceVersion"])), asyncio.get_running_loop())
        inf.start()
        await asyncio.to_thread(inf._thread.join, 10)
        await asyncio.sleep(0.05)
    asked = [(r.query.get("watch"), r.query.get("resourceVersion"), r.query.get("limit"), r.query.get("continue"))
             for r in server.requests]
    assert asked == [(None, None, "1", None), (None, None, "1", "t1"), ("true", "20", None, None),
                     ("true", "15", None, None), (None, None, "1", None), ("true", "20", None, None)]
    assert seen == [("ADDED", "a", "1"), ("ADDED", "b", "2"), ("MODIFIED", "a", "11"), ("DELETED", "a", "11")]
    assert inf.counts["gone"] == 1 and inf.counts["errors"] == 0
