"""A small Kubernetes REST client: JSON in and out, a timeout on every request, errors keyed by status.

Objects are plain dicts as the API sends them (camelCase, no model classes). A request the server
refuses raises ApiError (status, HTTP reason, and the Status message from the body); a request that
never got an answer (timeout, refused, reset, cut short) raises an OSError.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from ironlb.common.kubeapi.config import ClusterConfig
from ironlb.common.kubeapi.resources import Resource
from ironlb.common.kubeapi.transport import Exchange, Pool, ProtocolError, Timeout, resolve_timeout, send
from ironlb.common.kubeapi.watch import WatchStream

DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)  # (connect, read) seconds, for calls that name none
STRATEGIC = "application/strategic-merge-patch+json"  # lists merge by key (conditions by type); core kinds only
MERGE = "application/merge-patch+json"  # RFC 7386: lists are replaced; works for custom resources too
JSON_PATCH = "application/json-patch+json"  # RFC 6902: a list of operations
APPLY = "application/apply-patch+yaml"  # server-side apply (JSON is YAML); needs the fieldManager parameter
USER_AGENT = "ironlb"


class ApiError(Exception):
    """The API server answered with an error: STATUS (e.g. 404, 409, 410), its reason and message."""

    def __init__(self, status: int, reason: str = "", message: str = "", status_reason: str = "",
                 body: Mapping[str, Any] | None = None) -> None:
        self.status, self.reason, self.message = status, reason, message
        self.status_reason = status_reason  # the Status object's machine word: NotFound, AlreadyExists, Expired...
        self.body = body
        super().__init__(f"{status} {reason}" + (f": {message}" if message else ""))

    @property
    def gone(self) -> bool:
        """410: the resourceVersion (or continue token) asked for is too old; list again."""
        return self.status == 410

    @classmethod
    def from_status(cls, status: Mapping[str, Any], http_reason: str = "") -> ApiError:
        """From a Status object (a watch's ERROR event, or an error response's body)."""
        code = status.get("code")
        return cls(code if isinstance(code, int) else 0, http_reason or str(status.get("reason") or ""),
                   str(status.get("message") or ""), str(status.get("reason") or ""), status)

    @classmethod
    def from_response(cls, status: int, reason: str, data: bytes) -> ApiError:
        """From an error response: the Status in its body if it has one, else the text."""
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("kind") == "Status":
            return cls.from_status({**body, "code": status}, reason)
        return cls(status, reason, data[:500].decode("utf-8", "replace").strip())


def query_string(params: Mapping[str, Any]) -> str:
    """URL query from PARAMS, leaving out None; booleans as the API spells them."""
    pairs = [(k, ("true" if v else "false") if isinstance(v, bool) else str(v))
             for k, v in params.items() if v is not None]
    return "?" + urlencode(pairs) if pairs else ""


class Client:
    """Requests to one API server, over a pool of kept-alive connections; safe to share between threads."""

    def __init__(self, config: ClusterConfig, pool_size: int = 16, timeout: float | Timeout = DEFAULT_TIMEOUT) -> None:
        self.config, self.timeout = config, resolve_timeout(timeout)
        self.pool = Pool(config.host, config.port, config.ssl_context(), config.server_name, maxsize=pool_size)
        self._writes: Counter[tuple[str, str]] = Counter()  # (verb, resource[/subresource]) -> writes sent
        self._writes_lock = threading.Lock()  # the client is shared between threads

    def writes(self) -> dict[tuple[str, str], int]:
        """The writes sent so far, by (verb, resource): create, update, patch or delete; e.g. services/status."""
        with self._writes_lock:
            return dict(self._writes)

    def _wrote(self, verb: str, resource: Resource, subresource: str | None = None) -> None:
        with self._writes_lock:
            self._writes[verb, f"{resource.plural}/{subresource}" if subresource else resource.plural] += 1

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, resource: Resource, name: str, namespace: str | None = None, *, subresource: str | None = None,
            timeout: float | Timeout | None = None) -> dict[str, Any]:
        """One object."""
        return self.request("GET", resource.path(namespace, name, subresource), timeout=timeout)

    def list(self, resource: Resource, namespace: str | None = None, *, timeout: float | Timeout | None = None,
             **params: Any) -> dict[str, Any]:
        """One list response (items, metadata.resourceVersion, metadata.continue); PARAMS as the API names them
        (labelSelector, fieldSelector, limit, continue, resourceVersion)."""
        return self.request("GET", resource.path(namespace), params, timeout=timeout)

    def create(self, resource: Resource, body: Mapping[str, Any], namespace: str | None = None, *,
               timeout: float | Timeout | None = None) -> dict[str, Any]:
        """POST a new object; 409 if it exists."""
        self._wrote("create", resource)
        return self.request("POST", resource.path(namespace), body=body, timeout=timeout)

    def replace(self, resource: Resource, name: str, body: Mapping[str, Any], namespace: str | None = None, *,
                subresource: str | None = None, timeout: float | Timeout | None = None) -> dict[str, Any]:
        """PUT the whole object (409 if metadata.resourceVersion is not the current one)."""
        self._wrote("update", resource, subresource)
        return self.request("PUT", resource.path(namespace, name, subresource), body=body, timeout=timeout)

    def patch(self, resource: Resource, name: str, body: Any, namespace: str | None = None, *,
              subresource: str | None = None, content_type: str = STRATEGIC,
              timeout: float | Timeout | None = None) -> dict[str, Any]:
        """PATCH the object (strategic merge by default, as kubectl and the kubernetes package send a dict)."""
        self._wrote("patch", resource, subresource)
        return self.request("PATCH", resource.path(namespace, name, subresource), body=body,
                            content_type=content_type, timeout=timeout)

    def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
               timeout: float | Timeout | None = None) -> dict[str, Any]:
        """DELETE the object."""
        self._wrote("delete", resource)
        return self.request("DELETE", resource.path(namespace, name), timeout=timeout)

    def watch(self, resource: Resource, namespace: str | None = None, *, resource_version: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True,
              timeout: float | Timeout | None = None, **params: Any) -> WatchStream:
        """A watch from RESOURCE_VERSION, which the server ends after TIMEOUT_SECONDS; the read timeout bounds
        the silence between events (keep it above TIMEOUT_SECONDS, or bookmarks' interval)."""
        query = {**params, "watch": True, "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": allow_bookmarks or None}
        return WatchStream(self.exchange("GET", resource.path(namespace) + query_string(query), timeout=timeout))

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None, *, body: Any = None,
                content_type: str = "application/json", timeout: float | Timeout | None = None) -> dict[str, Any]:
        """One request; the decoded JSON body of a 2xx answer, else ApiError."""
        data = self.exchange(method, path + query_string(params or {}), body=body, content_type=content_type,
                             timeout=timeout).read()
        try:
            return json.loads(data) if data else {}
        except ValueError as exc:
            raise ProtocolError(f"the answer to {method} {path} is not JSON") from exc

    def exchange(self, method: str, url: str, *, body: Any = None, content_type: str = "application/json",
                 timeout: float | Timeout | None = None, headers: Mapping[str, str] | None = None) -> Exchange:
        """Send a request (with HEADERS besides the client's own) and read the response's head; ApiError if it is
        not a 2xx (the body is then read)."""
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        limits = self.timeout if timeout is None else resolve_timeout(timeout)
        token = self.config.token.get() if self.config.token else None
        extra = dict(headers or {})
        response = self._send(method, url, payload, content_type, limits, token, extra)
        if response.status == 401 and self.config.token is not None:
            self.config.token.invalidate()  # rotated under us: the file may hold a newer token
            if (fresh := self.config.token.get()) != token:
                response.read()  # a refused request did nothing: sending it again with the new token is safe
                response = self._send(method, url, payload, content_type, limits, fresh, extra)
        if 200 <= response.status < 300:
            return response
        raise ApiError.from_response(response.status, response.reason, response.read())

    def _send(self, method: str, url: str, payload: bytes | None, content_type: str, limits: Timeout,
              token: str | None, extra: dict[str, str]) -> Exchange:
        headers = {**extra, **self._headers(token, content_type if payload is not None else None)}
        return send(self.pool, method, self.config.base_path + url, headers, payload, limits)

    @staticmethod
    def _headers(token: str | None, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers
