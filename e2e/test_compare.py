"""benchmarks.compare in small: one trial each, every figure for both sides, traffic through both."""

from __future__ import annotations

import math

import pytest

from benchmarks import _compare_scenarios as sc
from benchmarks.compare import FIGURES, compare
from e2e.lab import metallb, procs
from e2e.testkit.testing import Kube

pytestmark = pytest.mark.lab
SMOKE = sc.Sizes(trials=1, single=5, burst=30, idle_services=20, idle_window_s=10, settle_s=5, prober_s=25)


def test_metallb_refuses_to_start_beside_ironlb(kube: Kube) -> None:
    assert procs.running("operator"), "the lab runs IronLB by default"
    with pytest.raises(RuntimeError, match="only one implementation at a time"):
        metallb.start()
    assert not metallb.running()


@pytest.mark.long  # `make test` keeps the refusal above; the figures are benchmarks.compare's
@pytest.mark.timeout(900)
def test_compare_smoke_every_figure_both_sides(kube: Kube) -> None:
    result = compare(SMOKE)
    for fig in FIGURES:
        for side in ("ironlb", "metallb"):
            assert result[f"{fig}_{side}"] is not None, f"{fig}_{side} missing"
        assert f"{fig}_ratio" in result
    for side in ("ironlb", "metallb"):
        # A finite failover time means the client got an answer through this implementation's VIP
        # before the kill (checked by the trial) and after it.
        trials = result[f"failover_trials_s_{side}"]
        assert len(trials) == 1 and math.isfinite(trials[0]), (side, trials)
        assert result[f"burst_complete_{side}"] is True
        replies, sent = map(int, result[f"arp_replies_{side}"].split("/"))
        assert sent > 0 and replies > 0.9 * sent, (side, replies, sent)
        assert result[f"speaker_rss_mb_{side}"] > 1
    assert result["metallb_version"] == "v0.16.1"
    assert procs.running("operator") and not metallb.running(), "the lab runs IronLB again afterwards"
