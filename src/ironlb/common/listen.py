"""Where a component serves health and metrics, and who may read its metrics: options shared by both.

Metrics bound to a loopback address are served in plain HTTP (only the node's own processes reach them);
bound anywhere else they need a bearer token allowed `get` on /metrics, unless `--metrics-auth none` is
given explicitly; with a certificate and key they are served in HTTPS, so the token is not sent in clear.
Health has a listener of its own unless `--health-port 0`.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from ironlb.common.http import HealthServer
from ironlb.common.httpauth import ReviewClient, TokenReviewAuthorizer
from ironlb.common.tlsfiles import TlsFiles

AUTH_KUBERNETES, AUTH_NONE = "kubernetes", "none"


def add_arguments(p: argparse.ArgumentParser, env: Callable[..., str | None], *, metrics_port: int,
                  health_host: str, health_port: int) -> None:
    """The --metrics-* and --health-* options (and their IRONLB_* environment variables)."""
    p.add_argument("--metrics-host", default=env("IRONLB_METRICS_HOST", "127.0.0.1"),
                   help="address /metrics listens on (e.g. the node's or the pod's address)")
    p.add_argument("--metrics-port", type=int, default=int(env("IRONLB_METRICS_PORT", str(metrics_port)) or 0))
    p.add_argument("--metrics-auth", choices=[AUTH_KUBERNETES, AUTH_NONE], default=env("IRONLB_METRICS_AUTH") or None,
                   help="kubernetes: a bearer token reviewed by the API server (TokenReview), whose user may get "
                        "the non-resource URL /metrics (SubjectAccessReview); none: plain HTTP. Default: none on "
                        "a loopback address, kubernetes anywhere else")
    p.add_argument("--metrics-tls-cert", default=env("IRONLB_METRICS_TLS_CERT") or None,
                   help="PEM certificate (chain) for /metrics in HTTPS, e.g. from a kubernetes.io/tls Secret; "
                        "reloaded when it changes")
    p.add_argument("--metrics-tls-key", default=env("IRONLB_METRICS_TLS_KEY") or None, help="its PEM private key")
    p.add_argument("--health-host", default=env("IRONLB_HEALTH_HOST", health_host),
                   help="address /healthz and /readyz listen on")
    p.add_argument("--health-port", type=int, default=int(env("IRONLB_HEALTH_PORT", str(health_port)) or 0),
                   help="port of /healthz and /readyz, served apart from metrics; 0: on the metrics listener")


def metrics_auth(args: argparse.Namespace) -> str:
    """The metrics authentication in force: as given, else by the address metrics listen on."""
    return args.metrics_auth or (AUTH_NONE if is_loopback(args.metrics_host) else AUTH_KUBERNETES)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def health_server(args: argparse.Namespace, registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]],
                  api: ReviewClient) -> HealthServer:
    """The server the options describe (API: where tokens are reviewed)."""
    authorizer = TokenReviewAuthorizer(api) if metrics_auth(args) == AUTH_KUBERNETES else None
    health = (args.health_host, args.health_port) if args.health_port else None
    tls = TlsFiles(args.metrics_tls_cert, args.metrics_tls_key).context if args.metrics_tls_cert else None
    return HealthServer(registry, ready, args.metrics_host, args.metrics_port, health=health, authorizer=authorizer,
                        tls=tls)
