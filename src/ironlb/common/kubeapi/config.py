"""Where the API server is and how to prove who we are: the in-cluster service account, or a kubeconfig.

Supported: server, CA (file or data), tls-server-name, insecure-skip-tls-verify, client certificate and
key (file or data), token, tokenFile, and an exec credential plugin that hands out tokens (kubeapi.execauth).
An auth-provider, basic auth or proxy-url is refused with a clear error rather than ignored (ignoring it
would fail later as a puzzling 401 or an unreachable server).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ironlb.common.kubeapi.execauth import ExecError, ExecPlugin

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Bound service-account tokens expire (about an hour) and the kubelet rewrites the file well before:
# re-read it as client-go does, once a minute (and at once after a 401).
TOKEN_REFRESH_S = 60.0
EXPIRY_MARGIN_S = 10.0  # a plugin's token this close to its expiry is fetched again rather than sent
UNSUPPORTED_AUTH = ("auth-provider", "username", "password")


class ConfigError(Exception):
    """The API server's address or credentials are missing or unusable."""


class TokenSource:
    """A bearer token: fixed, read from a file the kubelet rotates (re-read every REFRESH_S or when told), or
    handed out by an exec credential plugin (run again when it expires or is refused)."""

    def __init__(self, token: str | None = None, path: str | None = None, refresh_s: float = TOKEN_REFRESH_S,
                 clock: Callable[[], float] = time.monotonic, plugin: ExecPlugin | None = None) -> None:
        if sum(x is not None for x in (token, path, plugin)) != 1:
            raise ValueError("one of a token, a token file or a plugin")
        self.path, self.plugin, self.refresh_s, self.clock = path, plugin, refresh_s, clock
        self._token, self._read_at = token, clock()
        self._expires: dt.datetime | None = None
        self._lock = threading.Lock()
        if path is not None:
            self._token = self._read()

    def get(self) -> str:
        """The token to send now (re-read from its file, or asked of the plugin, when due)."""
        with self._lock:
            if self.plugin is not None and self._plugin_due():
                try:
                    self._token, self._expires = self.plugin.run()
                except ExecError as exc:
                    raise ConfigError(str(exc)) from exc
            elif self.path is not None and self.clock() - self._read_at >= self.refresh_s:
                # Mid-rotation or briefly unreadable: the last token may still be good; read again next time.
                with contextlib.suppress(ConfigError):
                    self._token = self._read()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """The server refused the token (401): read the file again, or ask the plugin, before the next request."""
        with self._lock:
            self._read_at = self.clock() - self.refresh_s
            if self.plugin is not None:
                self._token = None

    def _plugin_due(self) -> bool:
        if self._token is None:
            return True
        margin = dt.timedelta(seconds=EXPIRY_MARGIN_S)
        return self._expires is not None and dt.datetime.now(dt.UTC) >= self._expires - margin

    def _read(self) -> str:
        assert self.path is not None
        try:
            token = Path(self.path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {self.path}: {exc.strerror}") from exc
        if not token:
            raise ConfigError(f"the token file {self.path} is empty")
        self._read_at = self.clock()
        return token


@dataclass(frozen=True)
class ClusterConfig:
    """One API server and the credentials to use with it."""

    scheme: str
    host: str  # without brackets, also for IPv6
    port: int
    base_path: str = ""  # a server behind a proxy may live under a path (https://proxy/k8s/clusters/c-1)
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None  # PEM
    key_data: bytes | None = None  # PEM
    server_name: str | None = None  # tls-server-name: the name the serving certificate is checked against
    insecure: bool = False
    token: TokenSource | None = None

    @property
    def server(self) -> str:
        """The server's URL, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for this server (None for plain http)."""
        if self.scheme != "https":
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self.cert_file and self.key_file:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            elif self.cert_data and self.key_data:
                _load_cert_chain_data(ctx, self.cert_data, self.key_data)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the CA or the client certificate and key for {self.server}: {exc}") from exc
        return ctx


def _load_cert_chain_data(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl reads a key only from a path: hand it one that is never on disk when we can (a memfd)."""
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fds = [os.memfd_create(f"ironlb-{name}", os.MFD_CLOEXEC) for name in ("cert", "key")]
        try:
            for fd, data in zip(fds, (cert, key), strict=True):
                with os.fdopen(os.dup(fd), "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ironlb-tls-") as tmp:  # created 0700: readable by us only
        cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        ctx.load_cert_chain(str(cert_path), str(key_path))


def parse_server(url: str) -> tuple[str, str, int, str]:
    """(scheme, host without brackets, port, base path) of a server URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"server {url!r} is not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"server {url!r}: {exc}") from exc
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def in_cluster(env: Mapping[str, str] = os.environ, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> ClusterConfig:
    """The pod's service account: KUBERNETES_SERVICE_HOST/PORT, its token (followed as it rotates) and CA."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set")
    ca = sa_dir / "ca.crt"
    if not ca.is_file():
        raise ConfigError(f"the service account's CA {ca} is missing")
    if not port.isdigit():
        raise ConfigError(f"KUBERNETES_SERVICE_PORT {port!r} is not a port number")
    return ClusterConfig("https", host.strip("[]"), int(port), ca_file=str(ca),
                         token=TokenSource(path=str(sa_dir / "token")))


@dataclass(frozen=True)
class _Entry:
    """A named cluster, user or context, and the directory its relative paths are relative to."""

    body: Mapping[str, Any]
    base: Path


def _kubeconfig_paths(path: str | None, env: Mapping[str, str]) -> list[Path]:
    if path:
        return [Path(path).expanduser()]
    if env.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _merged(paths: list[Path]) -> tuple[dict[str, dict[str, _Entry]], str | None]:
    """Clusters, users and contexts by name across the files (the first file naming one wins), and current-context."""
    import yaml  # here, not at the top: a speaker in a pod reads no kubeconfig and never loads yaml

    named: dict[str, dict[str, _Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    readable = 0
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path} is not a mapping")
        readable += 1
        current = current or doc.get("current-context") or None
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in doc.get(section) or []:
                if isinstance(item, dict) and item.get("name") and item["name"] not in named[section]:
                    named[section][item["name"]] = _Entry(item.get(inner) or {}, path.parent)
    if not readable:
        raise ConfigError(f"no kubeconfig at {os.pathsep.join(map(str, paths))}")
    return named, current


def _file(entry: _Entry, key: str) -> str | None:
    value = entry.body.get(key)
    return str(entry.base / value) if value else None  # absolute paths stay as they are


def _data(entry: _Entry, key: str, what: str) -> bytes | None:
    value = entry.body.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{what}: {key} is not base64") from exc


def from_kubeconfig(path: str | None = None, context: str | None = None,
                    env: Mapping[str, str] = os.environ) -> ClusterConfig:
    """The server and credentials of CONTEXT (else current-context) in PATH, else $KUBECONFIG, else ~/.kube/config."""
    named, current = _merged(_kubeconfig_paths(path, env))
    name = context or current
    if not name:
        raise ConfigError("the kubeconfig has no current-context and none was named")
    if name not in named["contexts"]:
        raise ConfigError(f"context {name!r} is not in the kubeconfig")
    ctx = named["contexts"][name].body
    cluster = named["clusters"].get(ctx.get("cluster") or "")
    if cluster is None:
        raise ConfigError(f"context {name!r}: cluster {ctx.get('cluster')!r} is not in the kubeconfig")
    user = named["users"].get(ctx.get("user") or "") or _Entry({}, cluster.base)
    if not cluster.body.get("server"):
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    scheme, host, port, base_path = parse_server(cluster.body["server"])
    return ClusterConfig(scheme, host, port, base_path, **_cluster_tls(cluster, ctx.get("cluster")),
                         **_credentials(user, ctx.get("user") or ""))


def _cluster_tls(cluster: _Entry, name: str) -> dict[str, Any]:
    if cluster.body.get("proxy-url"):  # ignoring it would fail later as an unreachable server
        raise ConfigError(f"cluster {name!r} is reached through proxy-url, which this client does not support")
    ca = _data(cluster, "certificate-authority-data", f"cluster {name!r}")
    return {"ca_file": None if ca else _file(cluster, "certificate-authority"),
            "ca_data": ca.decode("ascii", "replace") if ca else None,
            "server_name": cluster.body.get("tls-server-name") or None,
            "insecure": bool(cluster.body.get("insecure-skip-tls-verify"))}


def _credentials(user: _Entry, name: str) -> dict[str, Any]:
    what = f"user {name!r}"
    unsupported = [k for k in UNSUPPORTED_AUTH if user.body.get(k)]
    if unsupported:
        raise ConfigError(f"{what} authenticates with {', '.join(unsupported)}, which this client does not support "
                          "(use a client certificate or a token)")
    creds: dict[str, Any] = {}
    cert_data, key_data = _data(user, "client-certificate-data", what), _data(user, "client-key-data", what)
    cert_file = None if cert_data else _file(user, "client-certificate")
    key_file = None if key_data else _file(user, "client-key")
    if bool(cert_data or cert_file) != bool(key_data or key_file):
        raise ConfigError(f"{what} has a client certificate without its key, or a key without its certificate")
    if cert_data and key_file:  # mixed forms: read the file so both are data
        key_data, key_file = _read_bytes(key_file, what), None
    if key_data and cert_file:
        cert_data, cert_file = _read_bytes(cert_file, what), None
    creds.update(cert_file=cert_file, key_file=key_file, cert_data=cert_data, key_data=key_data)
    if user.body.get("token"):
        creds["token"] = TokenSource(token=str(user.body["token"]))
    elif user.body.get("tokenFile"):
        creds["token"] = TokenSource(path=_file(user, "tokenFile"))
    elif user.body.get("exec"):
        try:
            creds["token"] = TokenSource(plugin=ExecPlugin.from_kubeconfig(user.body["exec"], user.base))
        except ExecError as exc:
            raise ConfigError(f"{what}: {exc}") from exc
    return creds


def _read_bytes(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc


def context_namespace(path: str | None = None, context: str | None = None,
                      env: Mapping[str, str] = os.environ) -> str | None:
    """The namespace CONTEXT (else current-context) names in the kubeconfig, as kubectl defaults to it; None if
    it names none."""
    named, current = _merged(_kubeconfig_paths(path, env))
    entry = named["contexts"].get(context or current or "")
    return str(entry.body.get("namespace") or "") or None if entry else None


def load(kubeconfig: str | None = None, context: str | None = None, env: Mapping[str, str] = os.environ,
         sa_dir: Path = SERVICE_ACCOUNT_DIR) -> ClusterConfig:
    """In-cluster when in a pod and no kubeconfig is named (argument or $KUBECONFIG), else the kubeconfig."""
    if env.get("KUBERNETES_SERVICE_HOST") and not (kubeconfig or env.get("KUBECONFIG")):
        return in_cluster(env, sa_dir)
    return from_kubeconfig(kubeconfig, context, env)
