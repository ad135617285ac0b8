"""What admission cannot refuse in BGP objects, said by the operator against the lab's real API server: a BGPPeer
naming a missing BFDProfile, a BGPAdvertisement naming no existing pool; the Invalid condition with the parser's
reason, a Warning Event, and the condition cleared once the missing object exists."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.testkit.testing import Kube
from ironlb.api.reasons import BGPConfigReason
from tests.integration.conftest import wait_event
from tests.integration.test_operator_advertisements import wait_condition

pytestmark = pytest.mark.lab
PEER, PROFILE, AD = "t-bgpcore-peer", "t-bgpcore-bfd", "t-bgpcore-ad"
SECRET_PEER, SECRET, SECRET_NS = "t-bgpcore-pw-peer", "t-bgpcore-pw", "kube-system"  # the lab operator's namespace


def bgp(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ironlb.io/v1beta1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_invalid_bgp_objects_get_a_condition_and_an_event_then_are_cleared(kube: Kube, cleanup) -> None:
    for kind, name in (("bgppeer", PEER), ("bfdprofile", PROFILE), ("bgpadvertisement", AD)):
        cleanup(kind, name, None)
    # No node carries the label: no speaker opens this session.
    kube.apply(bgp("BGPPeer", PEER, myASN=64513, peerASN=64512, peerAddress="198.18.36.1", bfdProfile=PROFILE,
                   nodeSelectors=[{"matchLabels": {"t-bgpcore": "none"}}]),
               bgp("BGPAdvertisement", AD, ipAddressPools=["t-bgpcore-no-such-pool"],
                   nodeSelectors=[{"matchLabels": {"t-bgpcore": "none"}}]))
    cond = wait_condition(kube, "bgppeer", PEER, "Invalid", "True", PROFILE)
    assert cond["reason"] == BGPConfigReason.BFD_PROFILE_NOT_FOUND.value
    event = wait_event(kube, PEER, BGPConfigReason.BFD_PROFILE_NOT_FOUND.value, kind="BGPPeer")
    assert event["type"] == "Warning" and PROFILE in event["message"]
    cond = wait_condition(kube, "bgpadvertisement", AD, "Invalid", "True", "t-bgpcore-no-such-pool")
    assert cond["reason"] == BGPConfigReason.POOL_NOT_FOUND.value

    kube.apply(bgp("BFDProfile", PROFILE))
    cond = wait_condition(kube, "bgppeer", PEER, "Invalid", "False", "valid")
    assert cond["reason"] == BGPConfigReason.VALID.value
    wait_condition(kube, "bfdprofile", PROFILE, "Invalid", "False", "valid")


def test_a_missing_password_secret_is_said_until_the_watched_secret_appears(kube: Kube, cleanup) -> None:
    cleanup("bgppeer", SECRET_PEER, None)
    cleanup("secret", SECRET, SECRET_NS)
    kube.apply(bgp("BGPPeer", SECRET_PEER, myASN=64513, peerASN=64512, peerAddress="198.18.36.2",
                   passwordSecret={"name": SECRET}, nodeSelectors=[{"matchLabels": {"t-bgpcore": "none"}}]))
    cond = wait_condition(kube, "bgppeer", SECRET_PEER, "Invalid", "True", SECRET)
    assert cond["reason"] == BGPConfigReason.PASSWORD_SECRET_NOT_FOUND.value
    # The operator watches that one Secret by name: its creation is seen without any change to the peer.
    kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
                "metadata": {"name": SECRET, "namespace": SECRET_NS}, "stringData": {"password": "s3cret"}})
    cond = wait_condition(kube, "bgppeer", SECRET_PEER, "Invalid", "False", "valid")
    assert cond["reason"] == BGPConfigReason.VALID.value
