"""The informer with a scripted list and watch: resume from resourceVersion, 410 relists and diffs,
every request carries a timeout, and a broken connection keeps what was known."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from kubernetes.client.rest import ApiException

from ironlb.common import informer as informer_mod
from ironlb.common.informer import Informer


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class Raw:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class Script:
    """Lists and watches played from a script; records how each was called."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], str]], watches: list[Any]) -> None:
        self.lists, self.watches = lists, watches
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []
        self.informer: Informer | None = None

    def list_fn(self, **kwargs: Any) -> Raw:
        self.list_calls.append(kwargs)
        items, rv = self.lists.pop(0) if self.lists else ([], "0")
        return Raw({"items": items, "metadata": {"resourceVersion": rv}})

    def factory(self) -> Any:
        script = self

        class W:
            def stream(self, fn: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
                script.watch_calls.append(kwargs)
                if not script.watches:
                    assert script.informer is not None
                    script.informer.stop()
                    return iter(())
                step = script.watches.pop(0)
                if isinstance(step, Exception):
                    raise step
                return iter(step)

            def stop(self) -> None:
                pass

        return W()


async def run(script: Script) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    loop = asyncio.get_running_loop()
    inf = Informer("t", script.list_fn, lambda kind, o: seen.append(
        (kind, o["metadata"]["name"], o["metadata"]["resourceVersion"])), loop, watch_factory=script.factory)
    script.informer = inf
    inf.start()
    await asyncio.to_thread(inf._thread.join, 10)
    await asyncio.sleep(0.05)
    return seen


async def test_a_finished_watch_resumes_from_the_last_version_and_bookmark(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1")], "10")], [
        [{"type": "MODIFIED", "raw_object": obj("a", "11")}, {"type": "BOOKMARK", "raw_object": obj("", "15")}],
        [{"type": "ADDED", "raw_object": obj("b", "16")}],
    ])
    seen = await run(script)
    assert seen == [("ADDED", "a", "1"), ("MODIFIED", "a", "11"), ("ADDED", "b", "16")]
    assert len(script.list_calls) == 1  # never relisted
    assert [c["resource_version"] for c in script.watch_calls] == ["10", "15", "16"]


async def test_gone_relists_and_emits_only_the_difference(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1"), obj("b", "2"), obj("c", "3")], "10"),
                     ([obj("a", "1"), obj("b", "7"), obj("d", "8")], "20")], [
        [{"type": "ERROR", "raw_object": {"kind": "Status", "code": 410, "message": "too old"}}],
    ])
    seen = await run(script)
    assert seen[3:] == [("MODIFIED", "b", "7"), ("ADDED", "d", "8"), ("DELETED", "c", "3")]
    assert [c["resource_version"] for c in script.watch_calls] == ["10", "20"]


async def test_a_410_raised_by_the_client_also_relists(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([], "10"), ([obj("a", "30")], "30")], [ApiException(status=410)])
    seen = await run(script)
    assert seen == [("ADDED", "a", "30")]
    assert script.informer is not None and script.informer.counts["gone"] == 1


async def test_errors_keep_what_is_known_and_resume_without_relisting(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([obj("a", "1")], "10")], [OSError("connection reset"), ApiException(status=500), []])
    seen = await run(script)
    assert seen == [("ADDED", "a", "1")]
    assert len(script.list_calls) == 1
    assert [c["resource_version"] for c in script.watch_calls][:3] == ["10", "10", "10"]
    assert script.informer is not None and script.informer.known() == [obj("a", "1")]


async def test_every_request_has_a_timeout(monkeypatch: Any) -> None:
    monkeypatch.setattr(informer_mod.time, "sleep", lambda s: None)
    script = Script([([], "10")], [[]])
    await run(script)
    assert all(c.get("_request_timeout") for c in script.list_calls + script.watch_calls)
    assert all(c.get("timeout_seconds") and c.get("allow_watch_bookmarks") for c in script.watch_calls)
