"""Where the client finds the API server and its credentials: the in-cluster service account (a token that
rotates), kubeconfig variants (files or data, token or tokenFile, named contexts, merged files) and clear
errors for what is missing or unsupported."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

from ironlb.common.kubeapi.config import ClusterConfig, ConfigError, TokenSource, from_kubeconfig, in_cluster, load
from tests.unit.fakeclock import FakeClock


def service_account(tmp_path: Path, token: str = "tok-1") -> Path:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(token + "\n")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return sa


IN_POD = {"KUBERNETES_SERVICE_HOST": "198.18.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_in_cluster_reads_the_service_account(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    cfg = in_cluster(IN_POD, sa)
    assert (cfg.scheme, cfg.host, cfg.port, cfg.ca_file) == ("https", "198.18.0.1", 443, str(sa / "ca.crt"))
    assert cfg.token is not None and cfg.token.get() == "tok-1"
    assert cfg.server == "https://198.18.0.1:443"


@pytest.mark.parametrize("host", ["2001:db8:5::1", "[2001:db8:5::1]"])
def test_an_ipv6_service_host_is_bracketed_only_in_the_url(tmp_path: Path, host: str) -> None:
    cfg = in_cluster({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "6443"}, service_account(tmp_path))
    assert cfg.host == "2001:db8:5::1" and cfg.server == "https://[2001:db8:5::1]:6443"


@pytest.mark.parametrize(("env", "remove", "words"), [
    ({"KUBERNETES_SERVICE_HOST": "198.18.0.1"}, None, "KUBERNETES_SERVICE_PORT"),
    ({**IN_POD, "KUBERNETES_SERVICE_PORT": "https"}, None, "not a port number"),
    (IN_POD, "ca.crt", "CA"),
    (IN_POD, "token", "token file"),
])
def test_in_cluster_says_what_is_missing(tmp_path: Path, env: dict[str, str], remove: str | None, words: str) -> None:
    sa = service_account(tmp_path)
    if remove:
        (sa / remove).unlink()
    with pytest.raises(ConfigError, match=words):
        in_cluster(env, sa)


def test_a_rotated_token_is_read_again_after_a_minute_or_at_once_when_refused(tmp_path: Path) -> None:
    path, clock = tmp_path / "token", FakeClock()
    path.write_text("old")
    source = TokenSource(path=str(path), clock=clock)
    path.write_text("new")
    assert source.get() == "old"  # read a moment ago: not yet
    clock.now += 61
    assert source.get() == "new"
    path.write_text("newer")
    source.invalidate()  # a 401: the kubelet may have rotated it since
    assert source.get() == "newer"
    path.write_text("")  # caught mid-rotation: the last good token is kept
    clock.now += 61
    assert source.get() == "newer"


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(user: dict[str, Any], cluster: dict[str, Any] | None = None, current: str | None = "lab",
               **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": current,
            "clusters": [{"name": "lab", "cluster": cluster or {"server": "https://127.0.0.1:6443",
                                                                 "certificate-authority": "ca.crt"}}],
            "users": [{"name": "admin", "user": user}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}], **extra}


def test_the_labs_kubeconfig_client_certificate_files_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig({"client-certificate": "admin.crt",
                                                  "client-key": str(tmp_path / "keys" / "admin.key")}))
    cfg = from_kubeconfig(str(path))
    assert (cfg.scheme, cfg.host, cfg.port, cfg.base_path) == ("https", "127.0.0.1", 6443, "")
    assert cfg.ca_file == str(tmp_path / "ca.crt")
    assert (cfg.cert_file, cfg.key_file) == (str(tmp_path / "admin.crt"), str(tmp_path / "keys" / "admin.key"))
    assert cfg.token is None and not cfg.insecure


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_data_forms_load_into_a_tls_context(tmp_path: Path, pki: Path) -> None:
    cluster = {"server": "https://127.0.0.1:6443", "certificate-authority-data": b64((pki / "ca.crt").read_bytes()),
               "tls-server-name": "kubernetes.default"}
    user = {"client-certificate-data": b64((pki / "client.crt").read_bytes()),
            "client-key-data": b64((pki / "client.key").read_bytes())}
    cfg = from_kubeconfig(str(write(tmp_path / "config", kubeconfig(user, cluster))))
    assert cfg.ca_file is None and cfg.ca_data and cfg.ca_data.startswith("-----BEGIN CERTIFICATE")
    assert cfg.cert_data == (pki / "client.crt").read_bytes() and cfg.server_name == "kubernetes.default"
    ctx = cfg.ssl_context()
    assert ctx is not None and ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.get_ca_certs()[0]["subject"] == ((("commonName", "test-ca"),),)


def test_a_mixed_certificate_data_and_key_file_is_read_into_data(tmp_path: Path, pki: Path) -> None:
    user = {"client-certificate-data": b64((pki / "client.crt").read_bytes()), "client-key": str(pki / "client.key")}
    cfg = from_kubeconfig(str(write(tmp_path / "config", kubeconfig(user))))
    assert cfg.key_data == (pki / "client.key").read_bytes() and cfg.key_file is None


@pytest.mark.parametrize(("user", "want"), [
    ({"token": "abc"}, "abc"),
    ({"tokenFile": "token"}, "from-file"),
])
def test_tokens_inline_or_from_a_file(tmp_path: Path, user: dict[str, Any], want: str) -> None:
    (tmp_path / "token").write_text("from-file\n")
    cfg = from_kubeconfig(str(write(tmp_path / "config", kubeconfig(user))))
    assert cfg.token is not None and cfg.token.get() == want


def test_insecure_skip_tls_verify_checks_nothing(tmp_path: Path) -> None:
    cluster = {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}
    ctx = from_kubeconfig(str(write(tmp_path / "config", kubeconfig({"token": "t"}, cluster)))).ssl_context()
    assert ctx is not None and ctx.verify_mode is ssl.CERT_NONE and not ctx.check_hostname


def test_a_named_context_wins_over_the_current_one(tmp_path: Path) -> None:
    doc = kubeconfig({"token": "lab-token"})
    doc["clusters"].append({"name": "other", "cluster": {"server": "http://127.0.0.1:8080/prefix/"}})
    doc["users"].append({"name": "viewer", "user": {"token": "viewer-token"}})
    doc["contexts"].append({"name": "view", "context": {"cluster": "other", "user": "viewer"}})
    path = str(write(tmp_path / "config", doc))
    assert from_kubeconfig(path).port == 6443
    cfg = from_kubeconfig(path, context="view")
    assert (cfg.scheme, cfg.port, cfg.base_path) == ("http", 8080, "/prefix") and cfg.ssl_context() is None
    assert cfg.token is not None and cfg.token.get() == "viewer-token"


def test_kubeconfig_files_listed_in_KUBECONFIG_merge_first_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a", {"current-context": "lab", "users": [{"name": "admin", "user": {"token": "a"}}]})
    second = write(tmp_path / "b", kubeconfig({"token": "b"}, current="elsewhere"))
    cfg = from_kubeconfig(env={"KUBECONFIG": f"{tmp_path / 'missing'}:{first}:{second}"})
    assert cfg.token is not None and cfg.token.get() == "a" and cfg.port == 6443


@pytest.mark.parametrize(("doc", "context", "words"), [
    (kubeconfig({"token": "t"}, current=None), None, "no current-context"),
    (kubeconfig({"token": "t"}), "nope", "context 'nope' is not in"),
    ({**kubeconfig({"token": "t"}), "clusters": []}, None, "cluster 'lab' is not in"),
    (kubeconfig({"token": "t"}, {"certificate-authority": "ca.crt"}), None, "has no server"),
    (kubeconfig({"token": "t"}, {"server": "127.0.0.1:6443"}), None, "not an http"),
    (kubeconfig({"token": "t"}, {"server": "https://127.0.0.1:6443", "proxy-url": "http://127.0.0.1:3128"}), None,
     "proxy-url"),
    (kubeconfig({"client-certificate": "a.crt"}), None, "without its key"),
    (kubeconfig({"client-key-data": b64(b"k")}), None, "without its key"),
    (kubeconfig({"exec": {"args": ["token"]}}), None, "names no command"),
    (kubeconfig({"auth-provider": {"name": "oidc"}}), None, "auth-provider"),
    (kubeconfig({"client-certificate-data": "not base64!", "client-key-data": "x"}), None, "not base64"),
])
def test_what_is_missing_or_unsupported_is_said(tmp_path: Path, doc: dict[str, Any], context: str | None,
                                                words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        from_kubeconfig(str(write(tmp_path / "config", doc)), context)


def test_unreadable_or_absent_kubeconfigs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no kubeconfig at"):
        from_kubeconfig(str(tmp_path / "absent"))
    (tmp_path / "bad").write_text("clusters: [unclosed")
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        from_kubeconfig(str(tmp_path / "bad"))
    (tmp_path / "list").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        from_kubeconfig(str(tmp_path / "list"))


def test_a_missing_certificate_file_fails_when_the_context_is_made(tmp_path: Path) -> None:
    cfg = from_kubeconfig(str(write(tmp_path / "config", kubeconfig({"client-certificate": "gone.crt",
                                                                     "client-key": "gone.key"},
                                                                    {"server": "https://127.0.0.1:6443"}))))
    with pytest.raises(ConfigError, match="cannot load"):
        cfg.ssl_context()


def test_load_prefers_the_pod_unless_a_kubeconfig_is_named(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    path = str(write(tmp_path / "config", kubeconfig({"token": "t"})))
    assert load(env=IN_POD, sa_dir=sa).host == "198.18.0.1"
    assert load(env={**IN_POD, "KUBECONFIG": path}, sa_dir=sa).host == "127.0.0.1"
    assert load(path, env=IN_POD, sa_dir=sa).host == "127.0.0.1"
    assert load(env={"KUBECONFIG": path}).port == 6443


def test_a_token_source_is_a_token_or_a_file() -> None:
    with pytest.raises(ValueError):
        TokenSource()
    with pytest.raises(ValueError):
        TokenSource("t", "/path")
    assert ClusterConfig("https", "127.0.0.1", 443, token=TokenSource("t")).token.get() == "t"  # type: ignore[union-attr]


def test_certificate_data_loads_without_memfd_too(tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delattr(os, "memfd_create")  # elsewhere than Linux: a private temporary directory, removed at once
    cfg = ClusterConfig("https", "127.0.0.1", 443, cert_data=(pki / "client.crt").read_bytes(),
                        key_data=(pki / "client.key").read_bytes())
    assert cfg.ssl_context() is not None
