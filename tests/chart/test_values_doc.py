"""The Helm values reference in docs/operations.md is generated from the schema and kept current."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ironlb.cli.valuesdoc import BEGIN, render, update_doc
from tests.chart.helm import CHART, REPO

OPERATIONS = REPO / "docs" / "operations.md"


def test_operations_values_reference_is_current(tmp_path: Path) -> None:
    copy = tmp_path / "operations.md"
    shutil.copy(OPERATIONS, copy)
    assert not update_doc(copy, CHART), "run `ironlb values-doc` and commit docs/operations.md"


def test_a_stale_reference_is_found_and_rewritten(tmp_path: Path) -> None:
    copy = tmp_path / "operations.md"
    text = OPERATIONS.read_text()
    stale = text.replace("| `speaker.heartbeatPort` |", "| `speaker.heartbeatPortOld` |", 1)
    assert stale != text, "the reference in docs/operations.md lists speaker.heartbeatPort"
    copy.write_text(stale)
    assert update_doc(copy, CHART)
    assert copy.read_text() == text


def test_text_around_the_reference_is_kept(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nbefore\n\n{BEGIN}\nold table\n<!-- values-reference:end -->\n\nafter\n")
    assert update_doc(doc, CHART)
    text = doc.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text and render(CHART) in text


def test_every_schema_leaf_is_documented() -> None:
    table = render(CHART)
    for key in ("`image.repository`", "`operator.replicas`", "`speaker.nodePortForwarding`",
                "`heartbeatSecret.name`", "`metrics.serviceMonitor.interval`", "`loadBalancerClass`"):
        assert key in table
    # Four columns per row: enum choices inside a cell are escaped as \| and do not split it.
    assert all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in table.splitlines())
