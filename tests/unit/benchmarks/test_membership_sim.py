"""A short run of the failure detection simulation: the real code, 200 nodes, lossy network, random deaths."""

from __future__ import annotations

import json

from benchmarks.membership_sim import main, simulate


def test_a_short_run_meets_the_targets_with_loss() -> None:
    figures = simulate(nodes=200, loss=0.02, seconds=5.0, seed=3, kill_every=0.25)
    assert figures["deaths"] >= 10  # single deaths and deaths with a monitor
    assert figures["false_deaths"] == 0
    assert figures["datagrams_per_node_per_s"] <= 300
    assert figures["detection_p99_s"] <= 0.3
    assert figures["agreement_p99_s"] <= 0.5


def test_the_last_line_is_json_with_the_figures(capsys) -> None:
    assert main(["--nodes", "40", "--seconds", "3", "--loss", "0.05"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"datagrams_per_node_per_s", "detection_p99_s", "false_deaths", "agreement_p99_s", "nodes", "loss",
            "seconds"} <= figures.keys()
    assert figures["nodes"] == 40 and figures["loss"] == 0.05
