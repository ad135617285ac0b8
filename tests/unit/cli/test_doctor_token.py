"""`ironlb doctor` reads speakers' /metrics through the API server's proxy, which drops the user's own token:
it requests one short-lived token of the chart's doctor ServiceAccount per run and sends it in the header the
proxy passes on; when it cannot, it says why as a finding, and a speaker that refused it is not "down"."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.cli.doctor import gather as gather_mod
from ironlb.cli.doctor import render
from ironlb.cli.doctor.chain import diagnose
from ironlb.cli.doctor.model import FindingReason, LinkId, Mark, TokenOutcome
from tests.unit.cli.doctor_facts import healthy

TOKEN = "sa-token-for-doctor"
PAGE = "# TYPE ironlb_speaker_alive_peers gauge\nironlb_speaker_alive_peers 3.0\n"


def answer(obj: Any) -> SimpleNamespace:
    return SimpleNamespace(data=json.dumps(obj).encode() if not isinstance(obj, bytes) else obj)


def refused(status: int, body: str) -> ApiException:
    exc = ApiException(status=status, reason={401: "Unauthorized", 403: "Forbidden"}.get(status, "Error"))
    exc.body = body
    return exc


class FakeCore:
    """The API calls doctor makes: the objects of a healthy chain, ServiceAccounts, TokenRequests, node proxy.

    `speaker` answers a scrape: the page when the request carries TOKEN in the proxied header, else 401 as the
    speaker does (the API server strips Authorization, so nothing else could reach it)."""

    def __init__(self, facts: dict[str, Any], token_status: int | None = None, accounts: bool = True) -> None:
        self.facts, self.token_status, self.accounts = facts, token_status, accounts
        self.token_requests: list[tuple[str, str, dict[str, Any]]] = []
        self.scrape_headers: list[dict[str, str]] = []

    def read_namespaced_service(self, name: str, namespace: str, **_: Any) -> SimpleNamespace:
        return answer(self.facts["service"])

    def list_node(self, **_: Any) -> SimpleNamespace:
        return answer({"items": self.facts["nodes"]})

    def list_namespaced_event(self, namespace: str, **_: Any) -> SimpleNamespace:
        return answer({"items": self.facts["events"]})

    def list_pod_for_all_namespaces(self, **_: Any) -> SimpleNamespace:
        return answer({"items": []})  # speakers outside Pods: the node proxy

    def list_service_account_for_all_namespaces(self, label_selector: str = "", **_: Any) -> SimpleNamespace:
        assert label_selector == gather_mod.DOCTOR_SELECTOR
        items = [{"metadata": {"namespace": "ironlb-system", "name": "ironlb-doctor"}}] if self.accounts else []
        return answer({"items": items})

    def create_namespaced_service_account_token(self, name: str, namespace: str, body: Any,
                                                **_: Any) -> SimpleNamespace:
        from kubernetes import client

        self.token_requests.append((namespace, name, client.ApiClient().sanitize_for_serialization(body)))
        if self.token_status:
            raise ApiException(status=self.token_status, reason="Forbidden")
        return answer({"status": {"token": TOKEN}})

    def connect_get_node_proxy_with_path(self, name: str, path: str, _headers: dict[str, str] | None = None,
                                         **_: Any) -> SimpleNamespace:
        self.scrape_headers.append(dict(_headers or {}))
        if (_headers or {}).get(METRICS_TOKEN_HEADER) != f"Bearer {TOKEN}":
            raise refused(401, "no-token\n")
        return answer(PAGE.encode())


class FakeDisc:
    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts

    def list_namespaced_endpoint_slice(self, namespace: str, **_: Any) -> SimpleNamespace:
        return answer({"items": self.facts["slices"]})


class FakeCustom:
    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts

    def list_cluster_custom_object(self, group: str, version: str, plural: str, **_: Any) -> dict[str, Any]:
        return {"items": self.facts["pools" if plural == "ipaddresspools" else "advertisements"]}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A factory: gather's API objects replaced by fakes over the healthy chain's facts."""
    def make(**kwargs: Any) -> FakeCore:
        facts = healthy()
        core = FakeCore(facts, **kwargs)
        monkeypatch.setattr(gather_mod.client, "CoreV1Api", lambda _: core)
        monkeypatch.setattr(gather_mod.client, "DiscoveryV1Api", lambda _: FakeDisc(facts))
        monkeypatch.setattr(gather_mod.client, "CustomObjectsApi", lambda _: FakeCustom(facts))
        return core
    return make


