"""The results table of docs/conformance.md (between its BEGIN/END markers) and the run's summary line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.conformance import classify, junit
from e2e.conformance.classify import Verdict
from e2e.conformance.junit import Outcome, Result
from e2e.conformance.specs import SPECS, Mode, Spec

BEGIN = "<!-- BEGIN RESULTS (python -m e2e.conformance render) -->"
END = "<!-- END RESULTS -->"
MODE_TITLE = {Mode.KUBEPROXY: "kube-proxy", Mode.NODEPORT: "NodePort"}
SHOWN = {Verdict.PASSED: "pass", Verdict.INHERENT_L2: "fail: inherent (L2)",
         Verdict.INHERENT_NODEPORT: "fail: inherent (NodePort mode)", Verdict.SKIPPED: "skipped by the spec",
         Verdict.NOT_RUN: "not run in this document's run", Verdict.DEFECT: "**fail: defect**"}
EVIDENCE_CHARS = 600


@dataclass(frozen=True)
class Cell:
    """One spec in one mode: its result and how it counts."""

    result: Result
    verdict: Verdict


def load(junit_files: dict[Mode, list[Path]]) -> dict[Mode, dict[str, Cell]]:
    """Mode -> spec text -> cell, every spec present (NOT_RUN where the mode's reports lack it)."""
    table: dict[Mode, dict[str, Cell]] = {}
    for mode in Mode:
        read = junit.read_all([p for p in junit_files.get(mode, []) if p.exists()])
        row = {}
        for spec in SPECS:
            result = read.get(spec.text, Result(spec, Outcome.NOT_RUN))
            row[spec.text] = Cell(result, classify.verdict(result, mode))
        table[mode] = row
    return table


def summary(table: dict[Mode, dict[str, Cell]]) -> dict[str, Any]:
    """The run's figures: specs, passes per mode, specs inherent to L2 / NodePort mode, defects."""
    def specs_with(verdict: Verdict) -> list[str]:
        return [s.text for s in SPECS if any(table[m][s.text].verdict is verdict for m in Mode)]
    return {
        "specs": len(SPECS),
        "passed_kubeproxy": sum(c.verdict is Verdict.PASSED for c in table[Mode.KUBEPROXY].values()),
        "passed_nodeport": sum(c.verdict is Verdict.PASSED for c in table[Mode.NODEPORT].values()),
        "inherent_l2": len(specs_with(Verdict.INHERENT_L2)),
        "inherent_nodeport": len(specs_with(Verdict.INHERENT_NODEPORT)),
        "skipped": {m.value: sum(c.verdict is Verdict.SKIPPED for c in table[m].values()) for m in Mode},
        "not_run": {m.value: sum(c.verdict is Verdict.NOT_RUN for c in table[m].values()) for m in Mode},
        "defects": len(specs_with(Verdict.DEFECT)),
    }


def _shown(cell: Cell) -> str:
    """A cell's text: its verdict's, and for a spec stopped by the run's time limit, that."""
    if cell.result.outcome is Outcome.INTERRUPTED:
        return f"interrupted by the run's time limit after {cell.result.seconds:.0f} s"
    return SHOWN[cell.verdict]


def _seconds(cell: Cell) -> str:
    return f"{cell.result.seconds:.0f} s" if cell.verdict is not Verdict.NOT_RUN else "-"


def _spec_cell(spec: Spec) -> str:
    return f"{spec.text.strip()} ({spec.source})"


def _evidence(message: str) -> str:
    """The report's own message, cut to EVIDENCE_CHARS, as a quoted block."""
    text = " ".join(message.split())
    text = text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + " …"
    return f"  > {text}" if text else "  > (no message in the report)"


def notes(table: dict[Mode, dict[str, Cell]]) -> list[str]:
    """For every spec not passing in a mode: the verdict, the table's reason, and the report's message."""
    lines: list[str] = []
    for spec in SPECS:
        for mode in Mode:
            cell = table[mode][spec.text]
            if cell.verdict in (Verdict.PASSED, Verdict.NOT_RUN):
                continue
            why = classify.reason(spec.text) if cell.verdict in (Verdict.INHERENT_L2, Verdict.INHERENT_NODEPORT) \
                else ""
            lines.append(f"- **{spec.text.strip()}**, {MODE_TITLE[mode]}: {SHOWN[cell.verdict]}. {why}".rstrip())
            lines.append(_evidence(cell.result.message))
    return lines


def section(table: dict[Mode, dict[str, Cell]], runs: dict[Mode, list[dict[str, Any]]]) -> str:
    """The generated part of the document."""
    lines = [BEGIN, ""]
    for mode in Mode:
        for run in runs.get(mode, []):
            lines.append(f"- {MODE_TITLE[mode]} mode: run at {run['date']} on commit `{run['commit']}`, "
                         f"{run.get('specs_run', 'the')} specs in {run['specs_seconds']:.0f} s "
                         f"(lab up and IronLB installed: {run['lab_seconds']:.0f} s)")
    lines += ["", "| spec | kube-proxy | NodePort | time (kube-proxy / NodePort) |", "|---|---|---|---|"]
    for spec in SPECS:
        kp, np_ = table[Mode.KUBEPROXY][spec.text], table[Mode.NODEPORT][spec.text]
        lines.append(f"| {_spec_cell(spec)} | {_shown(kp)} | {_shown(np_)} | "
                     f"{_seconds(kp)} / {_seconds(np_)} |")
    lines += ["", "Every spec that did not pass, with the report's own message:", "", *(notes(table) or ["- none"])]
    lines += ["", "Summary: `" + json.dumps(summary(table)) + "`", "", END]
    return "\n".join(lines)


def write(doc: Path, table: dict[Mode, dict[str, Cell]], runs: dict[Mode, list[dict[str, Any]]]) -> None:
    """Replace the generated part of DOC (between BEGIN and END) with this run's."""
    text = doc.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + section(table, runs) + tail)
