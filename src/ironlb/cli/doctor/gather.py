"""The thin API-reading layer of `ironlb doctor`: plain objects from the API, speakers' metrics by proxy.

Read-only: GETs with the user's kubeconfig, and one TokenRequest (which stores nothing). Speakers' /metrics
are read through the API server (pod proxy when the speaker runs as a Pod, else node proxy), never by
logging in to a node. The proxy drops the user's own Authorization header, so doctor asks for a short-lived
token of the chart's <release>-doctor ServiceAccount (which may read /metrics and nothing else) and sends
it in METRICS_TOKEN_HEADER, which the proxy passes on and the speakers review as they would Authorization.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.cli.doctor.context import nodes_to_scrape
from ironlb.cli.doctor.model import TokenOutcome
from ironlb.common.httpauth import Access
from ironlb.common.kubeapi import (
    ENDPOINTSLICES,
    EVENTS,
    IP_ADDRESS_POOLS,
    L2_ADVERTISEMENTS,
    NODES,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
    ApiError,
    Client,
)
from ironlb.common.kubeapi.resources import BFD_PROFILES, BGP_ADVERTISEMENTS, BGP_NODE_STATUSES, BGP_PEERS

TIMEOUT = 5.0  # seconds per API call
SCRAPE_TIMEOUT = 3.0
SPEAKER_SELECTOR = "app.kubernetes.io/component=speaker"
DOCTOR_SELECTOR = "app.kubernetes.io/name=ironlb,app.kubernetes.io/component=doctor"  # the chart's labels
TOKEN_SECONDS = 600  # the shortest lifetime the API server grants: the token outlives one run by little


def read_service(kube: Client, namespace: str, name: str) -> dict[str, Any] | None:
    """The Service, or None when it does not exist."""
    try:
        return kube.get(SERVICES, name, namespace, timeout=TIMEOUT)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def gather(kube: Client, namespace: str, name: str, lb_class: str | None,
           metrics_port: int = 7473) -> dict[str, Any]:
    """Every fact the verdict needs (see ironlb.cli.doctor.context), read from the API."""
    facts: dict[str, Any] = {"namespace": namespace, "name": name, "lbClass": lb_class,
                             "service": read_service(kube, namespace, name)}
    if facts["service"] is None:
        return facts
    uid = facts["service"]["metadata"].get("uid")
    facts["pools"] = kube.list(IP_ADDRESS_POOLS, timeout=TIMEOUT)["items"]
    facts["advertisements"] = kube.list(L2_ADVERTISEMENTS, timeout=TIMEOUT)["items"]
    facts["nodes"] = kube.list(NODES, timeout=TIMEOUT)["items"]
    facts["ignoreExcludeLB"] = speakers_ignore_exclude_lb(kube)
    facts["slices"] = kube.list(ENDPOINTSLICES, namespace, timeout=TIMEOUT,
                                labelSelector=f"kubernetes.io/service-name={name}")["items"]
    events = kube.list(EVENTS, namespace, timeout=TIMEOUT,
                       fieldSelector=f"involvedObject.kind=Service,involvedObject.name={name}")["items"]
    # An earlier Service of the same name is another object: its Events are not this one's.
    facts["events"] = [e for e in events if (e.get("involvedObject") or {}).get("uid") in (None, uid)]
    facts.update(bgp_facts(kube))
    nodes = nodes_to_scrape(facts)
    pods = _speaker_pods(kube) if nodes else {}
    token = request_token(kube, sorted({ns for ns, _ in pods.values()})) if nodes else MetricsToken(
        TokenOutcome.NOT_NEEDED)
    facts["metricsToken"] = token.as_fact()
    facts["speakers"] = scrape_speakers(kube, nodes, metrics_port, pods, token.headers())
    return facts


def bgp_facts(kube: Client) -> dict[str, list[dict[str, Any]]]:
    """BGP mode's objects and the nodes' BGPNodeStatus (none read when the cluster has no BGP object, or no CRD)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, resource in (("bgpPeers", BGP_PEERS), ("bfdProfiles", BFD_PROFILES),
                          ("bgpAdvertisements", BGP_ADVERTISEMENTS)):
        try:
            out[key] = kube.list(resource, timeout=TIMEOUT)["items"]
        except ApiError as exc:
            if exc.status not in (403, 404):  # not installed, or not for this user: no BGP links
                raise
            out[key] = []
    if any(out.values()):
        out["bgpNodeStatuses"] = kube.list(BGP_NODE_STATUSES, timeout=TIMEOUT)["items"]
    return out


@dataclass(frozen=True)
class MetricsToken:
    """A token for the speakers' /metrics, or why there is none."""

    outcome: TokenOutcome
    service_account: str = ""  # namespace/name
    error: str = ""
    token: str = field(default="", repr=False)

    def headers(self) -> dict[str, str]:
        """The header that carries it through the API server's proxy (none without a token)."""
        return {METRICS_TOKEN_HEADER: f"Bearer {self.token}"} if self.token else {}

    def as_fact(self) -> dict[str, str]:
        """What the verdict reads (never the token itself)."""
        return {"outcome": self.outcome.value, "serviceAccount": self.service_account, "error": self.error}


def _api_error(exc: Exception) -> str:
    return f"{exc.status} {exc.reason}".strip() if isinstance(exc, ApiError) else type(exc).__name__


