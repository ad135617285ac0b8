"""`ironlb doctor`'s verdict over plain API objects: which link breaks first, and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ironlb.cli.doctor.chain import diagnose
from ironlb.cli.doctor.context import nodes_to_scrape
from ironlb.cli.doctor.gather import ignores_exclude_lb
from ironlb.cli.doctor.model import EXIT_CODES_HELP, LinkId, Mark
from ironlb.cli.doctor.path import claims
from ironlb.cli.doctor.render import human
from ironlb.core.election import elect
from tests.unit.cli.doctor_facts import NODES, VIP, edited, metrics, node

WINNER = elect(VIP, NODES)
Edit = Callable[[dict[str, Any]], None]


def svc(f: dict[str, Any]) -> dict[str, Any]:
    return f["service"]


def set_announced(status: str, reason: str, message: str) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        svc(f)["status"]["conditions"] = [{"type": "ironlb.io/Announced", "status": status, "reason": reason,
                                           "message": message}]
    return edit


def unassigned(f: dict[str, Any]) -> None:
    svc(f)["status"]["loadBalancer"] = {}
    svc(f)["metadata"]["annotations"] = {}
    svc(f)["status"]["conditions"] = []
    f["events"] = []


def refused(message: str) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        unassigned(f)
        f["events"] = [{"reason": "AllocationFailed", "count": 4, "lastTimestamp": "2026-01-01T00:01:00Z",
                        "metadata": {"annotations": {"ironlb.io/reason": "PoolExhausted"}},
                        "message": f"Failed to allocate IP for shop/web: {message}"}]
    return edit


def node_selector(f: dict[str, Any]) -> None:
    f["advertisements"][0]["spec"]["nodeSelectors"] = [{"matchLabels": {"role": "edge"}}]


def service_selector(labels: dict[str, str]) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        f["advertisements"][0]["spec"]["serviceSelectors"] = [{"matchLabels": labels}]
    return edit


def label_service(**labels: str) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        svc(f)["metadata"]["labels"] = labels
    return edit


def only(node_name: str) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        f["advertisements"][0]["spec"]["nodeSelectors"] = [{"matchLabels": {"kubernetes.io/hostname": node_name}}]
    return edit


def no_ready(f: dict[str, Any]) -> None:
    for ep in f["slices"][0]["endpoints"]:
        ep["conditions"]["ready"] = False


def speaker_unreadable(node_name: str) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        f["speakers"][node_name] = {"error": "node proxy: 503 Service Unavailable"}
    return edit


def node_port(f: dict[str, Any]) -> None:
    f["pools"][0]["spec"]["forwarding"] = "NodePort"


def forwarding(status: str, reason: str) -> Edit:
    def edit(f: dict[str, Any]) -> None:
        svc(f)["status"]["conditions"].append({"type": "ironlb.io/Forwarding", "status": status, "reason": reason,
                                               "message": "203.0.113.10: 80/TCP -> NodePort 30080 on node-1"})
    return edit


OTHER = next(n for n in NODES if n != WINNER)

# (case, edits, first broken link or None, words in that link's summary)
SCENARIOS: list[tuple[str, list[Edit], LinkId | None, str]] = [
    ("healthy", [], None, ""),
    ("not found", [lambda f: f.update(service=None)], LinkId.CLASS, "not found"),
    ("ClusterIP", [lambda f: svc(f)["spec"].update(type="ClusterIP")], LinkId.CLASS, "type ClusterIP"),
    ("ExternalName", [lambda f: svc(f)["spec"].update(type="ExternalName")], LinkId.CLASS, "DNS name"),
    ("other class", [lambda f: svc(f)["spec"].update(loadBalancerClass="example.com/x")], LinkId.CLASS,
     "example.com/x"),
    ("no class while IronLB serves one", [lambda f: f.update(lbClass="ironlb.io/l2")], LinkId.CLASS,
     "(none) is not IronLB's"),
    ("pool full", [refused("no free IPv4 address in pool(s) pool-a")], LinkId.ALLOCATION, "no free IPv4"),
    ("no reason published", [unassigned], LinkId.ALLOCATION, "no reason"),
    ("IP written by another implementation", [lambda f: svc(f)["metadata"].update(annotations={})],
     LinkId.ALLOCATION, "another implementation"),
    ("pool deleted", [lambda f: f.update(pools=[])], LinkId.ADVERTISEMENT, "no longer exists"),
    ("no advertisement", [lambda f: f.update(advertisements=[])], LinkId.ADVERTISEMENT, "no L2Advertisement"),
    ("advertisement of another pool", [lambda f: f["advertisements"][0]["spec"].update(ipAddressPools=["b"])],
     LinkId.ADVERTISEMENT, "covers pool pool-a"),
    ("serviceSelectors leave the Service out", [service_selector({"app": "db"})], LinkId.ADVERTISEMENT,
     "serviceSelectors leave this Service out"),
    ("serviceSelectors take the Service in", [service_selector({"app": "web"}), label_service(app="web")],
     None, ""),
    ("being deleted, waiting on the cleanup finalizer", [lambda f: svc(f)["metadata"].update(
        deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["service.kubernetes.io/load-balancer-cleanup"])],
     LinkId.CLASS, "until the speaker that announced its IP says Withdrawn"),
    ("nodes not selected", [node_selector], LinkId.ELIGIBLE_NODES, "0 of 3"),
    ("excluded by label, but the speakers ignore it", [lambda f: f.update(nodes=[node(
        n, **{"node.kubernetes.io/exclude-from-external-load-balancers": ""}) for n in NODES], ignoreExcludeLB=True)],
     None, ""),
    ("nodes not Ready", [lambda f: f.update(nodes=[node(n, ready=False) for n in NODES])], LinkId.ELIGIBLE_NODES,
     "0 of 3"),
    ("excluded by label", [lambda f: f.update(nodes=[node(
        n, **{"node.kubernetes.io/exclude-from-external-load-balancers": ""}) for n in NODES])],
     LinkId.ELIGIBLE_NODES, "no node"),
    ("Local, endpoints elsewhere", [only(OTHER), lambda f: svc(f)["spec"].update(externalTrafficPolicy="Local"),
                                    lambda f: f["slices"][0].update(endpoints=[
                                        {"nodeName": WINNER, "conditions": {"ready": True}}])],
     LinkId.ELIGIBLE_NODES, "0 of 3"),
    ("no condition", [lambda f: svc(f)["status"].update(conditions=[])], LinkId.ANNOUNCER, "no speaker"),
    ("speaker down, peers say no eligible node", [only(WINNER), set_announced(
        "False", "NoEligibleNode", f"{VIP} is not announced: no node is eligible"), speaker_unreadable(WINNER)],
     LinkId.ANNOUNCER, "speaker down"),
    ("announcer's metrics silent while others answer", [set_announced(
        "True", "Announcing", f"{VIP} from node {WINNER} on interface eth0"), speaker_unreadable(WINNER)],
     LinkId.ANNOUNCER, "speaker down"),
    ("announced by a node not eligible", [only(WINNER), set_announced(
        "True", "Announcing", f"{VIP} from node {OTHER} on interface eth0")], LinkId.ANNOUNCER, "not eligible"),
    ("IP missing from the condition", [set_announced("True", "Announcing", "198.51.100.1 from node node-1 on "
                                                     "all interfaces")], LinkId.ANNOUNCER, "missing"),
    ("not in the announcer's table", [lambda f: f["speakers"].update({WINNER: metrics(WINNER, ())})],
     LinkId.SPEAKER_TABLE, "does not have"),
    ("no ready endpoints", [no_ready], LinkId.ENDPOINTS, "0 of 3 endpoints ready"),
    ("no endpoints", [lambda f: f.update(slices=[])], LinkId.ENDPOINTS, "no pod matches selector app=web"),
    ("no selector, no endpoints", [lambda f: f.update(slices=[]), lambda f: svc(f)["spec"].pop("selector")],
     LinkId.ENDPOINTS, "no selector"),
    ("Local, no endpoint anywhere", [no_ready, lambda f: svc(f)["spec"].update(externalTrafficPolicy="Local")],
     LinkId.ENDPOINTS, "0 of 3"),
    ("NodePort forwarding healthy", [node_port, forwarding("True", "Forwarding")], None, ""),
    ("NodePort forwarding off", [node_port, forwarding("False", "ForwardingDisabled")], LinkId.FORWARDING,
     "NodePort 30080"),
    ("nftables not applied", [node_port, forwarding("True", "Forwarding"),
                              lambda f: f["speakers"].update({WINNER: metrics(WINNER, in_sync=0)})],
     LinkId.FORWARDING, "inet ironlb"),
]


@pytest.mark.parametrize(("case", "edits", "broken", "words"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_the_first_broken_link_and_its_exit_code(case: str, edits: list[Edit], broken: LinkId | None,
                                                 words: str) -> None:
    report = diagnose(edited(*edits, announcer=WINNER))
    failed = report.failed
    assert (failed.id if failed else None) is broken, human(report)
    assert report.exit_code == (0 if broken is None else 10 + broken.value)
    if broken is None:
        return
    assert words in failed.summary and failed.fix, human(report)
    assert [link.mark for link in report.links[broken.value:]] == [Mark.NOT_REACHED] * (8 - broken.value)
    assert all(link.mark is not Mark.FAILED for link in report.links[:broken.value - 1])


def test_healthy_report_says_what_it_could_not_check() -> None:
    report = diagnose(edited(announcer=WINNER))
    marks = [link.mark for link in report.links]
    assert marks == [Mark.OK] * 7 + [Mark.NOT_CHECKED]
    assert report.not_checked[0].startswith("forwarding: kube-proxy's rules for 203.0.113.10")
    assert f"{VIP} on {WINNER} (interface eth0), speaker alive, hears 3 speakers" == report.links[4].summary
    assert "eth0: 7 ARP/NDP replies, 3 gratuitous" in report.links[5].details[0]
    out = human(report)
    assert out.splitlines()[0] == f"Service shop/web ({VIP})" and out.endswith("healthy")
    assert report.as_json()["failedLink"] is None and report.as_json()["exitCode"] == 0


def test_no_ready_endpoints_blocks_the_speaker_links_instead_of_failing_them() -> None:
    report = diagnose(edited(no_ready, set_announced("False", "NoReadyEndpoints", "no ready endpoints"),
                             announcer=WINNER))
    assert [link.mark for link in report.links[3:7]] == [Mark.OK, Mark.BLOCKED, Mark.BLOCKED, Mark.FAILED]


def test_each_nodes_reason_is_listed() -> None:
    nodes = [node("node-1"), node("node-2", network_unavailable=True),
             node("node-3", **{"node.kubernetes.io/exclude-from-external-load-balancers": ""})]
    report = diagnose(edited(lambda f: f.update(nodes=nodes), announcer="node-1"))
    assert report.links[3].details == ("node-1: eligible", "node-2: NetworkUnavailable (its Node condition)",
                                       "node-3: excluded by the label "
                                       "node.kubernetes.io/exclude-from-external-load-balancers")


@pytest.mark.parametrize(("speakers", "mark"), [
    ({}, Mark.NOT_CHECKED),  # nothing scraped: the condition alone says who announces
    ({n: {"error": "node proxy: 404 Not Found"} for n in NODES}, Mark.NOT_CHECKED),  # the proxy path fails for all
])
def test_unreadable_metrics_are_not_checked_not_a_failure(speakers: dict[str, Any], mark: Mark) -> None:
    report = diagnose(edited(lambda f: f.update(speakers=speakers), announcer=WINNER))
    assert report.failed is None and report.links[5].mark is mark
    assert "liveness" not in report.links[4].summary or "could not be read" in report.links[4].summary


def test_older_speaker_without_the_per_ip_metric() -> None:
    old = {"families": ["ironlb_speaker_alive_peers"], "samples": []}
    report = diagnose(edited(lambda f: f["speakers"].update({WINNER: old}), announcer=WINNER))
    assert report.links[5].mark is Mark.NOT_CHECKED and "older speaker" in report.links[5].summary


def test_claims_parse_the_speakers_condition() -> None:
    assert claims(f"{VIP} from node node-2 on interface eth0,eth1; 2001:db8::1 from node node-2 on all "
                  "interfaces") == {VIP: ("node-2", "eth0,eth1"), "2001:db8::1": ("node-2", "all interfaces")}


def test_scrapes_the_named_announcer_and_the_election_head() -> None:
    facts = edited(set_announced("True", "Announcing", f"{VIP} from node {OTHER} on interface eth0"))
    wanted = nodes_to_scrape(facts)
    assert wanted[0] == OTHER and set(wanted) == set(NODES)


def test_help_documents_a_distinct_exit_code_per_link() -> None:
    codes = [int(line.split()[0]) for line in EXIT_CODES_HELP.splitlines()[1:]]
    assert len(set(codes)) == len(codes) == 14 and codes[2:10] == list(range(11, 19))
    assert codes[10:] == list(range(21, 25))  # BGP's links


def test_one_more_speaker_is_scraped_as_a_control() -> None:
    wanted = nodes_to_scrape(edited(only(WINNER), set_announced("False", "NoEligibleNode", "no node is eligible")))
    assert wanted == [WINNER, min(n for n in NODES if n != WINNER)]
    down = diagnose(edited(only(WINNER), set_announced("False", "NoEligibleNode", "no node is eligible"),
                           lambda f: f.update(speakers={WINNER: {"error": "node proxy: 503"},
                                                        OTHER: metrics(OTHER, ())})))
    assert "did not answer (while other speakers' did)" in down.links[4].details[0]


def test_user_text_in_events_reaches_the_terminal_escaped() -> None:
    hostile = "requested \x1b[2J\x1b[32m\r ✓ 1 everything fine\x1b]0;owned\x07\u202e"
    report = diagnose(edited(refused(hostile), announcer=WINNER))
    out = human(report)
    assert report.failed is not None and "\\x1b[2J" in out, out
    assert not any(ch in out for ch in "\x1b\r\x07\u202e")
    assert all(line.isprintable() for line in out.splitlines())


def test_invalid_source_ranges_fail_the_forwarding_link_with_their_fix() -> None:
    report = diagnose(edited(node_port, forwarding("False", "InvalidSourceRanges"), announcer=WINNER))
    failed = report.failed
    assert failed is not None and failed.id is LinkId.FORWARDING
    assert "loadBalancerSourceRanges" in failed.fix


@pytest.mark.parametrize(("container", "ignores"), [
    ({"env": [{"name": "IRONLB_IGNORE_EXCLUDE_LB", "value": "true"}]}, True),  # the chart's speaker.ignoreExcludeLB
    ({"env": [{"name": "IRONLB_IGNORE_EXCLUDE_LB", "value": "false"}]}, False),
    ({"args": ["--node=n1", "--ignore-exclude-lb=true"]}, True),
    ({"env": [{"name": "IRONLB_LB_CLASS", "value": "x"}]}, False),
    ({}, False),
])
def test_doctor_reads_from_the_speaker_pods_whether_they_ignore_the_exclusion_label(container: dict[str, Any],
                                                                                    ignores: bool) -> None:
    assert ignores_exclude_lb(container) is ignores
