"""Self-fencing decisions over time: the last survivor keeps its IPs, the isolated node lets go."""

from __future__ import annotations

import pytest

from ironlb.speaker.control.fencing import FENCING, ApiLossPolicy, ApiProbe, Evidence, Fence, FenceDecision

D = FenceDecision
UP, DOWN = ApiProbe.REACHABLE, ApiProbe.UNREACHABLE


def ev(api: ApiProbe = UP, **presence: str) -> Evidence:
    """Peers' presence as token or token:heard (heard 1 unless told: the peer is in a group)."""
    return Evidence(api, {p: (v.split(":")[0], int(v.split(":")[1]) if ":" in v else 1) for p, v in presence.items()})


# One step: (time, known peers, heard now, carrier, evidence or None, expected decision)
Step = tuple[float, int, int, bool, Evidence | None, FenceDecision]
SCENARIOS: list[tuple[str, list[Step]]] = [
    ("everyone alone: a higher name lets the lowest answer", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(**{"0": "r1:0"}), D.PEERS_DEAD),
        (2, 2, 0, True, ev(**{"0": "r2:0"}), D.FENCE_TIE_BREAK)]),
    ("peers heard: answer", [(0, 2, 2, True, None, D.ANSWER), (5, 2, 1, True, None, D.ANSWER)]),
    ("a lone speaker is never fenced for silence", [(0, 0, 0, True, None, D.NO_PEERS_EXPECTED),
                                                   (60, 0, 0, True, ev(DOWN), D.NO_PEERS_EXPECTED)]),
    ("last survivor: peers died, their presence stopped: keeps answering", [
        (0, 2, 2, True, None, D.ANSWER),
        (0.1, 2, 0, True, None, D.SILENCE_GRACE),
        (1.1, 2, 0, True, ev(b="r1", c="r1"), D.PEERS_DEAD),
        (2.1, 2, 0, True, ev(b="r1", c="r1"), D.PEERS_DEAD),
        (60, 2, 0, True, ev(b="r1", c="r1"), D.PEERS_DEAD)]),
    ("last survivor with no presence recorded at all: keeps answering", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(), D.PEERS_DEAD),
        (30, 2, 0, True, ev(), D.PEERS_DEAD)]),
    ("isolated, API reachable: a peer in a group renews, so it fences; heals when peers are heard", [
        (0, 2, 0, True, None, D.SILENCE_GRACE),
        (1, 2, 0, True, ev(b="r1", c="r1"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(b="r2", c="r1"), D.FENCE_PEERS_ALIVE),
        (2.5, 2, 0, True, None, D.FENCE_PEERS_ALIVE),
        (12, 2, 0, True, ev(b="r3", c="r2"), D.FENCE_PEERS_ALIVE),
        (13, 2, 1, True, None, D.ANSWER)]),
    ("everyone alone (all reaching the API): the lowest name answers", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(b="r1:0", c="r1:0"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(b="r2:0", c="r2:0"), D.ANSWER_TIE_BREAK)]),
    ("our own key in the presence map is not a peer", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(a="r1:0"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(a="r2:0"), D.PEERS_DEAD)]),
    ("a peer's Lease appearing during the silence is a renewal", [
        (0, 1, 0, True, None, D.SILENCE_GRACE), (1, 1, 0, True, ev(), D.PEERS_DEAD),
        (2, 1, 0, True, ev(b="r1"), D.FENCE_PEERS_ALIVE)]),
    ("a peer whose speaker stops running loses its proof at once", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(b="r1"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE),
        (3, 2, 0, True, ev(), D.FENCE_AWAITING_PROOF), (27, 2, 0, True, ev(), D.PEERS_DEAD)]),
    ("fenced isolated node whose peers then die: answers again one proof period later", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(b="r1"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE),
        (10, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE),
        (26.9, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE),
        (27.1, 2, 0, True, ev(b="r2"), D.PEERS_DEAD)]),
    ("silent and the API unreachable: fenced until the API shows, for a proof period, no peer lives", [
        (0, 2, 0, True, None, D.SILENCE_GRACE),
        (1, 2, 0, True, ev(DOWN), D.FENCE_API_UNREACHABLE),
        (1.5, 2, 0, True, None, D.FENCE_API_UNREACHABLE),
        (5, 2, 0, True, ev(DOWN), D.FENCE_API_UNREACHABLE),
        (6, 2, 0, True, ev(b="r1"), D.FENCE_AWAITING_PROOF),
        (7, 2, 0, True, ev(b="r1"), D.FENCE_AWAITING_PROOF),
        (31.1, 2, 0, True, ev(b="r1"), D.PEERS_DEAD)]),
    ("API lost while fenced for a live peer, then back with renewals: stays fenced", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(b="r1"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE), (3, 2, 0, True, ev(DOWN), D.FENCE_API_UNREACHABLE),
        (4, 2, 0, True, ev(b="r3"), D.FENCE_PEERS_ALIVE), (30, 2, 0, True, ev(b="r3"), D.PEERS_DEAD)]),
    ("no judgement inside the grace period, even with the API down", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (0.5, 2, 0, True, ev(DOWN), D.SILENCE_GRACE),
        (1.0, 2, 0, True, ev(DOWN), D.FENCE_API_UNREACHABLE)]),
    ("carrier lost on every announce interface: fenced even with peers heard", [
        (0, 2, 2, False, None, D.FENCE_NO_CARRIER), (3, 2, 2, False, ev(), D.FENCE_NO_CARRIER),
        (4, 2, 2, True, None, D.ANSWER)]),
    ("carrier back but peers not heard yet: stays fenced until judged", [
        (0, 2, 0, False, None, D.FENCE_NO_CARRIER), (5, 2, 0, True, None, D.FENCE_NO_CARRIER),
        (6, 2, 0, True, ev(b="r1"), D.FENCE_AWAITING_PROOF), (6.2, 2, 2, True, None, D.ANSWER)]),
    ("a short silence heals by itself: answer throughout", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (0.8, 2, 0, True, None, D.SILENCE_GRACE),
        (0.9, 2, 1, True, None, D.ANSWER), (2, 2, 0, True, None, D.SILENCE_GRACE)]),
]


