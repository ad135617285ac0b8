"""How long the lab gives a process its SIGTERM: a BGP-mode speaker its whole drain, since its node's FRR outlives
it and a speaker killed mid-drain leaves FRR announcing with its sessions up."""

from __future__ import annotations

import signal

import pytest

from e2e.lab.bgp import ironlb_leftovers
from e2e.lab.ironlb_procs import SPEAKER_STOP_MARGIN_S, speaker_stop_s
from e2e.lab.procs import stop_wait
from e2e.lab.state import LabState, Proc
from ironlb.speaker.bgp.drain import DrainSettings

FRR_DIR = {"IRONLB_FRR_SOCKET_DIR": "/lab/frr/node-1"}


@pytest.fixture(autouse=True)
def _no_host_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRONLB_FRR_SOCKET_DIR", raising=False)
    monkeypatch.delenv("IRONLB_BGP_DRAIN_SECONDS", raising=False)


@pytest.mark.parametrize(("name", "env", "expected"), [
    ("layer 2: stops at once, the caller's timeout", {}, None),
    ("BGP mode: the speaker's default bound, its settle time and a margin", FRR_DIR,
     DrainSettings.bound_s + DrainSettings.settle_s + SPEAKER_STOP_MARGIN_S),
    ("BGP mode with its own bound", {**FRR_DIR, "IRONLB_BGP_DRAIN_SECONDS": "30"},
     30 + DrainSettings.settle_s + SPEAKER_STOP_MARGIN_S),
    ("BGP mode with no wait: the settle and the margin still", {**FRR_DIR, "IRONLB_BGP_DRAIN_SECONDS": "0"},
     DrainSettings.settle_s + SPEAKER_STOP_MARGIN_S),
    ("BGP mode off (an empty DIR)", {"IRONLB_FRR_SOCKET_DIR": ""}, None),
])
def test_a_speaker_records_the_time_its_sigterm_takes(name: str, env: dict[str, str], expected: float | None) -> None:
    assert speaker_stop_s(env) == expected, name


def test_the_labs_own_environment_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONLB_BGP_DRAIN_SECONDS", "20")  # the speaker inherits it
    assert speaker_stop_s(FRR_DIR) == 20 + DrainSettings.settle_s + SPEAKER_STOP_MARGIN_S


def test_the_teardowns_timeout_never_cuts_a_drain_short() -> None:
    speaker = Proc(pid=1, argv=("speaker",), netns="ilb-node-1", start="1", stop_s=17.0)
    plain = Proc(pid=2, argv=("etcd",), netns=None, start="1")
    assert stop_wait(speaker, signal.SIGTERM, 5.0) == 17.0  # stop_all's 5 s, restart's 10 s
    assert stop_wait(speaker, signal.SIGTERM, 30.0) == 30.0
    assert stop_wait(speaker, signal.SIGKILL, 5.0) == 5.0  # a node killed: no drain to wait for
    assert stop_wait(plain, signal.SIGTERM, 5.0) == 5.0


def test_the_time_is_recorded_with_the_process() -> None:
    state = LabState().with_proc("speaker-node-1", Proc(1, ("speaker",), "ilb-node-1", "1", stop_s=17.0))
    assert LabState.from_json(state.to_json()).procs["speaker-node-1"].stop_s == 17.0


LEFT = """frr version 8.4.4
frr defaults traditional
hostname node-1
!
bgp route-map delay-timer 1
!
ip prefix-list ILB-rtr-X-4 seq 5 permit 198.51.100.61/32
!
router bgp 64513
 neighbor 192.0.2.254 remote-as 64512
exit
!
route-map ILB-A-g58b1e71ec1 permit 10
 set community 65000:12 additive
exit
!
route-map ILB-OUT-rtr deny 10
 match ip address prefix-list ILB-rtr-X-4
exit
!
route-map ILB-OUT-rtr permit 100
exit
!
bfd
 profile fast
  receive-interval 100
 exit
 !
exit
!
end
"""


def test_what_a_killed_speaker_left_is_found_and_removed_routers_first() -> None:
    found, commands = ironlb_leftovers(LEFT)
    assert found == ["router bgp 64513", "ip prefix-list ILB-rtr-X-4 seq 5 permit 198.51.100.61/32",
                     "route-map ILB-A-g58b1e71ec1 permit 10", "route-map ILB-OUT-rtr deny 10",
                     "bgp route-map delay-timer 1", "profile fast"]
    assert commands == ["no router bgp 64513", "no ip prefix-list ILB-rtr-X-4", "no route-map ILB-A-g58b1e71ec1",
                        "no route-map ILB-OUT-rtr", "no bgp route-map delay-timer", "bfd", "no profile fast", "exit"]


def test_an_empty_frr_needs_nothing() -> None:
    assert ironlb_leftovers("frr version 8.4.4\nhostname node-1\n!\nend\n") == ([], [])
