"""Where health and metrics listen, and when metrics need a token."""

from __future__ import annotations

import argparse
import os

import pytest

from ironlb.common import listen
from ironlb.common.httpauth import TokenReviewAuthorizer


def parse(*argv: str, env: dict[str, str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    values = env or {}
    listen.add_arguments(p, lambda k, d=None: values.get(k, d), metrics_port=7473, health_host="127.0.0.1",
                         health_port=7474)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("host, auth", [("127.0.0.1", "none"), ("::1", "none"), ("localhost", "none"),
                                        ("192.0.2.11", "kubernetes"), ("0.0.0.0", "kubernetes"),
                                        ("::", "kubernetes"), ("node-1.example", "kubernetes")])
def test_plain_metrics_only_on_a_loopback_unless_asked(host: str, auth: str) -> None:
    assert listen.metrics_auth(parse("--metrics-host", host)) == auth
    assert listen.metrics_auth(parse("--metrics-host", host, "--metrics-auth", "none")) == "none"  # explicit
    assert listen.metrics_auth(parse(env={"IRONLB_METRICS_HOST": host, "IRONLB_METRICS_AUTH": "kubernetes"})) == (
        "kubernetes")


def test_the_server_the_options_describe() -> None:
    args = parse(env={"IRONLB_METRICS_HOST": "192.0.2.11", "IRONLB_HEALTH_PORT": "9101"})
    server = listen.health_server(args, object(), lambda: (True, ""), api=object())  # type: ignore[arg-type]
    assert isinstance(server.authorizer, TokenReviewAuthorizer)
    assert (server.host, server.port) == ("192.0.2.11", 7473)
    assert server.health is not None and (server.health.listener.host, server.health.listener.port) == (
        "127.0.0.1", 9101)
    shared = listen.health_server(parse("--health-port", "0"), object(), lambda: (True, ""), api=object())  # type: ignore[arg-type]
    assert shared.health is None and shared.authorizer is None
    assert os.environ.get("IRONLB_METRICS_AUTH") is None  # nothing leaked into the environment
