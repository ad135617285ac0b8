"""Bearer tokens for /metrics: TokenReview then SubjectAccessReview, cached briefly and boundedly."""

from __future__ import annotations

from typing import Any

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.common import httpauth
from ironlb.common.httpauth import Access, DecisionCache, TokenReviewAuthorizer, bearer_token, credentials


class FakeApi:
    """Answers reviews: tokens in `users` authenticate; users in `allowed` may get /metrics."""

    def __init__(self) -> None:
        self.users = {"prom-token": "system:serviceaccount:monitoring:prometheus", "other": "alice"}
        self.allowed = {"system:serviceaccount:monitoring:prometheus"}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    def request(self, method: str, path: str, params: Any = None, *, body: Any = None,
                content_type: str = "application/json", timeout: Any = None) -> dict[str, Any]:
        assert method == "POST" and timeout is not None
        self.calls.append((path, body))
        if self.down:
            raise OSError("connection refused")
        if path == httpauth.TOKEN_REVIEWS:
            user = self.users.get(body["spec"]["token"])
            return {"status": {"authenticated": True, "user": {"username": user, "groups": ["g"], "uid": "u1"}}
                    if user else {"authenticated": False}}
        assert body["spec"]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
        assert body["spec"]["groups"] == ["g"] and body["spec"]["uid"] == "u1"
        return {"status": {"allowed": body["spec"]["user"] in self.allowed}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token(None) is None and bearer_token("Basic abc") is None and bearer_token("Bearer ") is None


async def test_decisions_and_what_each_costs_the_api_server() -> None:
    api, clock = FakeApi(), Clock()
    auth = TokenReviewAuthorizer(api, clock=clock)
    assert await auth.check(None) is Access.NO_TOKEN and api.calls == []  # no token: no review
    assert await auth.check("Bearer " + "x" * (httpauth.MAX_TOKEN + 1)) is Access.UNAUTHENTICATED
    assert api.calls == []
    assert await auth.check("Bearer forged") is Access.UNAUTHENTICATED
    assert await auth.check("Bearer other") is Access.FORBIDDEN
    assert await auth.check("Bearer prom-token") is Access.ALLOWED
    calls = len(api.calls)
    for token in ("forged", "other", "prom-token"):  # each answer cached: no new review
        await auth.check(f"Bearer {token}")
    assert len(api.calls) == calls
    assert all("prom-token" not in str(k) for k in auth.cache._entries)  # keyed by digest, not the token
    clock.now += httpauth.REFUSED_TTL_S + 0.1  # refusals expire first
    api.users["forged"] = "system:serviceaccount:monitoring:prometheus"
    assert await auth.check("Bearer forged") is Access.ALLOWED
    api.allowed.clear()
    assert await auth.check("Bearer prom-token") is Access.ALLOWED  # still within its TTL
    clock.now += httpauth.ALLOWED_TTL_S
    assert await auth.check("Bearer prom-token") is Access.FORBIDDEN  # the binding's removal seen


async def test_an_unreachable_api_server_is_unavailable_and_never_cached() -> None:
    api = FakeApi()
    auth = TokenReviewAuthorizer(api)
    api.down = True
    assert await auth.check("Bearer prom-token") is Access.UNAVAILABLE and Access.UNAVAILABLE.status == 503
    api.down = False
    assert await auth.check("Bearer prom-token") is Access.ALLOWED


def test_the_cache_is_bounded_oldest_first() -> None:
    clock = Clock()
    cache = DecisionCache(clock, max_entries=3)
    for i in range(5):
        cache.put(bytes([i]), Access.ALLOWED)
    assert len(cache) == 3 and cache.get(b"\x00") is None and cache.get(b"\x04") is Access.ALLOWED
    cache.put(b"x", Access.UNAVAILABLE)
    assert cache.get(b"x") is None


async def test_unknown_tokens_cost_the_api_server_a_bounded_rate() -> None:
    api, clock = FakeApi(), Clock()
    auth = TokenReviewAuthorizer(api, clock=clock)
    answers = [await auth.check(f"Bearer forged-{i}") for i in range(httpauth.REVIEW_BURST + 30)]
    assert answers.count(Access.UNAUTHENTICATED) == httpauth.REVIEW_BURST  # the burst, reviewed
    assert set(answers[httpauth.REVIEW_BURST:]) == {Access.UNAVAILABLE}  # then 503, the API server not asked
    assert len(api.calls) == httpauth.REVIEW_BURST
    clock.now += 1.0  # a second later: REVIEW_RATE more
    assert await auth.check("Bearer prom-token") is Access.ALLOWED
    assert await auth.check("Bearer forged-0") is Access.UNAUTHENTICATED  # cached: costs nothing


async def test_the_proxied_header_carries_a_token_through_the_same_review() -> None:
    """X-Ironlb-Authorization (what passes the API server's proxy) is reviewed, cached and bounded like
    Authorization: an unknown or unauthorised token in it is refused, after asking the API server."""
    proxied = METRICS_TOKEN_HEADER.lower()
    assert credentials({proxied: "Bearer a"}) == "Bearer a" and credentials({}) is None
    assert credentials({"authorization": "Bearer a", proxied: "Bearer b"}) == "Bearer a"
    api = FakeApi()
    auth = TokenReviewAuthorizer(api)
    answers = [await auth.check(credentials({proxied: f"Bearer {t}"})) for t in ("forged", "other", "prom-token")]
    assert answers == [Access.UNAUTHENTICATED, Access.FORBIDDEN, Access.ALLOWED]
    assert [path for path, _ in api.calls] == [httpauth.TOKEN_REVIEWS, httpauth.TOKEN_REVIEWS,
                                               httpauth.ACCESS_REVIEWS, httpauth.TOKEN_REVIEWS,
                                               httpauth.ACCESS_REVIEWS]
    assert await auth.check(credentials({"authorization": "Bearer prom-token"})) is Access.ALLOWED
    assert len(api.calls) == 5  # the same token in either header: one cached decision
