"""Speaker chaos, a short run: 10 random failovers, no double answer in steady state, no VIP dark for 1 s."""

from __future__ import annotations

import pytest

from benchmarks.chaos_speaker import STEERING_POLL_S, false_steering, figures, run
from e2e.testkit.testing import Kube

pytestmark = pytest.mark.lab


def test_ten_random_failovers_never_answer_twice_and_never_leave_a_vip_dark(kube: Kube) -> None:
    got = run(failovers=10, seed=12, max_seconds=240)
    assert got["failovers"] == 10, got
    assert got["double_answer_samples"] == 0, got
    assert got["unanswered_after_1s"] == 0, got
    assert got["samples"] > 100, got
    assert got["false_steering_samples"] == 0, got  # no live node's endpoints skipped


def test_a_frozen_speaker_stops_answering_in_the_kernel_too(kube: Kube) -> None:
    """SIGSTOP leaves the kernel's ARP program attached; its lease running out must silence it before the steady
    state, or the frozen node answers beside the node that took its IPs over."""
    got = run(failovers=3, seed=5, max_seconds=90, kinds=("freeze",))
    assert got["failovers"] == got["faults_freeze"] == 3, got
    assert got["double_answer_samples"] == 0, got
    assert got["unanswered_after_1s"] == 0, got


def test_false_steering_counts_confirmed_deaths_only_while_the_victims_host_answers() -> None:
    polls = [(1.0, "node-1", 1.0), (2.0, "node-2", 1.0), (3.0, "node-1", 0.0), (5.0, "node-3", 1.0)]
    spans = [("kill-node", 0.5, 1.5), ("freeze", 1.8, 3.5), ("unplug", 4.5, 5.5)]
    assert false_steering(polls, spans) == {"false_steering_samples": 1, "false_steering_s": STEERING_POLL_S}


def test_the_figures_count_what_they_say() -> None:
    samples = [{"t": 0.0, "a": {"a": ["m1"], "b": ["m2"]}},
               {"t": 0.5, "a": {"a": ["m1", "m2"], "b": []}},   # inside a transition: not steady
               {"t": 1.0, "a": {"a": [], "b": []}},
               {"t": 2.2, "a": {"a": [], "b": ["m2"]}},          # a: dark 1.7 s since its last answer
               {"t": 3.0, "a": {"a": ["m1", "m3"], "b": ["m2"]}}]  # steady double answer
    got = figures(samples, [(0.4, 0.6)], {"kill-node": 1}, 1, 3.0)
    assert (got["double_answer_samples"], got["double_answer_samples_in_transitions"]) == (1, 1)
    assert got["unanswered_after_1s"] == 1 and got["max_gap_s"] == 1.7 and got["faults_kill_node"] == 1
    # a sample sent 20 ms before a transition starts holds answers from inside it
    got = figures([{"t": 0.98, "a": {"a": ["m1", "m2"]}}, {"t": 0.9, "a": {"a": ["m1", "m2"]}}], [(1.0, 2.0)],
                  {}, 1, 2.0)
    assert (got["double_answer_samples"], got["double_answer_samples_in_transitions"]) == (1, 1)
