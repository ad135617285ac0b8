"""BGP mode in the chart: off by default; on, an frr container beside the speaker, sharing FRR's socket directory,
started by the chart's script, with the capabilities FRR needs and a grace period that covers the drain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.chart.test_chart_template import container, env, find
from tests.chart.test_speaker_values import refused, render_json

ON = "speaker.bgp.enabled=true"


def pod(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objs, "DaemonSet", "-speaker")["spec"]["template"]["spec"]


def test_off_by_default_no_frr_container_and_no_bgp_flag(helm: Path) -> None:
    objs = render_json(helm)
    spec = pod(objs)
    assert [c["name"] for c in spec["containers"]] == ["speaker"]
    assert "IRONLB_FRR_SOCKET_DIR" not in env(find(objs, "DaemonSet", "-speaker"))
    assert spec["terminationGracePeriodSeconds"] == 5
    assert not [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-speaker-frr")]


def test_on_the_frr_container_shares_the_socket_directory_with_the_speaker(helm: Path) -> None:
    objs = render_json(helm, ON, 'speaker.bgp.frrImage="registry.example/frr:8.4.4"', "speaker.bgp.drainSeconds=20")
    speaker_ds = find(objs, "DaemonSet", "-speaker")
    spec = pod(objs)
    speaker, frr = spec["containers"]
    assert (speaker["name"], frr["name"], frr["image"]) == ("speaker", "frr", "registry.example/frr:8.4.4")
    assert env(speaker_ds)["IRONLB_FRR_SOCKET_DIR"] == "/var/run/frr"
    assert env(speaker_ds)["IRONLB_BGP_DRAIN_SECONDS"] == "20"
    for c in (speaker, frr):
        assert {"name": "frr-sockets", "mountPath": "/var/run/frr"} in c["volumeMounts"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["frr-sockets"] == {"name": "frr-sockets", "emptyDir": {}}
    assert volumes["frr-start"]["configMap"]["name"].endswith("-speaker-frr")
    assert frr["command"] == ["/bin/sh", "/etc/ironlb/frr/start.sh"]
    caps = frr["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "SYS_ADMIN"]}
    assert frr["securityContext"]["allowPrivilegeEscalation"] is False
    assert frr["resources"]["limits"]["memory"] == "256Mi"
    # The grace period covers the drain (its wait, the settle time, the withdraw); FRR outlives the speaker's.
    assert spec["terminationGracePeriodSeconds"] == 35
    assert {e["name"]: e["value"] for e in frr["env"]}["DRAIN_LIMIT"] == "30"


def test_the_start_script_runs_the_contracts_daemons_on_the_shared_directory(helm: Path) -> None:
    script = find(render_json(helm, ON), "ConfigMap", "-speaker-frr")["data"]["start.sh"]
    for daemon in ("zebra", "bgpd", "bfdd"):
        assert f'"$FRR/{daemon}" --vty_socket "$DIR" -z "$DIR/zserv.api" -i "$DIR/{daemon}.pid"' in script
    assert "DIR=/var/run/frr" in script and '--bfdctl "$DIR/bfdd.sock"' in script


def test_bad_bgp_values_are_refused(helm: Path) -> None:
    assert "drainSeconds" in refused(helm, "speaker.bgp.drainSeconds=-1")
    assert "frrImage" in refused(helm, 'speaker.bgp.frrImage=""')
    assert "unknown" in refused(helm, "speaker.bgp.unknown=1").lower() or "additional" in refused(
        helm, "speaker.bgp.unknown=1").lower()


def test_the_speaker_container_stays_first(helm: Path) -> None:
    assert container(find(render_json(helm, ON), "DaemonSet", "-speaker"))["name"] == "speaker"