def test_one_token_per_run_is_requested_and_sent_in_the_proxied_header(api: Any) -> None:
    core = api()
    facts = gather_mod.gather(None, "shop", "web", None)  # type: ignore[arg-type]
    assert core.token_requests == [("ironlb-system", "ironlb-doctor", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": gather_mod.TOKEN_SECONDS}})]
    assert len(core.scrape_headers) >= 2  # several speakers, one token
    assert all(h == {METRICS_TOKEN_HEADER: f"Bearer {TOKEN}"} for h in core.scrape_headers)
    assert all("samples" in s for s in facts["speakers"].values())
    assert facts["metricsToken"] == {"outcome": "issued", "serviceAccount": "ironlb-system/ironlb-doctor",
                                     "error": ""}
    assert TOKEN not in json.dumps(facts)  # the token is sent, never kept in what the verdict reads
    report = diagnose(facts)
    assert report.findings == () and report.links[LinkId.ANNOUNCER.value - 1].mark is Mark.OK


@pytest.mark.parametrize("kwargs, outcome, words", [
    ({"token_status": 403}, TokenOutcome.FORBIDDEN,
     "--verb=create --resource=serviceaccounts/token --resource-name=ironlb-doctor"),
    ({"accounts": False}, TokenOutcome.NO_SERVICE_ACCOUNT, "--set metrics.doctor=true"),
])
def test_no_token_is_a_finding_with_its_reason_not_a_down_speaker(api: Any, kwargs: dict[str, Any],
                                                                  outcome: TokenOutcome, words: str) -> None:
    core = api(**kwargs)
    facts = gather_mod.gather(None, "shop", "web", None)  # type: ignore[arg-type]
    assert len(core.token_requests) == (1 if kwargs.get("accounts", True) else 0)
    assert all(h == {} for h in core.scrape_headers)
    assert {s.get("refused") for s in facts["speakers"].values()} == {"no-token"}
    report = diagnose(facts)
    (finding,) = report.findings
    assert (finding.reason, finding.token) == (FindingReason.METRICS_NEED_TOKEN, outcome)
    assert finding.summary.startswith("speakers' metrics need a token") and words in finding.fix
    # Each speaker answered (401 from the speaker itself): alive, so link 5 holds; its table is unread.
    announcer = report.links[LinkId.ANNOUNCER.value - 1]
    assert announcer.mark is Mark.OK and "speaker alive" in announcer.summary, announcer
    assert report.links[LinkId.SPEAKER_TABLE.value - 1].mark is Mark.NOT_CHECKED
    assert report.failed is None or report.failed.id is not LinkId.ANNOUNCER
    as_json = report.as_json()["findings"]
    assert as_json[0]["reason"] == "metrics-need-token" and as_json[0]["token"] == outcome.value
    assert finding.summary in render.human(report)


def test_the_api_servers_own_refusal_is_not_taken_for_the_speakers() -> None:
    status = '{"kind":"Status","status":"Failure","reason":"Forbidden","code":403}'
    assert gather_mod.refusal(refused(403, status)) is None
    assert gather_mod.refusal(refused(401, "no-token\n")).value == "no-token"
    assert gather_mod.refusal(refused(403, "no-token\n")) is None  # the status must be the speaker's own


def test_a_refused_token_names_the_fix() -> None:
    facts = healthy()
    facts["metricsToken"] = {"outcome": "issued", "serviceAccount": "ironlb-system/ironlb-doctor", "error": ""}
    facts["speakers"] = {n: {"error": "node proxy: 403 Forbidden", "refused": "forbidden"} for n in facts["speakers"]}
    (finding,) = diagnose(facts).findings
    assert finding.reason is FindingReason.METRICS_TOKEN_REFUSED and "metrics-reader" in finding.fix
