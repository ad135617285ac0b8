"""The speaker's command line: heartbeat timings are checked before anything starts; and what it loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ironlb.speaker.control.fencing import ApiLossPolicy
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S
from ironlb.speaker.main import parse_args


def test_heartbeat_timings_default_and_can_be_set() -> None:
    args = parse_args(["--node", "n1"])
    assert (args.heartbeat_interval, args.heartbeat_timeout) == (INTERVAL_S, TIMEOUT_S) == (0.025, 0.15)
    args = parse_args(["--node", "n1", "--heartbeat-interval", "0.1", "--heartbeat-timeout", "0.4"])
    assert (args.heartbeat_interval, args.heartbeat_timeout) == (0.1, 0.4)


def test_the_heartbeat_topology_defaults_to_the_ring_and_is_a_checked_choice(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert parse_args(["--node", "n1"]).heartbeat_topology == "ring"
    assert parse_args(["--node", "n1", "--heartbeat-topology", "mesh"]).heartbeat_topology == "mesh"
    monkeypatch.setenv("IRONLB_HEARTBEAT_TOPOLOGY", "mesh")
    assert parse_args(["--node", "n1"]).heartbeat_topology == "mesh"
    with pytest.raises(SystemExit):
        parse_args(["--node", "n1", "--heartbeat-topology", "star"])
    assert "invalid choice" in capsys.readouterr().err


def test_the_api_loss_policy_defaults_to_answer_and_is_a_checked_choice(capsys: pytest.CaptureFixture) -> None:
    assert parse_args(["--node", "n1"]).on_api_loss == ApiLossPolicy.ANSWER.value
    assert parse_args(["--node", "n1", "--on-api-loss", "fence"]).on_api_loss == "fence"
    with pytest.raises(SystemExit):
        parse_args(["--node", "n1", "--on-api-loss", "sometimes"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--heartbeat-interval", "0.1", "--heartbeat-timeout", "0.2"],
                                   ["--heartbeat-interval", "0", "--heartbeat-timeout", "1"],
                                   ["--heartbeat-interval", "20", "--heartbeat-timeout", "100"]])
def test_a_timeout_one_lost_datagram_could_trip_is_refused(flags: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--node", "n1", *flags])
    assert "at least three intervals" in capsys.readouterr().err


def test_the_speaker_loads_none_of_the_kubernetes_package_aiohttp_yaml_pyroute2() -> None:
    # In a fresh interpreter: what this test process has loaded says nothing. (The import contract covers static
    # imports; this also catches a lazy one made at import time.) yaml is read only for a kubeconfig, never in a pod;
    # netlink is read by ironlb.speaker.control.netlink, not pyroute2; HTTP served by ironlb.common.http.
    probe = ("import sys, ironlb.speaker.main; "
             "print(sorted(m for m in ('kubernetes', 'kopf', 'urllib3', 'yaml', 'aiohttp', 'pyroute2') "
             "if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env, timeout=60)
    assert out.stdout.strip() == "[]"


def test_bgp_mode_is_on_when_the_frr_socket_dir_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from ironlb.speaker.main import bgp_component

    off = parse_args(["--node", "n1"])
    assert (off.frr_socket_dir, bgp_component(off)) == ("", None)
    monkeypatch.setenv("IRONLB_FRR_SOCKET_DIR", "/var/run/frr")
    monkeypatch.setenv("IRONLB_BGP_DRAIN_SECONDS", "4")
    component = bgp_component(parse_args(["--node", "n1"]))
    assert component is not None
    assert (component.socket_dir, component.drain_settings.bound_s) == ("/var/run/frr", 4.0)


def test_the_cordon_trigger_is_on_by_default_and_reaches_the_trigger_and_the_feed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ironlb.api.reasons import BGPDrainReason
    from ironlb.common.kubeapi import Client, ClusterConfig
    from ironlb.speaker.bgp.component import BgpComponent
    from ironlb.speaker.control.app import Speaker

    assert parse_args(["--node", "n1"]).bgp_drain_on_cordon == "true"
    assert parse_args(["--node", "n1", "--bgp-drain-on-cordon=false"]).bgp_drain_on_cordon == "false"
    monkeypatch.setenv("IRONLB_BGP_DRAIN_ON_CORDON", "false")
    assert parse_args(["--node", "n1"]).bgp_drain_on_cordon == "false"
    offline = Client(ClusterConfig("http", "127.0.0.1", 9))  # never asked
    for on in (True, False):
        speaker = Speaker("n1", None, offline, b"k" * 32, 7946, [], bgp=BgpComponent("/nonexistent"),
                          bgp_drain_on_cordon=on)
        assert speaker.drain_trigger is not None and speaker.bgp is not None
        assert (speaker.drain_trigger.on_cordon, speaker.bgp.drain_on_cordon) == (on, on)
        speaker.terminating()  # SIGTERM's hook: the conditions this node writes mark it
        assert speaker.bgp.draining == {"n1": BGPDrainReason.TERMINATING}
        speaker.bgp.close()


async def test_sigterm_says_the_node_drains_before_the_drain_starts() -> None:
    import asyncio

    from ironlb.speaker.main import stop

    said: list[str] = []

    class Component:
        async def drain(self) -> None:
            said.append("drain")

    task = asyncio.ensure_future(asyncio.sleep(10))
    await stop(task, Component(), lambda: said.append("draining"))  # type: ignore[arg-type]
    assert said == ["draining", "drain"]
    await asyncio.sleep(0)
    assert task.cancelled()
