"""The thin API-reading layer of `ironlb doctor`: plain objects from the API, speakers' metrics by proxy.

Read-only: only GETs, with the user's kubeconfig. Speakers' /metrics are read through the API server
(pod proxy when the speaker runs as a Pod, else node proxy), never by logging in to a node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, L2ADVERTISEMENTS, VERSION
from ironlb.cli.doctor.context import nodes_to_scrape

TIMEOUT = 5.0  # seconds per API call
SCRAPE_TIMEOUT = 3.0
SPEAKER_SELECTOR = "app.kubernetes.io/component=speaker"


def _raw(call: Any, *args: Any, **kwargs: Any) -> Any:
    """An API response as plain JSON (camelCase, as kubectl shows it)."""
    resp = call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
    return json.loads(resp.data)


def read_service(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any] | None:
    """The Service, or None when it does not exist."""
    try:
        return _raw(core.read_namespaced_service, name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def gather(api: client.ApiClient, namespace: str, name: str, lb_class: str | None,
           metrics_port: int = 7473) -> dict[str, Any]:
    """Every fact the verdict needs (see ironlb.cli.doctor.context), read from the API."""
    core, disc, custom = client.CoreV1Api(api), client.DiscoveryV1Api(api), client.CustomObjectsApi(api)
    facts: dict[str, Any] = {"namespace": namespace, "name": name, "lbClass": lb_class,
                             "service": read_service(core, namespace, name)}
    if facts["service"] is None:
        return facts
    uid = facts["service"]["metadata"].get("uid")
    facts["pools"] = custom.list_cluster_custom_object(GROUP, VERSION, IPADDRESSPOOLS,
                                                       _request_timeout=TIMEOUT)["items"]
    facts["advertisements"] = custom.list_cluster_custom_object(GROUP, VERSION, L2ADVERTISEMENTS,
                                                                _request_timeout=TIMEOUT)["items"]
    facts["nodes"] = _raw(core.list_node)["items"]
    facts["slices"] = _raw(disc.list_namespaced_endpoint_slice, namespace,
                           label_selector=f"kubernetes.io/service-name={name}")["items"]
    events = _raw(core.list_namespaced_event, namespace,
                  field_selector=f"involvedObject.kind=Service,involvedObject.name={name}")["items"]
    # An earlier Service of the same name is another object: its Events are not this one's.
    facts["events"] = [e for e in events if (e.get("involvedObject") or {}).get("uid") in (None, uid)]
    facts["speakers"] = scrape_speakers(core, nodes_to_scrape(facts), metrics_port)
    return facts


def _speaker_pods(core: client.CoreV1Api) -> dict[str, tuple[str, str]]:
    """Node -> (namespace, pod) of a running speaker Pod (none when speakers run outside Pods)."""
    try:
        pods = _raw(core.list_pod_for_all_namespaces, label_selector=SPEAKER_SELECTOR)["items"]
    except ApiException:
        return {}
    return {p["spec"]["nodeName"]: (p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods
            if (p.get("spec") or {}).get("nodeName") and (p.get("status") or {}).get("phase") == "Running"}


def _scrape(core: client.CoreV1Api, node: str, pod: tuple[str, str] | None, port: int) -> dict[str, Any]:
    try:
        if pod:
            resp = core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod[1]}:{port}", pod[0], "metrics", _preload_content=False, _request_timeout=SCRAPE_TIMEOUT)
        else:
            resp = core.connect_get_node_proxy_with_path(f"{node}:{port}", "metrics", _preload_content=False,
                                                         _request_timeout=SCRAPE_TIMEOUT)
        return parse_metrics(resp.data.decode())
    except ApiException as exc:
        return {"error": f"{'pod' if pod else 'node'} proxy: {exc.status} {exc.reason}".strip()}
    except Exception as exc:  # a timeout, a refused connection, garbage: the speaker did not answer
        return {"error": f"{'pod' if pod else 'node'} proxy: {type(exc).__name__}"}


def scrape_speakers(core: client.CoreV1Api, nodes: list[str], port: int) -> dict[str, Mapping[str, Any]]:
    """Node -> its speaker's parsed metrics, or the error reading them."""
    if not nodes:
        return {}
    pods = _speaker_pods(core)
    with ThreadPoolExecutor(min(8, len(nodes))) as pool:
        results = pool.map(lambda n: _scrape(core, n, pods.get(n), port), nodes)
        return dict(zip(nodes, results, strict=True))


def parse_metrics(text: str) -> dict[str, Any]:
    """Prometheus text as plain samples and family names."""
    families = list(text_string_to_metric_families(text))
    return {"families": [f.name for f in families],
            "samples": [{"name": s.name, "labels": dict(s.labels), "value": s.value}
                        for f in families for s in f.samples]}
