"""`ironlb doctor` reads speakers' /metrics through the API server's proxy, which drops the user's own token:
it requests one short-lived token of the chart's doctor ServiceAccount per run and sends it in the header the
proxy passes on; when it cannot, it says why as a finding, and a speaker that refused it is not "down"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.cli.doctor import gather as gather_mod
from ironlb.cli.doctor import render
from ironlb.cli.doctor.chain import diagnose
from ironlb.cli.doctor.model import FindingReason, LinkId, Mark, TokenOutcome
from ironlb.common.kubeapi import ApiError, Client
from tests.unit.cli.doctor_facts import healthy
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply, Request

TOKEN = "sa-token-for-doctor"
PAGE = "# TYPE ironlb_speaker_alive_peers gauge\nironlb_speaker_alive_peers 3.0\n"


def refused(status: int, body: str) -> ApiError:
    return ApiError.from_response(status, {401: "Unauthorized", 403: "Forbidden"}.get(status, "Error"), body.encode())


class FakeCluster:
    """A scripted API server with the objects of a healthy chain, ServiceAccounts, TokenRequests and the node proxy.

    A speaker answers a scrape: the page when the request carries TOKEN in the proxied header, else 401 as the
    speaker does (the API server strips Authorization, so nothing else could reach it)."""

    def __init__(self, api_server: FakeApiServer, token_status: int | None = None, accounts: bool = True) -> None:
        self.facts, self.token_status, self.accounts = healthy(), token_status, accounts
        self.token_requests: list[tuple[str, dict[str, Any]]] = []
        self.scrape_headers: list[dict[str, str]] = []
        items = {"/api/v1/namespaces/shop/services/web": self.facts["service"],
                 "/apis/ironlb.io/v1beta1/ipaddresspools": {"items": self.facts["pools"]},
                 "/apis/ironlb.io/v1beta1/l2advertisements": {"items": self.facts["advertisements"]},
                 "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices": {"items": self.facts["slices"]},
                 "/api/v1/namespaces/shop/events": {"items": self.facts["events"]},
                 "/api/v1/pods": {"items": []}}  # speakers outside Pods: the node proxy
        api_server.route("GET", "/api/v1/nodes/", self.scrape)
        api_server.route("GET", "/api/v1/nodes", Reply(body={"items": self.facts["nodes"]}))
        api_server.route("GET", "/api/v1/serviceaccounts", self.service_accounts)
        api_server.route("POST", "/api/v1/namespaces/", self.token_request)
        for path, body in items.items():
            api_server.route("GET", path, Reply(body=body))

    def service_accounts(self, req: Request) -> Reply:
        assert req.query == {"labelSelector": gather_mod.DOCTOR_SELECTOR}
        items = [{"metadata": {"namespace": "ironlb-system", "name": "ironlb-doctor"}}] if self.accounts else []
        return Reply(body={"items": items})

    def token_request(self, req: Request) -> Reply:
        self.token_requests.append((req.path, req.body))
        if self.token_status:
            return Reply(self.token_status, {"kind": "Status", "code": self.token_status, "reason": "Forbidden"})
        return Reply(201, {"status": {"token": TOKEN}})

    def scrape(self, req: Request) -> Reply:
        assert req.path.endswith("%3A7473/proxy/metrics"), req.path
        sent = {k: v for k, v in req.headers.items() if k.lower() == METRICS_TOKEN_HEADER.lower()}
        self.scrape_headers.append(sent)
        if sent.get(METRICS_TOKEN_HEADER) != f"Bearer {TOKEN}":
            return Reply(401, raw=b"no-token\n")
        return Reply(raw=PAGE.encode())


def test_one_token_per_run_is_requested_and_sent_in_the_proxied_header(api_server: FakeApiServer,
                                                                       api_client: Client) -> None:
    core = FakeCluster(api_server)
    facts = gather_mod.gather(api_client, "shop", "web", None)
    assert core.token_requests == [("/api/v1/namespaces/ironlb-system/serviceaccounts/ironlb-doctor/token", {
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
def test_no_token_is_a_finding_with_its_reason_not_a_down_speaker(api_server: FakeApiServer, api_client: Client,
                                                                  kwargs: dict[str, Any], outcome: TokenOutcome,
                                                                  words: str) -> None:
    core = FakeCluster(api_server, **kwargs)
    facts = gather_mod.gather(api_client, "shop", "web", None)
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
