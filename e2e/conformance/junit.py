"""Ginkgo's JUnit report, read into one result per spec of specs.SPECS."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from e2e.conformance.specs import Spec, spec_of

SUITE_TIMEOUT = "A suite timeout occurred"


class Outcome(StrEnum):
    """What became of one spec in one run."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # by the spec itself (e2eskipper), with its reason
    NOT_RUN = "not run"  # absent from the report, or outside the run's focus
    INTERRUPTED = "interrupted"  # stopped by the run's own time limit or a signal: no verdict on IronLB


@dataclass(frozen=True)
class Result:
    """One spec's outcome in one run, its seconds, and the report's own message when it did not pass."""

    spec: Spec
    outcome: Outcome
    seconds: float = 0.0
    message: str = ""


def _outcome(case: ET.Element) -> tuple[Outcome, str]:
    """The outcome of a test case and its failure or skip message."""
    status = case.get("status", "")
    if status in ("interrupted", "aborted"):
        return Outcome.INTERRUPTED, status
    failure = case.find("failure")
    # Ginkgo reports the spec running when the whole suite's time runs out as "timedout", as it does a spec's own
    # timeout; only its fixed message tells the run's limit from the spec's.
    if status == "timedout" and failure is not None and (failure.get("message") or "").startswith(SUITE_TIMEOUT):
        return Outcome.INTERRUPTED, SUITE_TIMEOUT
    for tag in ("failure", "error"):
        found = case.find(tag)
        if found is not None:
            return Outcome.FAILED, found.get("message") or (found.text or "").strip()
    skipped = case.find("skipped")
    if status == "skipped" or skipped is not None:
        message = skipped.get("message", "") if skipped is not None else ""
        # Ginkgo reports a spec outside the focus as skipped with no reason of its own.
        return (Outcome.SKIPPED, message) if message.strip() not in ("", "skipped") else (Outcome.NOT_RUN, "")
    return (Outcome.PASSED, "") if status in ("", "passed") else (Outcome.FAILED, status)


def read_all(paths: list[Path]) -> dict[str, Result]:
    """Spec text -> its result over several reports of one mode (a resumed run's after the first): a later
    report's result replaces an earlier one unless it says less (not run, or interrupted, after a verdict)."""
    merged: dict[str, Result] = {}
    for path in paths:
        for text, result in read(path).items():
            if text not in merged or _rank(result.outcome) >= _rank(merged[text].outcome):
                merged[text] = result
    return merged


def _rank(outcome: Outcome) -> int:
    """A verdict outranks an interruption, which outranks not having run."""
    return {Outcome.NOT_RUN: 0, Outcome.INTERRUPTED: 1}.get(outcome, 2)


def read(path: Path) -> dict[str, Result]:
    """Spec text -> its result, for every spec of specs.SPECS the report holds."""
    results: dict[str, Result] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        spec = spec_of(case.get("name", ""))
        if spec is None:
            continue
        outcome, message = _outcome(case)
        results[spec.text] = Result(spec, outcome, float(case.get("time", "0") or 0), message.strip())
    return results
