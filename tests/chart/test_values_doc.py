"""The README's Helm values reference is generated from the schema and kept current."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ironlb.cli.valuesdoc import render, update_readme
from tests.chart.helm import CHART, REPO


def test_readme_values_reference_is_current(tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", copy)
    assert not update_readme(copy, CHART), "run `ironlb values-doc` and commit README.md"


def test_every_schema_leaf_is_documented() -> None:
    table = render(CHART)
    for key in ("`image.repository`", "`operator.replicas`", "`speaker.nodePortForwarding`",
                "`heartbeatSecret.name`", "`metrics.serviceMonitor.interval`", "`loadBalancerClass`"):
        assert key in table
    # Four columns per row: enum choices inside a cell are escaped as \| and do not split it.
    assert all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in table.splitlines())
