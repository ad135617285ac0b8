"""A slice of the upstream LoadBalancer e2e specs (docs/conformance.md), run by the same runner as
`make conformance`, in kube-proxy mode on a fresh real-node lab: quick specs that pass, each asserted passed."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.conformance import build, junit, run
from e2e.conformance.junit import Outcome
from e2e.conformance.specs import SLICE, Mode

pytestmark = [pytest.mark.lab, pytest.mark.kubelet]


def test_the_slice_passes_in_kube_proxy_mode(tmp_path: Path) -> None:
    binary, _ = build.e2e_test_binary()
    try:
        done = run.run_specs(Mode.KUBEPROXY, binary, SLICE, tmp_path, timeout_s=900)
        assert done.junit.exists(), done.log.read_text()[-3000:]
        results = junit.read(done.junit)
        outcomes = {s.text: results[s.text].outcome if s.text in results else Outcome.NOT_RUN for s in SLICE}
        failed = {t: results[t].message[:500] for t, o in outcomes.items() if o is not Outcome.PASSED and t in results}
        assert outcomes == {s.text: Outcome.PASSED for s in SLICE}, failed
    finally:
        run.lab.down()
