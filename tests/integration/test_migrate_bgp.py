"""`ironlb migrate metallb` on a cluster with MetalLB's BGP objects: BGPPeers read at v1beta2 (v1beta1's view drops
its newer fields), Community aliases written out, and everything it prints admitted by IronLB's CRDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.lab import metallb
from e2e.lab.config import KUBECONFIG
from e2e.testkit.testing import Kube, wait_for
from ironlb.cli.migrate import METALLB_RESOURCES

pytestmark = pytest.mark.lab
NS = "metallb-system"
LABEL = {"ironlb.io/test": "migrate-bgp"}


def metallb_obj(kind: str, name: str, spec: dict[str, Any], version: str = "v1beta1") -> dict[str, Any]:
    return {"apiVersion": f"metallb.io/{version}", "kind": kind,
            "metadata": {"name": name, "namespace": NS, "labels": LABEL}, "spec": spec}


OBJECTS = [
    metallb_obj("BGPPeer", "mig-tor-a", {
        "myASN": 64512, "dynamicASN": "external", "interface": "eth1", "holdTime": "9s", "keepaliveTime": "3s",
        "bfdProfile": "mig-fast", "passwordSecret": {"name": "bgp-auth", "namespace": NS},
        "nodeSelectors": [{"matchLabels": {"rack": "r1"}}], "enableGracefulRestart": True}, version="v1beta2"),
    metallb_obj("BGPPeer", "mig-tor-b", {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.36.1",
                                         "ebgpMultiHop": True, "localASN": 64600}, version="v1beta2"),
    metallb_obj("BFDProfile", "mig-fast", {"receiveInterval": 100, "transmitInterval": 100, "detectMultiplier": 3}),
    metallb_obj("Community", "mig-names", {"communities": [{"name": "no-export", "value": "65535:65281"}]}),
    metallb_obj("BGPAdvertisement", "mig-adv", {"ipAddressPools": ["mig-pool"], "peers": ["mig-tor-a"],
                                                "aggregationLength": 32, "localPref": 100,
                                                "communities": ["no-export", "large:65000:1:2"]}),
]
PLURALS = {"BGPPeer": "bgppeers", "BFDProfile": "bfdprofiles", "Community": "communities",
           "BGPAdvertisement": "bgpadvertisements"}


@pytest.fixture(scope="module")
def metallb_bgp_objects(kube: Kube) -> Iterator[Kube]:
    """MetalLB's CRDs (as its install has them) with BGP objects, and nothing else of MetalLB running."""
    had_crds = bool(kube.kubectl("get", "crd", "bgppeers.metallb.io", check=False).returncode == 0)
    crds = metallb.bin_dir() / "crds"
    kube.kubectl("apply", "--server-side", "-f", str(crds))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    # A CRD just made Established still answers 429 (storage initializing) for a moment: wait for every list
    # the migration makes.
    wait_for(lambda: all(kube.kubectl("get", f"{plural}.metallb.io", "-A", check=False).returncode == 0
                         for plural in METALLB_RESOURCES), timeout=60, what="MetalLB's resources listable")
    kube.kubectl("create", "namespace", NS, check=False)
    kube.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": OBJECTS}))
    yield kube
    for plural in PLURALS.values():
        kube.kubectl("delete", f"{plural}.metallb.io", "-n", NS, "-l", "ironlb.io/test=migrate-bgp",
                     "--ignore-not-found", check=False)
    if not had_crds:
        kube.kubectl("delete", "-f", str(crds), "--ignore-not-found", "--wait=false", check=False)


def run_migrate() -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "ironlb"), "migrate", "metallb"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "KUBECONFIG": str(KUBECONFIG)})


def test_migrated_bgp_objects_keep_their_fields_and_pass_admission(metallb_bgp_objects: Kube) -> None:
    kube = metallb_bgp_objects
    result = run_migrate()
    assert result.returncode == 0, result.stderr
    ours = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)
            if o and o["metadata"]["name"].startswith("mig-")}
    assert set(ours) == {("BGPPeer", "mig-tor-a"), ("BGPPeer", "mig-tor-b"), ("BFDProfile", "mig-fast"),
                         ("BGPAdvertisement", "mig-adv")}
    tor_a = ours[("BGPPeer", "mig-tor-a")]["spec"]
    # Read at v1beta2: v1beta1's view of the same object has no dynamicASN, interface nor passwordSecret.
    assert (tor_a["dynamicASN"], tor_a["interface"], tor_a["passwordSecret"]) == ("external", "eth1",
                                                                                 {"name": "bgp-auth"})
    assert ours[("BGPAdvertisement", "mig-adv")]["spec"]["communities"] == ["65535:65281", "large:65000:1:2"]
    assert "BGPPeer mig-tor-b: spec.localASN is not carried" in result.stderr
    # MetalLB's CRD stores dualStackAddressFamily: false on each peer (a session keeps to its own family): disableMP
    # for a peer by address; an unnumbered session carries both families in either.
    assert ours[("BGPPeer", "mig-tor-b")]["spec"]["disableMP"] is True and "disableMP" not in tor_a
    assert "dualStackAddressFamily" not in result.stderr
    assert "its password Secret metallb-system/bgp-auth is read from IronLB's namespace" in result.stderr
    for obj in ours.values():
        applied = kube.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(obj),
                               check=False)
        assert applied.returncode == 0, f"{obj['kind']} {obj['metadata']['name']}: {applied.stderr}"
        assert json.loads(applied.stdout)["spec"].items() >= obj["spec"].items()
