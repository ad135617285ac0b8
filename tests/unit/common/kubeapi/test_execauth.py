"""A kubeconfig's exec credential plugin, run for real (a small script): its token is sent, asked again only when
it expires or is refused, and what it cannot give is said clearly. Also: the namespace a context names, and the
headers a caller adds to a request."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ironlb.common.kubeapi import NODES, ConfigError, connect, context_namespace
from ironlb.common.kubeapi.execauth import parse_credential
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply, Request

PLUGIN = """\
import json, os, pathlib, sys
calls = pathlib.Path(sys.argv[1])
n = len(calls.read_text().splitlines()) + 1 if calls.exists() else 1
calls.write_text(calls.read_text() + os.environ["KUBERNETES_EXEC_INFO"] + "\\n" if calls.exists()
                 else os.environ["KUBERNETES_EXEC_INFO"] + "\\n")
status = json.loads(os.environ["PLUGIN_STATUS"])
if "token" in status:
    status["token"] = f"{status['token']}-{n}"
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}))
sys.exit(int(os.environ.get("PLUGIN_EXIT", "0")))
"""


def kubeconfig(tmp_path: Path, port: int, status: dict[str, Any], exit_code: int = 0,
               namespace: str | None = None) -> Path:
    """A kubeconfig whose user logs in with the plugin script (a command relative to the kubeconfig)."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "plugin.py").write_text(PLUGIN)
    script = f'#!/bin/sh\nexec {sys.executable} "$(dirname "$0")/plugin.py" "$@"\n'
    (tmp_path / "bin" / "plugin").write_text(script)
    (tmp_path / "bin" / "plugin").chmod(0o755)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/plugin",
                     "args": [str(tmp_path / "calls")], "interactiveMode": "Never",
                     "env": [{"name": "PLUGIN_STATUS", "value": json.dumps(status)},
                             {"name": "PLUGIN_EXIT", "value": str(exit_code)}]}}
    context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": user}], "contexts": [{"name": "x", "context": context}],
        "current-context": "x"}))
    return path


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    """The KUBERNETES_EXEC_INFO of each run of the plugin."""
    return [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]


def test_the_plugins_token_without_an_expiry_is_kept(tmp_path: Path) -> None:
    with FakeApiServer() as server:
        server.route("GET", "/api/v1/nodes", Reply(body={"items": []}))
        with connect(str(kubeconfig(tmp_path, server.port, {"token": "t"}))) as api:
            for _ in range(3):
                api.list(NODES)
        assert [r.headers["Authorization"] for r in server.requests] == ["Bearer t-1"] * 3
    assert calls(tmp_path)[0] == {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                                  "spec": {"interactive": False}}


def test_a_refused_or_expired_token_runs_the_plugin_again(tmp_path: Path) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with FakeApiServer() as server:
        server.route("GET", "/api/v1/nodes", lambda r: Reply(401, {"kind": "Status", "code": 401})
                     if r.headers["Authorization"] == "Bearer t-1" else Reply(body={"items": []}))
        with connect(str(kubeconfig(tmp_path, server.port, {"token": "t", "expirationTimestamp": soon}))) as api:
            api.list(NODES)  # t-1 refused: the plugin runs again and the request goes once more with t-2
            api.list(NODES)  # t-3: five seconds from expiry is within the margin, so each use asks afresh
        assert [r.headers["Authorization"] for r in server.requests] == ["Bearer t-1", "Bearer t-2", "Bearer t-3"]


@pytest.mark.parametrize(("status", "exit_code", "words"), [
    ({"clientCertificateData": "-----BEGIN CERTIFICATE-----", "clientKeyData": "k"}, 0, "client certificate"),
    ({}, 0, "no token"),
    ({"token": "t"}, 3, "failed \\(exit status 3\\)"),
    ({"token": "t", "expirationTimestamp": "tomorrow"}, 0, "expirationTimestamp"),
])
def test_what_the_plugin_cannot_give_is_said(tmp_path: Path, status: dict[str, Any], exit_code: int,
                                            words: str) -> None:
    with FakeApiServer() as server, connect(str(kubeconfig(tmp_path, server.port, status, exit_code))) as api:
        with pytest.raises(ConfigError, match=words):
            api.list(NODES)
        assert server.requests == []


def test_a_missing_plugin_is_a_config_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, 1, {"token": "t"})
    (tmp_path / "bin" / "plugin").unlink()
    with connect(str(path)) as api, pytest.raises(ConfigError, match="cannot run the credential plugin"):
        api.list(NODES)


def test_parse_credential_reads_an_rfc3339_expiry() -> None:
    out = json.dumps({"status": {"token": "x", "expirationTimestamp": "2030-01-02T03:04:05Z"}}).encode()
    assert parse_credential(out) == ("x", dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC))


def test_the_namespace_a_context_names(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, 1, {"token": "t"}, namespace="shop")
    assert context_namespace(str(path)) == "shop"
    assert context_namespace(str(path), "other") is None
    assert context_namespace(str(kubeconfig(tmp_path, 1, {"token": "t"}))) is None
    with pytest.raises(ConfigError):
        context_namespace(str(tmp_path / "absent"), env={})


def test_a_callers_headers_go_along_but_never_replace_the_clients_own(tmp_path: Path) -> None:
    seen: list[Request] = []
    with FakeApiServer() as server:
        server.route("GET", "/metrics", lambda r: (seen.append(r), Reply(raw=b"# page\n"))[1])
        with connect(str(kubeconfig(tmp_path, server.port, {"token": "t"}))) as api:
            got = api.exchange("GET", "/metrics", headers={"X-Ironlb-Authorization": "Bearer other",
                                                           "Authorization": "Bearer forged"}).read()
    assert got == b"# page\n"
    assert seen[0].headers["X-Ironlb-Authorization"] == "Bearer other"
    assert seen[0].headers["Authorization"] == "Bearer t-1"
    assert os.environ.get("KUBERNETES_EXEC_INFO") is None  # the plugin's environment is its own
