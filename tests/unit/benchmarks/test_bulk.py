"""Bulk creation's retries (a lost answer's AlreadyExists counts, a real conflict does not) and the listing's
name -> ingress IP, across pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from benchmarks import _bulk


class Answer:
    """A response read unparsed (`_preload_content=False`)."""

    def __init__(self, body: dict[str, Any] | None = None) -> None:
        self.data = json.dumps(body or {}).encode()

    def release_conn(self) -> None:
        """Nothing to give back."""


class FakeApi:
    """Answers each create with the next of OUTCOMES (an exception is raised); lists PAGES in turn."""

    def __init__(self, outcomes: list[BaseException | None] | None = None,
                 pages: list[dict[str, Any]] | None = None) -> None:
        self.outcomes = list(outcomes or [])
        self.pages = list(pages or [])
        self.creates = 0

    def create_namespaced_service(self, namespace: str, body: dict[str, Any], **_: Any) -> Answer:
        self.creates += 1
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return Answer()

    def list_namespaced_service(self, namespace: str, **_: Any) -> Answer:
        return Answer(self.pages.pop(0))


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bulk.time, "sleep", lambda s: None)


def test_a_shed_request_is_tried_again() -> None:
    api = FakeApi([ApiException(status=429), ApiException(status=504), None])
    _bulk.create_one(api, "ns", {})  # type: ignore[arg-type]
    assert api.creates == 3


def test_already_exists_after_a_retry_is_the_first_attempts_success() -> None:
    api = FakeApi([ApiException(status=500), ApiException(status=409)])
    _bulk.create_one(api, "ns", {})  # type: ignore[arg-type]
    assert api.creates == 2


def test_already_exists_at_once_is_an_error() -> None:
    with pytest.raises(ApiException):
        _bulk.create_one(FakeApi([ApiException(status=409)]), "ns", {})  # type: ignore[arg-type]


def test_a_rejected_service_is_not_retried() -> None:
    api = FakeApi([ApiException(status=422), None])
    with pytest.raises(ApiException):
        _bulk.create_one(api, "ns", {})  # type: ignore[arg-type]
    assert api.creates == 1


def test_retries_are_bounded() -> None:
    api = FakeApi([ApiException(status=503)] * _bulk.RETRIES)
    with pytest.raises(ApiException):
        _bulk.create_one(api, "ns", {})  # type: ignore[arg-type]
    assert api.creates == _bulk.RETRIES


def service(name: str, ips: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


def test_ingress_ips_reads_every_page_and_only_assigned_services() -> None:
    pages = [
        {"metadata": {"continue": "more"}, "items": [service("a", ["2001:db8::1", "2001:db8::2"]), service("b", [])]},
        {"metadata": {}, "items": [{"metadata": {"name": "c"}, "status": {}}, service("d", ["2001:db8::4"])]},
    ]
    assert _bulk.ingress_ips(FakeApi(pages=pages), "ns") == {"a": "2001:db8::1", "d": "2001:db8::4"}  # type: ignore[arg-type]