def request_token(kube: Client, namespaces: Sequence[str] = ()) -> MetricsToken:
    """A TokenRequest token of IronLB's doctor ServiceAccount (found by its labels, like the speakers; one in
    NAMESPACES, where the speakers run, first), or why none could be had."""
    try:
        found = kube.list(SERVICE_ACCOUNTS, timeout=TIMEOUT, labelSelector=DOCTOR_SELECTOR)["items"]
    except (ApiError, OSError) as exc:
        forbidden = isinstance(exc, ApiError) and exc.status == 403
        return MetricsToken(TokenOutcome.CANNOT_LIST if forbidden else TokenOutcome.FAILED, error=_api_error(exc))
    accounts = sorted(((a["metadata"]["namespace"], a["metadata"]["name"]) for a in found),
                      key=lambda a: (a[0] not in namespaces, a))
    if not accounts:
        return MetricsToken(TokenOutcome.NO_SERVICE_ACCOUNT)
    namespace, name = accounts[0]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            # no audiences: the API server's own, which TokenReview accepts
            "spec": {"audiences": [], "expirationSeconds": TOKEN_SECONDS}}
    where = f"{namespace}/{name}"
    try:
        answer = kube.request("POST", SERVICE_ACCOUNTS.path(namespace, name, "token"), body=body, timeout=TIMEOUT)
    except (ApiError, OSError) as exc:
        status = exc.status if isinstance(exc, ApiError) else None
        outcome = {403: TokenOutcome.FORBIDDEN, 404: TokenOutcome.NO_SERVICE_ACCOUNT}.get(status or 0,
                                                                                          TokenOutcome.FAILED)
        return MetricsToken(outcome, where, _api_error(exc))
    token = str((answer.get("status") or {}).get("token") or "")
    return MetricsToken(TokenOutcome.ISSUED if token else TokenOutcome.FAILED, where, token=token)


def speakers_ignore_exclude_lb(kube: Client) -> bool:
    """True when a speaker Pod runs with --ignore-exclude-lb (the chart sets IRONLB_IGNORE_EXCLUDE_LB); False when
    none does, or when the Pods cannot be read (the label then counts, as the speakers' default)."""
    try:
        pods = kube.list(PODS, timeout=TIMEOUT, labelSelector=SPEAKER_SELECTOR)["items"]
    except ApiError:
        return False
    return any(ignores_exclude_lb(c) for p in pods for c in (p.get("spec") or {}).get("containers") or [])


def ignores_exclude_lb(container: Mapping[str, Any]) -> bool:
    """Does this speaker container run with --ignore-exclude-lb (by its environment or its arguments)?"""
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    return env.get("IRONLB_IGNORE_EXCLUDE_LB") == "true" or "--ignore-exclude-lb=true" in args


def _speaker_pods(kube: Client) -> dict[str, tuple[str, str]]:
    """Node -> (namespace, pod) of a running speaker Pod (none when speakers run outside Pods)."""
    try:
        pods = kube.list(PODS, timeout=TIMEOUT, labelSelector=SPEAKER_SELECTOR)["items"]
    except ApiError:
        return {}
    return {p["spec"]["nodeName"]: (p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods
            if (p.get("spec") or {}).get("nodeName") and (p.get("status") or {}).get("phase") == "Running"}


def metrics_path(node: str, pod: tuple[str, str] | None, port: int) -> str:
    """The API server's proxy path to a speaker's /metrics: through its Pod when it runs as one, else its node."""
    if pod:
        return PODS.path(pod[0], f"{pod[1]}:{port}", "proxy") + "/metrics"
    return NODES.path(None, f"{node}:{port}", "proxy") + "/metrics"


def _scrape(kube: Client, node: str, pod: tuple[str, str] | None, port: int,
            headers: Mapping[str, str]) -> dict[str, Any]:
    try:
        answer = kube.exchange("GET", metrics_path(node, pod, port), timeout=SCRAPE_TIMEOUT, headers=headers)
        return parse_metrics(answer.read().decode())
    except ApiError as exc:
        out = {"error": f"{'pod' if pod else 'node'} proxy: {exc.status} {exc.reason}".strip()}
        if (refused := refusal(exc)) is not None:  # the speaker answered: up, but it would not show its metrics
            out["refused"] = refused.value
        return out
    except Exception as exc:  # a timeout, a refused connection, garbage: the speaker did not answer
        return {"error": f"{'pod' if pod else 'node'} proxy: {type(exc).__name__}"}


def refusal(exc: ApiError) -> Access | None:
    """The speaker's own refusal (its status and one-word body), else None (the API server's, or a proxy error)."""
    try:
        access = Access(exc.message.strip())
    except ValueError:
        return None
    return access if access is not Access.ALLOWED and access.status == exc.status else None


def scrape_speakers(kube: Client, nodes: list[str], port: int, pods: Mapping[str, tuple[str, str]],
                    headers: Mapping[str, str]) -> dict[str, Mapping[str, Any]]:
    """Node -> its speaker's parsed metrics (PODS: where speakers run as Pods; HEADERS: doctor's token), or the
    error reading them."""
    if not nodes:
        return {}
    with ThreadPoolExecutor(min(8, len(nodes))) as pool:
        results = pool.map(lambda n: _scrape(kube, n, pods.get(n), port, headers), nodes)
        return dict(zip(nodes, results, strict=True))


def parse_metrics(text: str) -> dict[str, Any]:
    """Prometheus text as plain samples and family names."""
    families = list(text_string_to_metric_families(text))
    return {"families": [f.name for f in families],
            "samples": [{"name": s.name, "labels": dict(s.labels), "value": s.value}
                        for f in families for s in f.samples]}
