"""What a real node's containerd, CNI and kubelet are told (the lab's traps, written down as config)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from e2e.lab import image, realnode
from e2e.lab.config import node


@pytest.fixture(autouse=True)
def nodes_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(realnode, "NODES_DIR", tmp_path)
    return tmp_path


def test_containerd_has_its_own_paths_the_lab_pause_and_no_oom_score_lowering(nodes_dir: Path) -> None:
    conf = tomllib.loads(realnode.write_containerd_config(node(2)).read_text())
    own = str(nodes_dir / "node-2")
    assert all(str(v).startswith(own) for v in (conf["root"], conf["state"], conf["grpc"]["address"]))
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == image.PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"] == f"{own}/cni"


@pytest.mark.parametrize("ipv6", [False, True])
def test_cni_bridge_gives_pods_a_default_route_in_the_node_pod_cidr(ipv6: bool) -> None:
    conf = json.loads(realnode.write_cni_config(node(3), ipv6).read_text())
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == "cbr0" and bridge["isGateway"] is True
    subnets = [r[0]["subnet"] for r in bridge["ipam"]["ranges"]]
    routes = [r["dst"] for r in bridge["ipam"]["routes"]]
    assert subnets == (["198.19.3.0/24", "2001:db8:19:3::/64"] if ipv6 else ["198.19.3.0/24"])
    assert routes == (["0.0.0.0/0", "::/0"] if ipv6 else ["0.0.0.0/0"])


def test_kubelet_uses_the_node_cgroup_root_and_serves_on_the_management_segment() -> None:
    conf = yaml.safe_load(realnode.write_kubelet_config(node(1)).read_text())
    assert conf["cgroupRoot"] == "/ilb-node-1" and conf["cgroupDriver"] == "cgroupfs"
    assert conf["address"] == node(1).mgmt_ipv4
    assert conf["containerRuntimeEndpoint"] == f"unix://{realnode.containerd_socket(node(1))}"
    assert conf["authentication"]["anonymous"]["enabled"] is False
    assert conf["imageGCHighThresholdPercent"] == 100  # imported images cannot be pulled again
