"""BGP mode's CRDs against a real kube-apiserver: every admission rule refuses its bad object with a message
that names the problem, and good objects (MetalLB's kinds of values, bounds included) are accepted.

As in test_crd_admission: bad objects are applied as a person would (`kubectl apply -f -`) and must fail
with the given substring; good ones go through `--dry-run=server` (all of admission, nothing stored). What
admission cannot check (references between objects) is ironlb.api.bgp's, tested in tests/unit/api.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ironlb.api import constants
from ironlb.api.bgp_status import BFDState, NodeBGPStatus, SessionError, SessionState, SessionStatus
from ironlb.api.reasons import BGPSessionReason
from tests.integration.test_crd_admission import TEST_LABEL, TEST_LABEL_VALUE, apply, expr, manifest, object_name, sel

pytestmark = pytest.mark.lab

CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "ironlb" / "crds"
PEER, BFD, ADV = constants.BGPPEER_KIND, constants.BFDPROFILE_KIND, constants.BGPADVERTISEMENT_KIND
NODE_STATUS = constants.BGPNODESTATUS_KIND
RESOURCES = (constants.BGPPEER_CRD_NAME, constants.BFDPROFILE_CRD_NAME, constants.BGPADVERTISEMENT_CRD_NAME,
             constants.BGPNODESTATUS_CRD_NAME)


def peer(**fields: Any) -> dict[str, Any]:
    """A valid BGPPeer spec, with FIELDS changed (a None value removes the field)."""
    spec = {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1", **fields}
    return {k: v for k, v in spec.items() if v is not None}


def node_status(name: str, **status: Any) -> dict[str, Any]:
    obj = NodeBGPStatus(name).to_object()
    obj["metadata"]["labels"] = {TEST_LABEL: TEST_LABEL_VALUE}
    obj["status"].update(status)
    return obj


SESSION = {"peer": "tor", "state": "Established", "bfdState": "Up"}
COMMUNITY_BAD = "is not a valid community"

# (id, kind, spec, substring the API server's answer must contain)
REJECTED: list[tuple[str, str, dict[str, Any] | None, str]] = [
    # --- BGPPeer: AS numbers
    ("peer-no-spec", PEER, None, "spec: Required value"),
    ("peer-no-my-asn", PEER, peer(myASN=None), "spec.myASN: Required value"),
    ("peer-asn-zero", PEER, peer(peerASN=0), "should be greater than or equal to 1"),
    ("peer-my-asn-too-big", PEER, peer(myASN=4294967296), "should be less than or equal to 4294967295"),
    ("peer-no-peer-asn", PEER, peer(peerASN=None), "exactly one of peerASN and dynamicASN must be set"),
    ("peer-asn-and-dynamic", PEER, peer(dynamicASN="external"), "exactly one of peerASN and dynamicASN"),
    ("peer-bad-dynamic", PEER, peer(peerASN=None, dynamicASN="ebgp"), 'Unsupported value: "ebgp"'),
    # --- BGPPeer: where the peer is
    ("peer-no-address", PEER, peer(peerAddress=None), "exactly one of peerAddress and interface must be set"),
    ("peer-address-and-interface", PEER, peer(interface="eth1"), "exactly one of peerAddress and interface"),
    ("peer-address-not-ip", PEER, peer(peerAddress="tor1"),
     "'tor1' is not an IP address: a peer address must be an IPv4 or IPv6 address"),
    ("peer-address-loopback", PEER, peer(peerAddress="127.0.0.1"), "'127.0.0.1' cannot be a peer address"),
    ("peer-address-link-local", PEER, peer(peerAddress="fe80::1"), "with 'interface' instead"),
    ("peer-address-zone", PEER, peer(peerAddress="fe80::1%eth0"), "'fe80::1%eth0' is not an IP address"),
    ("peer-source-not-ip", PEER, peer(sourceAddress="eth0"), "'eth0' is not an IP address: a source address"),
    ("peer-source-unspecified", PEER, peer(sourceAddress="0.0.0.0"), "'0.0.0.0' cannot be a source address"),
    ("peer-router-id-v6", PEER, peer(routerID="2001:db8::1"), "'2001:db8::1' is not a router ID"),
    ("peer-router-id-not-ip", PEER, peer(routerID="1.2.3"), "'1.2.3' is not a router ID"),
    ("peer-port-zero", PEER, peer(peerPort=0), "should be greater than or equal to 1"),
    ("peer-port-too-big", PEER, peer(peerPort=65536), "should be less than or equal to 65535"),
    ("peer-bad-interface", PEER, peer(peerAddress=None, interface="eth0/1"),
     "'eth0/1' is not a valid network interface name"),
    ("peer-bad-vrf", PEER, peer(vrf="red vrf"), "'red vrf' is not a valid network interface name"),
    # --- BGPPeer: timers
    ("hold-no-unit", PEER, peer(holdTime="90"), "'90' is not a duration"),
    ("hold-negative", PEER, peer(holdTime="-90s"), "'-90s' is not a duration"),
    ("hold-fraction", PEER, peer(holdTime="3.5s"), "'3.5s' is not a whole number of seconds"),
    ("hold-too-short", PEER, peer(holdTime="2s"), "'2s' is out of range: it must be 0s or 3s to 65535s"),
    ("hold-too-long", PEER, peer(holdTime="18h13m"), "'18h13m' is out of range"),
    ("keepalive-too-long", PEER, peer(keepaliveTime="65536s"), "'65536s' is out of range: it must be 0s to 65535s"),
    ("keepalive-no-unit", PEER, peer(keepaliveTime="30"), "'30' is not a duration"),
    ("keepalive-fraction", PEER, peer(keepaliveTime="500ms"), "'500ms' is not a whole number of seconds"),
    ("keepalive-equal-hold", PEER, peer(holdTime="30s", keepaliveTime="30s"),
     "keepaliveTime 30s must be less than holdTime 30s"),
    ("keepalive-above-hold", PEER, peer(holdTime="9s", keepaliveTime="1m"),
     "keepaliveTime 1m must be less than holdTime 9s"),
    ("keepalive-with-hold-off", PEER, peer(holdTime="0s", keepaliveTime="10s"),
     "keepaliveTime 10s must be less than holdTime 0s (or both 0s"),
    ("connect-no-unit", PEER, peer(connectTime="ten seconds"), "'ten seconds' is not a duration"),
    ("connect-zero", PEER, peer(connectTime="0s"), "'0s' is out of range: it must be 1s to 65535s"),
    ("connect-fraction", PEER, peer(connectTime="1500ms"), "'1500ms' is not a whole number of seconds"),
    # --- BGPPeer: password, options, selectors
    ("password-and-secret", PEER, peer(password="s3cret", passwordSecret={"name": "bgp-auth"}),
     "password and passwordSecret are mutually exclusive"),
    ("password-too-long", PEER, peer(password="p" * 81), "Too long"),
    ("password-empty", PEER, peer(password=""), "should be at least 1 chars long"),
    ("secret-without-name", PEER, peer(passwordSecret={}), "spec.passwordSecret.name: Required value"),
    ("secret-bad-name", PEER, peer(passwordSecret={"name": "BGP_auth"}), "'BGP_auth' is not a valid Secret name"),
    ("multihop-ibgp", PEER, peer(peerASN=64512, ebgpMultiHop=True), "ebgpMultiHop applies to eBGP peers only"),
    ("multihop-dynamic-internal", PEER, peer(peerASN=None, dynamicASN="internal", ebgpMultiHop=True),
     "ebgpMultiHop applies to eBGP peers only"),
    ("peer-bad-bfd-profile-name", PEER, peer(bfdProfile="Fast_BFD"), "'Fast_BFD' is not a valid BFDProfile name"),
    ("peer-node-selector-in-without-values", PEER, peer(nodeSelectors=[sel(expr("rack", "In", []))]),
     "operator In needs at least one value"),
    ("peer-graceful-restart-not-bool", PEER, peer(enableGracefulRestart="yes"), "must be of type boolean"),
    ("peer-typo-field", PEER, peer(peerAdress="198.18.36.2"), 'unknown field "spec.peerAdress"'),
    # --- BFDProfile: MetalLB's ranges
    ("bfd-receive-too-short", BFD, {"receiveInterval": 9}, "should be greater than or equal to 10"),
    ("bfd-transmit-too-long", BFD, {"transmitInterval": 60001}, "should be less than or equal to 60000"),
    ("bfd-multiplier-one", BFD, {"detectMultiplier": 1}, "should be greater than or equal to 2"),
    ("bfd-multiplier-too-big", BFD, {"detectMultiplier": 256}, "should be less than or equal to 255"),
    ("bfd-echo-too-short", BFD, {"echoInterval": 5}, "should be greater than or equal to 10"),
    ("bfd-ttl-zero", BFD, {"minimumTtl": 0}, "should be greater than or equal to 1"),
    ("bfd-ttl-too-big", BFD, {"minimumTtl": 255}, "should be less than or equal to 254"),
    ("bfd-echo-mode-not-bool", BFD, {"echoMode": "on"}, "must be of type boolean"),
    # --- BGPAdvertisement
    ("adv-aggregation-zero", ADV, {"aggregationLength": 0}, "should be greater than or equal to 1"),
    ("adv-aggregation-too-long", ADV, {"aggregationLength": 33}, "should be less than or equal to 32"),
    ("adv-aggregation-v6-too-long", ADV, {"aggregationLengthV6": 129}, "should be less than or equal to 128"),
    ("adv-service-selectors-and-aggregation", ADV, {"serviceSelectors": [sel(app="web")], "aggregationLength": 24},
     "serviceSelectors need aggregationLength 32 and aggregationLengthV6 128"),
    ("adv-service-selectors-and-aggregation-v6", ADV,
     {"serviceSelectors": [sel(app="web")], "aggregationLengthV6": 64}, "serviceSelectors need aggregationLength"),
    ("adv-local-pref-negative", ADV, {"localPref": -1}, "should be greater than or equal to 0"),
    ("adv-local-pref-too-big", ADV, {"localPref": 4294967296}, "should be less than or equal to 4294967295"),
    ("community-16-bit-overflow", ADV, {"communities": ["65536:1"]}, f"'65536:1' {COMMUNITY_BAD}"),
    ("community-second-half-overflow", ADV, {"communities": ["1:99999"]}, f"'1:99999' {COMMUNITY_BAD}"),
    ("community-three-parts", ADV, {"communities": ["1:2:3"]}, f"'1:2:3' {COMMUNITY_BAD}"),
    ("community-large-two-parts", ADV, {"communities": ["large:1:2"]}, f"'large:1:2' {COMMUNITY_BAD}"),
    ("community-large-overflow", ADV, {"communities": ["large:4294967296:1:1"]}, COMMUNITY_BAD),
    ("community-large-last-overflow", ADV, {"communities": ["large:1:1:9999999999"]}, COMMUNITY_BAD),
    ("community-alias", ADV, {"communities": ["no-export"]}, f"'no-export' {COMMUNITY_BAD}"),
    ("community-space", ADV, {"communities": ["65000:1 "]}, COMMUNITY_BAD),
    ("community-duplicate", ADV, {"communities": ["65000:1", "65000:1"]}, "Duplicate value"),
    ("adv-bad-peer-name", ADV, {"peers": ["Tor_1"]}, "'Tor_1' is not a valid BGPPeer name"),
    ("adv-bad-pool-name", ADV, {"ipAddressPools": ["Pool 1"]}, "'Pool 1' is not a valid IPAddressPool name"),
    ("adv-typo-field", ADV, {"communites": ["65000:1"]}, 'unknown field "spec.communites"'),
]

ACCEPTED: list[tuple[str, str, dict[str, Any]]] = [
    ("peer-minimal", PEER, peer()),
    ("peer-everything-set", PEER, peer(
        myASN=4294967295, peerASN=65000, peerAddress="2001:db8:c1::1", peerPort=1179, sourceAddress="2001:db8:c1::10",
        routerID="198.18.36.10", holdTime="9s", keepaliveTime="3s", connectTime="10s",
        passwordSecret={"name": "bgp-auth"}, ebgpMultiHop=True, bfdProfile="fast", enableGracefulRestart=True,
        nodeSelectors=[sel(expr("rack", "In", ["r1", "r2"]))], vrf="red", disableMP=True)),
    ("peer-unnumbered-dynamic", PEER, peer(peerASN=None, dynamicASN="external", peerAddress=None, interface="eth1")),
    ("peer-timers-off", PEER, peer(holdTime="0s", keepaliveTime="0s", password="s3cret")),
    ("peer-hold-in-minutes", PEER, peer(holdTime="1m30s")),
    ("peer-hold-at-bounds", PEER, peer(holdTime="3s", keepaliveTime="0s", connectTime="65535s")),
    ("peer-keepalive-only", PEER, peer(keepaliveTime="1s")),
    ("peer-multihop-ebgp-dynamic", PEER, peer(peerASN=None, dynamicASN="external", ebgpMultiHop=True)),
    ("bfd-empty", BFD, {}),
    ("bfd-everything-at-bounds", BFD, {"receiveInterval": 10, "transmitInterval": 60000, "detectMultiplier": 255,
                                       "echoInterval": 10, "echoMode": True, "passiveMode": True, "minimumTtl": 254}),
    ("adv-empty", ADV, {}),
    ("adv-everything-set", ADV, {
        "ipAddressPools": ["pool-a"], "ipAddressPoolSelectors": [sel(tier="gold")],
        "nodeSelectors": [sel(expr("edge", "Exists"))], "peers": ["tor-a", "tor-b"], "aggregationLength": 24,
        "aggregationLengthV6": 64, "localPref": 4294967295,
        "communities": ["0:0", "65535:65535", "large:4294967295:0:1", "large:65000:1:2"]}),
    ("adv-service-selectors-default-aggregation", ADV, {"serviceSelectors": [sel(app="web")],
                                                        "aggregationLength": 32, "aggregationLengthV6": 128}),
]

DEFAULTS = {PEER: {"peerPort": 179, "ebgpMultiHop": False, "enableGracefulRestart": False, "disableMP": False},
            ADV: {"aggregationLength": 32, "aggregationLengthV6": 128}}


@pytest.fixture(scope="module")
def bgp_crds(kube: Any) -> Iterator[Any]:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kube.kubectl("wait", "--for", "condition=established", "--timeout=60s", *(f"crd/{r}" for r in RESOURCES))
    yield kube
    for resource in RESOURCES:
        kube.kubectl("delete", resource, "-l", f"{TEST_LABEL}={TEST_LABEL_VALUE}", "--ignore-not-found",
                     "--wait=false", check=False)


@pytest.mark.parametrize(("case_id", "kind", "spec", "expected"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_bgp_object_is_rejected_with_a_readable_message(
    bgp_crds: Any, case_id: str, kind: str, spec: dict[str, Any] | None, expected: str,
) -> None:
    result = apply(bgp_crds, manifest(kind, object_name(case_id), spec), dry_run=True)
    assert result.returncode != 0, f"{case_id}: accepted, expected a rejection mentioning {expected!r}"
    assert expected in result.stderr, f"{case_id}: expected {expected!r} in:\n{result.stderr}"


@pytest.mark.parametrize(("case_id", "kind", "spec"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_good_bgp_object_is_accepted_with_defaults(bgp_crds: Any, case_id: str, kind: str,
                                                    spec: dict[str, Any]) -> None:
    result = apply(bgp_crds, manifest(kind, object_name(case_id), spec), dry_run=True)
    assert result.returncode == 0, f"{case_id}: rejected:\n{result.stderr}"
    stored = json.loads(result.stdout)["spec"]
    assert stored == {**DEFAULTS.get(kind, {}), **spec}


def test_node_status_written_by_the_dataclass_is_admitted(bgp_crds: Any) -> None:
    """What NodeBGPStatus.to_object() makes (the speaker's write) passes the CRD's schema, and reads back."""
    status = NodeBGPStatus("adm-node-1", router_id="198.18.36.11", updated="2026-01-01T00:00:00Z", sessions=(
        SessionStatus("tor-a", SessionState.ESTABLISHED, "2026-01-01T00:00:00Z", peer_address="198.18.36.1",
                      bfd=BFDState.UP, hold_time_s=9, keepalive_time_s=3, prefixes_sent_ipv4=12, prefixes_sent_ipv6=3),
        SessionStatus("tor-b", SessionState.ACTIVE, "2026-01-01T00:00:05Z", interface="eth1", vrf="red",
                      last_error=SessionError(BGPSessionReason.NOTIFICATION_RECEIVED,
                                              "Notification received (OPEN Message Error/Bad Peer AS)",
                                              "2026-01-01T00:00:05Z")),
    ))
    obj = status.to_object()
    obj["metadata"]["labels"] = {TEST_LABEL: TEST_LABEL_VALUE}
    result = apply(bgp_crds, obj, dry_run=True)
    assert result.returncode == 0, result.stderr
    assert NodeBGPStatus.from_object(json.loads(result.stdout)) == status


@pytest.mark.parametrize(("case_id", "status", "expected"), [
    ("status-other-node", {"node": "adm-node-2"}, "a BGPNodeStatus is named after its node"),
    ("status-bad-state", {"sessions": [{**SESSION, "state": "Up"}]}, 'Unsupported value: "Up"'),
    ("status-bad-bfd-state", {"sessions": [{**SESSION, "bfdState": "Established"}]}, 'Unsupported value'),
    ("status-bad-error-reason", {"sessions": [{**SESSION, "lastError": {"reason": "Oops"}}]},
     'Unsupported value: "Oops"'),
    ("status-duplicate-peer", {"sessions": [SESSION, SESSION]}, "Duplicate value"),
    ("status-negative-prefixes", {"sessions": [{**SESSION, "prefixesSentIPv4": -1}]},
     "should be greater than or equal to 0"),
])
def test_bad_node_status_is_rejected(bgp_crds: Any, case_id: str, status: dict[str, Any], expected: str) -> None:
    result = apply(bgp_crds, node_status("adm-node-1", **status), dry_run=True)
    assert result.returncode != 0, f"{case_id}: accepted"
    assert expected in result.stderr, f"{case_id}: expected {expected!r} in:\n{result.stderr}"