# The same silences when the API is lost too, under the default policy (ApiLossPolicy.ANSWER).
ANSWER_SCENARIOS: list[tuple[str, list[Step]]] = [
    ("last survivor of a quorum loss (peers and API gone together): keeps answering", [
        (0, 2, 2, True, None, D.ANSWER),
        (0.1, 2, 0, True, None, D.SILENCE_GRACE),
        (1.1, 2, 0, True, ev(DOWN), D.ANSWER_API_UNREACHABLE),
        (1.5, 2, 0, True, None, D.ANSWER_API_UNREACHABLE),
        (60, 2, 0, True, ev(DOWN), D.ANSWER_API_UNREACHABLE),
        (61, 2, 1, True, None, D.ANSWER)]),
    ("the API comes back and shows a live group: then it fences", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(DOWN), D.ANSWER_API_UNREACHABLE),
        (2, 2, 0, True, ev(b="r1"), D.PEERS_DEAD), (3, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE)]),
    ("fenced for a live group, then the API is lost too: the group's evidence stands", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (1, 2, 0, True, ev(b="r1"), D.PEERS_DEAD),
        (2, 2, 0, True, ev(b="r2"), D.FENCE_PEERS_ALIVE), (3, 2, 0, True, ev(DOWN), D.FENCE_PEERS_ALIVE),
        (3.5, 2, 0, True, None, D.FENCE_PEERS_ALIVE), (40, 2, 0, True, ev(DOWN), D.FENCE_PEERS_ALIVE)]),
    ("carrier lost still fences, whatever the API", [
        (0, 2, 0, False, ev(DOWN), D.FENCE_NO_CARRIER), (5, 2, 0, True, ev(DOWN), D.FENCE_NO_CARRIER)]),
    ("no judgement inside the grace period", [
        (0, 2, 0, True, None, D.SILENCE_GRACE), (0.5, 2, 0, True, ev(DOWN), D.SILENCE_GRACE)]),
]


@pytest.mark.parametrize(("case", "steps"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_fencing_scenarios(case: str, steps: list[Step]) -> None:
    fence = Fence(me="a", on_api_loss=ApiLossPolicy.FENCE)
    got = [fence.observe(t, known, heard, carrier, evidence) for t, known, heard, carrier, evidence, _ in steps]
    assert got == [s[-1] for s in steps]
    assert fence.fenced is (got[-1] in FENCING)


@pytest.mark.parametrize(("case", "steps"), ANSWER_SCENARIOS, ids=[s[0] for s in ANSWER_SCENARIOS])
def test_fencing_scenarios_when_the_api_loss_policy_is_answer(case: str, steps: list[Step]) -> None:
    fence = Fence(me="a")
    got = [fence.observe(t, known, heard, carrier, evidence) for t, known, heard, carrier, evidence, _ in steps]
    assert got == [s[-1] for s in steps]
    assert fence.fenced is (got[-1] in FENCING)


def test_probes_are_wanted_only_while_silent_past_the_grace() -> None:
    fence = Fence()
    assert not fence.wants_probe(0)
    fence.observe(0, 2, 0, True)
    assert not fence.wants_probe(0.5) and fence.wants_probe(1.0)
    fence.observe(1.1, 2, 1, True)
    assert not fence.wants_probe(5)
