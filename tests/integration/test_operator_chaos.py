"""The operator chaos run, short: 10 SIGKILLs of the active replica during churn, one API server
restart, etcd compactions. The full run (100 kills) is `python -m benchmarks.chaos_operator`."""

from __future__ import annotations

import pytest

from benchmarks.chaos_operator import run_chaos
from e2e.testkit.testing import Kube

pytestmark = pytest.mark.lab


def test_ten_kills_during_churn_keep_every_invariant(kube: Kube) -> None:
    figures = run_chaos(kube, kills=10, interval=2.5, api_restarts=1, seed=7, converge_timeout=60)
    print(figures)
    assert figures["kills"] == 10
    assert figures["ops"] > 20 and figures["checker_events"] > 0
    assert figures["duplicate_ip_samples"] == 0, figures["violations"]
    assert figures["ips_changed_untouched"] == 0
    assert figures["not_converged"] == 0, figures["not_converged_keys"]
    assert figures["api_restarts"] == 1


def test_the_restarted_api_server_still_proxies_to_nodes(kube: Kube) -> None:
    # The chaos run restarts kube-apiserver; what comes back must be the lab's, with node names it
    # resolves, or `nodes/NAME/proxy` (how `ironlb doctor` reads speakers) answers 400 from then on.
    text = kube.kubectl("get", "--raw", "/api/v1/nodes/node-1:7473/proxy/metrics").stdout
    assert "ironlb_speaker_" in text
