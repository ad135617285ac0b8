"""Who may read /metrics: a bearer token checked by TokenReview, authorised by SubjectAccessReview.

As kube-rbac-proxy does: the token must authenticate to the API server, and its user must be allowed
`get` on the non-resource URL /metrics (a ClusterRole users bind to Prometheus). Answers are cached
briefly (by a hash of the token, never the token itself) in a bounded cache; reviews in flight and reviews
per second are bounded, so anyone on the network can cost the API server at most REVIEW_RATE reviews a
second per component (beyond it, an unknown token is answered 503 without asking).

The token may come in `Authorization` or, through the API server's proxy (which strips Authorization),
in METRICS_TOKEN_HEADER: either way it is the same token, reviewed the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Protocol

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.common.correlator import TokenBucket
from ironlb.common.throttle import Throttle

log = logging.getLogger(__name__)
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
ALLOWED_TTL_S = 60.0  # a revoked token or binding keeps working this long at most
REFUSED_TTL_S = 10.0  # a token just bound to the role waits this long at most
MAX_ENTRIES = 1024  # distinct tokens remembered; the oldest answer goes first
MAX_REVIEWS = 4  # reviews in flight at once; more requests wait (each holds one capped connection)
MAX_TOKEN = 4096  # bytes; a longer "token" is refused without asking the API server
REVIEW_TIMEOUT = (2.0, 5.0)  # (connect, read) seconds
REVIEW_RATE, REVIEW_BURST = 5.0, 20  # reviews a second, sustained; and at once after a quiet while


class Access(Enum):
    """What became of a request's credentials (tests and metrics read this, never a message)."""

    ALLOWED = "allowed"
    NO_TOKEN = "no-token"  # 401: no bearer token at all
    UNAUTHENTICATED = "unauthenticated"  # 401: the API server does not know the token
    FORBIDDEN = "forbidden"  # 403: a known user without `get` on the path
    UNAVAILABLE = "unavailable"  # 503: the API server could not be asked; nothing cached

    @property
    def status(self) -> int:
        """The HTTP status that says so."""
        return {Access.ALLOWED: 200, Access.NO_TOKEN: 401, Access.UNAUTHENTICATED: 401, Access.FORBIDDEN: 403,
                Access.UNAVAILABLE: 503}[self]


class Authorizer(Protocol):
    """Decides on a request's Authorization header."""

    async def check(self, authorization: str | None) -> Access:
        """The decision for this header (None: the request had none)."""


class ReviewClient(Protocol):
    """The part of ironlb.common.kubeapi.Client the reviews use."""

    def request(self, method: str, path: str, params: Any = None, *, body: Any = None,
                content_type: str = "application/json", timeout: Any = None) -> dict[str, Any]:
        """POST a review; its answer."""


class DecisionCache:
    """Decisions by token digest, each kept for its TTL, at most MAX entries (oldest evicted)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES) -> None:
        self.clock, self.max_entries = clock, max_entries
        self._entries: OrderedDict[bytes, tuple[float, Access]] = OrderedDict()

    def get(self, key: bytes) -> Access | None:
        """The cached decision, unless expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: bytes, access: Access) -> None:
        """Remember ACCESS (an unavailable API server is never remembered)."""
        if access is Access.UNAVAILABLE:
            return
        ttl = ALLOWED_TTL_S if access is Access.ALLOWED else REFUSED_TTL_S
        self._entries[key] = (self.clock() + ttl, access)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def credentials(headers: Mapping[str, str]) -> str | None:
    """The header holding a request's token (lower-cased names): Authorization, else METRICS_TOKEN_HEADER."""
    return headers.get("authorization") or headers.get(METRICS_TOKEN_HEADER.lower()) or None


class TokenReviewAuthorizer:
    """Bearer tokens reviewed by the API server for `VERB PATH` (a non-resource URL)."""

    def __init__(self, api: ReviewClient, path: str = "/metrics", verb: str = "get",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.path, self.verb = api, path, verb
        self.cache = DecisionCache(clock)
        self._reviews = asyncio.Semaphore(MAX_REVIEWS)
        self._budget = TokenBucket(REVIEW_BURST, 1.0 / REVIEW_RATE, clock())
        self._log = Throttle(60.0)

    async def check(self, authorization: str | None) -> Access:
        """ALLOWED, or why not."""
        token = bearer_token(authorization)
        if token is None:
            return Access.NO_TOKEN
        if len(token) > MAX_TOKEN:
            return Access.UNAUTHENTICATED
        key = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        if (cached := self.cache.get(key)) is not None:
            return cached
        async with self._reviews:
            if (cached := self.cache.get(key)) is not None:  # answered while this request waited
                return cached
            # A stream of unknown tokens: the API server is not asked for each.
            if not self._budget.take(self.cache.clock()):
                return Access.UNAVAILABLE
            access = await asyncio.to_thread(self.review, token)
        self.cache.put(key, access)
        return access

    def review(self, token: str) -> Access:
        """Ask the API server: who is this, and may they get PATH? (Blocking: run in a thread.)"""
        try:
            who = self.api.request("POST", TOKEN_REVIEWS, body={
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
                timeout=REVIEW_TIMEOUT).get("status") or {}
            if not who.get("authenticated"):
                return Access.UNAUTHENTICATED
            user = who.get("user") or {}
            spec = {"user": user.get("username", ""), "groups": user.get("groups") or [],
                    "nonResourceAttributes": {"path": self.path, "verb": self.verb}}
            if user.get("uid"):
                spec["uid"] = user["uid"]
            if user.get("extra"):
                spec["extra"] = user["extra"]
            answer = self.api.request("POST", ACCESS_REVIEWS, body={
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
                timeout=REVIEW_TIMEOUT).get("status") or {}
        except Exception as exc:  # refused, timed out, not JSON: the API cannot answer now
            if (suppressed := self._log.allow("review")) is not None:
                log.warning("cannot review a metrics token (%s more since the last warning): %s", suppressed, exc)
            return Access.UNAVAILABLE
        return Access.ALLOWED if answer.get("allowed") and not answer.get("denied") else Access.FORBIDDEN
