"""The REST client against a scripted server on 127.0.0.1: requests as the API expects them, errors keyed by
status with the Status message, timeouts, kept-alive connections (and ones the server closed), a rotated
token, and mutual TLS from a kubeconfig's data."""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from ironlb.common.kubeapi import (
    CONFIGMAPS,
    EVENTS,
    IP_ADDRESS_POOLS,
    MERGE,
    NODES,
    SERVICES,
    ApiError,
    Client,
    ClusterConfig,
    ProtocolError,
    connect,
)
from ironlb.common.kubeapi.client import query_string
from ironlb.common.kubeapi.config import TokenSource
from ironlb.common.kubeapi.metrics import count_writes
from ironlb.common.kubeapi.transport import Connection
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply, Request, server_tls


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[Client]:
    with Client(ClusterConfig("http", "127.0.0.1", server.port, token=TokenSource("secret"))) as c:
        yield c


def registry_with_writes(api: Client) -> CollectorRegistry:
    """A registry exporting API's writes, as the operator's and the speaker's do."""
    registry = CollectorRegistry()
    count_writes(api, registry)
    return registry


def test_reads_and_writes_go_where_and_how_the_api_expects(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/namespaces/kube-system/configmaps/presence", Reply(body={"data": {"n1": "a-1 2"}}))
    server.route("GET", "/apis/ironlb.io/v1beta1/ipaddresspools", Reply(body={"items": [], "metadata": {}}))
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        server.route(method, "/", lambda r: Reply(201 if r.method == "POST" else 200, {"echo": r.body}))
    assert api.get(CONFIGMAPS, "presence", "kube-system")["data"] == {"n1": "a-1 2"}
    api.list(IP_ADDRESS_POOLS, limit=500, fieldSelector="metadata.name=a", **{"continue": None})
    assert api.create(EVENTS, {"reason": "Hi"}, "default") == {"echo": {"reason": "Hi"}}
    api.patch(SERVICES, "web", {"status": {"conditions": []}}, "shop", subresource="status")
    api.patch(NODES, "n1", {"metadata": {"labels": {"a": "b"}}}, content_type=MERGE)
    api.replace(CONFIGMAPS, "presence", {"data": {}}, "kube-system")
    api.delete(CONFIGMAPS, "presence", "kube-system")
    got = [(r.method, r.path, r.query, r.headers.get("Content-Type")) for r in server.requests]
    assert got == [
        ("GET", "/api/v1/namespaces/kube-system/configmaps/presence", {}, None),
        ("GET", "/apis/ironlb.io/v1beta1/ipaddresspools", {"limit": "500", "fieldSelector": "metadata.name=a"}, None),
        ("POST", "/api/v1/namespaces/default/events", {}, "application/json"),
        ("PATCH", "/api/v1/namespaces/shop/services/web/status", {}, "application/strategic-merge-patch+json"),
        ("PATCH", "/api/v1/nodes/n1", {}, "application/merge-patch+json"),
        ("PUT", "/api/v1/namespaces/kube-system/configmaps/presence", {}, "application/json"),
        ("DELETE", "/api/v1/namespaces/kube-system/configmaps/presence", {}, None),
    ]
    assert all(r.headers["Authorization"] == "Bearer secret" for r in server.requests)
    assert {r.connection for r in server.requests} == {1}  # one kept-alive connection served them all
    assert api.writes() == {("create", "events"): 1, ("patch", "services/status"): 1, ("patch", "nodes"): 1,
                            ("update", "configmaps"): 1, ("delete", "configmaps"): 1}  # reads are no writes
    text = generate_latest(registry_with_writes(api)).decode()
    assert 'ironlb_api_writes_total{resource="services/status",verb="patch"} 1.0' in text


def test_an_error_carries_status_reason_and_the_servers_message(server: FakeApiServer, api: Client) -> None:
    with pytest.raises(ApiError) as err:
        api.get(CONFIGMAPS, "absent", "ns")
    assert (err.value.status, err.value.reason, err.value.status_reason) == (404, "Not Found", "NotFound")
    assert err.value.message.endswith("not found") and str(err.value).startswith("404 Not Found: ")
    server.route("GET", "/api/v1/nodes", Reply(410, {"kind": "Status", "code": 410, "reason": "Expired",
                                                     "message": "The provided continue parameter is too old"}))
    with pytest.raises(ApiError) as err:
        api.list(NODES, limit=500, **{"continue": "tok"})
    assert err.value.gone and err.value.status_reason == "Expired" and "too old" in err.value.message
    server.route("GET", "/api/v1/namespaces/ns/services", Reply(502, raw=b"<html>bad gateway</html>"))
    with pytest.raises(ApiError) as err:
        api.list(SERVICES, "ns")
    assert (err.value.status, err.value.message) == (502, "<html>bad gateway</html>") and not err.value.gone
    assert len({r.connection for r in server.requests}) == 1  # an error answer leaves the connection usable


def test_a_silent_server_times_out_and_its_connection_is_not_reused(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/nodes/slow", Reply(body={}, delay_s=5.0))
    server.route("GET", "/api/v1/nodes/fast", Reply(body={"ok": True}))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        api.get(NODES, "slow", timeout=(1.0, 0.3))
    assert time.monotonic() - started < 2.0
    assert api.get(NODES, "fast") == {"ok": True}
    assert [r.connection for r in server.requests] == [1, 2]


def test_a_connection_the_server_closed_is_not_reused(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/nodes/closing", Reply(body={"n": 1}, close=True))
    server.route("GET", "/api/v1/nodes/after", Reply(body={"n": 2}))
    assert api.get(NODES, "closing") == {"n": 1}
    assert api.get(NODES, "after") == {"n": 2}
    assert [r.connection for r in server.requests] == [1, 2]


def test_a_kept_alive_connection_the_server_hung_up_while_idle_is_replaced(server: FakeApiServer,
                                                                            api: Client) -> None:
    server.route("GET", "/api/v1/nodes/first", Reply(body={}, hangup=True))  # keep-alive offered, then gone
    server.route("GET", "/api/v1/nodes/second", Reply(body={"n": 2}))
    api.get(NODES, "first")
    deadline = time.monotonic() + 5
    while not api.pool._idle[0].dropped() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.get(NODES, "second") == {"n": 2}
    assert [r.connection for r in server.requests] == [1, 2]


def test_a_request_safe_to_repeat_is_sent_again_when_a_reused_connection_fails(
        server: FakeApiServer, api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server.route("GET", "/api/v1/nodes", Reply(body={"items": []}, hangup=True))
    server.route("POST", "/api/v1/nodes", Reply(201, {}, hangup=True))
    monkeypatch.setattr(Connection, "dropped", lambda self: False)  # the hang-up races our reuse check
    api.list(NODES)
    time.sleep(0.1)
    assert api.list(NODES) == {"items": []}  # on the dead connection first, then on a new one
    assert [r.connection for r in server.requests] == [1, 2]
    time.sleep(0.1)
    with pytest.raises(ConnectionError):  # a create is not sent twice: it may have been done
        api.create(NODES, {"metadata": {"name": "n9"}})
    assert len(server.requests) == 2


def test_a_refused_token_is_read_again_and_the_request_sent_once_more(tmp_path: Path, server: FakeApiServer) -> None:
    token = tmp_path / "token"
    token.write_text("old")
    server.route("GET", "/api/v1/nodes", lambda r: Reply(200, {"items": []}) if r.headers["Authorization"] ==
                 "Bearer new" else Reply(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"}))
    with Client(ClusterConfig("http", "127.0.0.1", server.port, token=TokenSource(path=str(token)))) as api:
        with pytest.raises(ApiError) as err:
            api.list(NODES)
        assert err.value.status == 401 and len(server.requests) == 1  # the file holds nothing newer: no retry
        token.write_text("new")  # the kubelet rotated it
        assert api.list(NODES) == {"items": []}
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer old", "Bearer old", "Bearer new"]


def test_mutual_tls_from_a_kubeconfig_with_data(tmp_path: Path, pki: Path) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    with FakeApiServer(server_tls(pki)) as server:
        server.route("GET", "/api/v1/nodes", Reply(body={"items": [{"metadata": {"name": "n1"}}]}))
        path = tmp_path / "config"
        path.write_text(yaml.safe_dump({
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{server.port}",
                                                   "certificate-authority-data": b64("ca.crt")}}],
            "users": [{"name": "u", "user": {"client-certificate-data": b64("client.crt"),
                                             "client-key-data": b64("client.key")}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}))
        with connect(str(path)) as api:
            assert api.list(NODES)["items"][0]["metadata"]["name"] == "n1"
        assert "Authorization" not in server.requests[0].headers


@pytest.mark.parametrize("ca", ["ca.crt", "server.crt"])
def test_a_server_certificate_not_for_this_address_or_not_from_the_ca_is_refused(pki: Path, ca: str) -> None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Served the CA's own certificate (not for 127.0.0.1); or the right one, checked against a CA that did not sign it.
    tls.load_cert_chain(*((str(pki / "ca.crt"), str(pki / "ca.key")) if ca == "ca.crt" else
                          (str(pki / "server.crt"), str(pki / "server.key"))))
    with FakeApiServer(tls) as server, Client(ClusterConfig("https", "127.0.0.1", server.port,
                                                            ca_file=str(pki / ca))) as api, \
            pytest.raises(ssl.SSLCertVerificationError):
        api.list(NODES, timeout=2.0)


def test_a_success_that_is_not_json_is_a_protocol_error(server: FakeApiServer, api: Client) -> None:
    server.route("GET", "/api/v1/nodes", Reply(raw=b"<html>a login page</html>"))
    with pytest.raises(ProtocolError, match="not JSON"):
        api.list(NODES)


def test_query_strings_leave_out_none_and_spell_booleans_as_the_api_does() -> None:
    assert query_string({"watch": True, "allowWatchBookmarks": False, "limit": None}) == \
        "?watch=true&allowWatchBookmarks=false"
    assert query_string({}) == ""


def test_requests_record_what_was_sent(server: FakeApiServer, api: Client) -> None:
    server.route("POST", "/api/v1/namespaces/ns/configmaps", lambda r: Reply(409, {
        "kind": "Status", "code": 409, "reason": "AlreadyExists", "message": f"{r.body['metadata']['name']} exists"}))
    with pytest.raises(ApiError) as err:
        api.create(CONFIGMAPS, {"metadata": {"name": "p"}}, "ns")
    assert (err.value.status, err.value.message) == (409, "p exists")
    req: Request = server.requests[0]
    assert req.body == {"metadata": {"name": "p"}} and req.headers["Accept"] == "application/json"
