"""The operator's writes through IronLB's own client, against a scripted API server on 127.0.0.1: each goes to the
status subresource with the patch type its kind takes, 404 and 409 come back as outcomes, and a fenced write is
never sent."""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.common.events import ObjectRef
from ironlb.common.kubeapi import Client, ClusterConfig
from ironlb.common.kubeapi.config import TokenSource
from ironlb.operator.handlers import connection_info
from ironlb.operator.writer import Writer, WriteResult
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply

STRATEGIC, MERGE = "application/strategic-merge-patch+json", "application/merge-patch+json"
POOL_ANNOTATION = "ironlb.io/allocated-from-pool"


class Recorder:
    """The Event recorder's submit, recorded."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def submit(self, ref: ObjectRef, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append((ref.name, reason))


def echo(rv: str) -> Any:
    return lambda r: Reply(body={**(r.body or {}), "metadata": {"resourceVersion": rv}})


async def test_each_write_patches_the_status_subresource_with_the_type_its_kind_takes(api_server: FakeApiServer,
                                                                                     api_client: Client) -> None:
    api_server.route("PATCH", "/api/v1/namespaces/shop/services/web/status", echo("12"))
    api_server.route("PATCH", "/apis/ironlb.io/v1beta1/ipaddresspools/p/status", echo("3"))
    api_server.route("PATCH", "/apis/ironlb.io/v1beta1/l2advertisements/a/status", echo("4"))
    writer = Writer(api_client, Recorder(), lambda: True)
    written = await writer.set_service("shop", "web", [{"ip": "192.0.2.1"}], "p", "11")
    assert (written.result, written.resource_version) == (WriteResult.WRITTEN, "12")
    assert (await writer.set_service("shop", "web", None, None, None)).ok
    assert (await writer.set_service_condition("shop", "web", {"type": "Announced", "status": "True"})).ok
    assert (await writer.set_service("shop", "web", [{"ip": "192.0.2.1"}], "p", "12",
                                     {"type": "ironlb.io/Allocated", "status": "True"})).ok
    assert (await writer.set_pool_status("p", {"assignedIPv4": 1})).resource_version == "3"
    assert (await writer.set_advertisement_status("a", {"conditions": []})).resource_version == "4"
    sent = [(r.path.rsplit("/", 2)[-2], r.headers.get("Content-Type"), r.body) for r in api_server.requests]
    assert sent == [
        ("web", STRATEGIC, {"metadata": {"resourceVersion": "11", "annotations": {POOL_ANNOTATION: "p"}},
                            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}),
        # None clears: the annotation and the ingress are removed, and no version is required
        ("web", STRATEGIC, {"metadata": {"annotations": {POOL_ANNOTATION: None}},
                            "status": {"loadBalancer": {"ingress": None}}}),
        ("web", STRATEGIC, {"status": {"conditions": [{"type": "Announced", "status": "True"}]}}),
        # a condition rides in the same write as the ingress (merged by type)
        ("web", STRATEGIC, {"metadata": {"resourceVersion": "12", "annotations": {POOL_ANNOTATION: "p"}},
                            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]},
                                       "conditions": [{"type": "ironlb.io/Allocated", "status": "True"}]}}),
        ("p", MERGE, {"status": {"assignedIPv4": 1}}),  # custom resources take no strategic merge
        ("a", MERGE, {"status": {"conditions": []}}),
    ]


async def test_gone_and_conflict_are_outcomes_and_other_refusals_raise(api_server: FakeApiServer,
                                                                       api_client: Client) -> None:
    status = {"kind": "Status", "code": 409, "reason": "Conflict", "message": "the object has been modified"}
    api_server.route("PATCH", "/api/v1/namespaces/shop/services/stale/status", Reply(409, status))
    api_server.route("PATCH", "/api/v1/namespaces/shop/services/locked/status", Reply(403, {**status, "code": 403}))
    writer = Writer(api_client, Recorder(), lambda: True)
    assert (await writer.set_service("shop", "gone", None, None, "1")).result is WriteResult.GONE
    assert (await writer.set_service("shop", "stale", None, None, "1")).result is WriteResult.CONFLICT
    with pytest.raises(Exception, match="403"):
        await writer.set_service("shop", "locked", None, None, "1")


async def test_a_fenced_writer_sends_nothing_and_says_nothing(api_server: FakeApiServer, api_client: Client) -> None:
    recorder = Recorder()
    writer = Writer(api_client, recorder, lambda: False)
    assert (await writer.set_pool_status("p", {})).result is WriteResult.FENCED
    await writer.event(ObjectRef("v1", "Service", "web", "shop", None), "IPAllocated", "x")
    assert api_server.requests == [] and recorder.events == []


def test_kopf_logs_in_with_the_clients_cluster_configuration(tmp_path: Any) -> None:
    """Server, CA, client certificate and the token as its file holds it now (re-read at each login)."""
    token = tmp_path / "token"
    token.write_text("first\n")
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    cluster = ClusterConfig("https", "2001:db8::1", 6443, "/k8s", ca_data=pem.decode(), cert_data=pem,
                            key_data=pem, token=TokenSource(path=str(token)))
    info = connection_info(cluster)
    assert (info.server, info.ca_data, info.certificate_data, info.token) == (
        "https://[2001:db8::1]:6443/k8s", pem.decode(), pem, "first")
    assert not info.insecure and info.ca_path is None
    token.write_text("rotated\n")
    assert connection_info(cluster).token == "rotated"

