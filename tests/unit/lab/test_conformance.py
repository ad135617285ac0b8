"""The conformance runner's pure parts: JUnit read per spec, classification by name, the document's table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from e2e.conformance import classify, junit, render, run
from e2e.conformance.classify import Verdict
from e2e.conformance.junit import Outcome, Result
from e2e.conformance.specs import QUICK, SLICE, SPECS, Mode, focus, spec_named, spec_of

PREFIX = "[It] [sig-network] LoadBalancers [Feature:LoadBalancer] "
SWITCH_LOCAL = "should be able to switch session affinity for LoadBalancer service with Local traffic policy"
UDP_SAME = "should be able to preserve UDP traffic when server pod cycles for a LoadBalancer service on the same nodes"


def _case(text: str, status: str, inner: str = "", seconds: float = 12.5) -> str:
    return f'<testcase name="{PREFIX}{text} [Slow]" classname="Kubernetes e2e suite" status="{status}" ' \
           f'time="{seconds}">{inner}</testcase>'


def _report(tmp_path: Path, *cases: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="Kubernetes e2e suite">'
                    '<testcase name="[SynchronizedBeforeSuite]" status="passed" time="1"></testcase>'
                    + "".join(cases) + "</testsuite></testsuites>")
    return path


def test_junit_reads_each_outcome_and_the_message(tmp_path: Path) -> None:
    path = _report(
        tmp_path,
        _case("should work from pods", "passed"),
        _case(SWITCH_LOCAL, "failed", '<failure message="Affinity should hold but didn&#39;t." type="failed">'
                                      "[FAILED] long</failure>"),
        _case("should work for type=LoadBalancer", "skipped",
              "<skipped message=\"skipped - LoadBalancer uses 'Proxy' IPMode\"></skipped>"),
        _case("should target all nodes with endpoints", "skipped", '<skipped message="skipped"></skipped>'),
        '<testcase name="[It] [sig-network] Services should be rejected" status="failed" time="1"></testcase>',
    )
    results = junit.read(path)
    assert {t: r.outcome for t, r in results.items()} == {
        "should work from pods": Outcome.PASSED, SWITCH_LOCAL: Outcome.FAILED,
        "should work for type=LoadBalancer": Outcome.SKIPPED,
        "should target all nodes with endpoints": Outcome.NOT_RUN}
    assert results[SWITCH_LOCAL].message == "Affinity should hold but didn't."
    assert results[SWITCH_LOCAL].seconds == 12.5
    assert "Proxy" in results["should work for type=LoadBalancer"].message


def test_a_resumed_run_gives_the_verdicts_the_first_lacked(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _report(tmp_path / "a", _case("should work from pods", "passed"),
                    _case(SWITCH_LOCAL, "interrupted", '<error message="Interrupted by User" type="interrupted"/>'))
    resumed = _report(tmp_path / "b", _case("should work from pods", "skipped", '<skipped message="skipped"/>'),
                      _case(SWITCH_LOCAL, "failed", '<failure message="one pod" type="failed"/>'))
    assert junit.read(first)[SWITCH_LOCAL].outcome is Outcome.INTERRUPTED
    merged = junit.read_all([first, resumed])
    assert merged["should work from pods"].outcome is Outcome.PASSED
    assert merged[SWITCH_LOCAL].outcome is Outcome.FAILED and merged[SWITCH_LOCAL].message == "one pod"
    assert junit.read_all([resumed, first])[SWITCH_LOCAL].outcome is Outcome.FAILED
    assert junit.read_all([resumed, first])["should work from pods"].outcome is Outcome.PASSED
    not_run_first = _report(tmp_path / "b", _case(SWITCH_LOCAL, "skipped", '<skipped message="skipped"/>'))
    assert junit.read_all([not_run_first, first])[SWITCH_LOCAL].outcome is Outcome.INTERRUPTED
    assert classify.verdict(junit.read(first)[SWITCH_LOCAL], Mode.KUBEPROXY) is Verdict.NOT_RUN
    suite_timeout = _report(tmp_path / "a", _case(SWITCH_LOCAL, "timedout", '<failure message="A suite timeout '
                                                  'occurred and then the following" type="timedout"/>'),
                            _case(UDP_SAME, "timedout", '<failure message="A node timeout occurred" type="timedout"/>'))
    assert junit.read(suite_timeout)[SWITCH_LOCAL].outcome is Outcome.INTERRUPTED
    assert junit.read(suite_timeout)[UDP_SAME].outcome is Outcome.FAILED


def test_each_spec_is_told_apart_from_the_others() -> None:
    for spec in SPECS:
        assert spec_of(f"{PREFIX}{spec.text} [Slow] [LinuxOnly]") is spec
    assert spec_of("[It] [sig-network] Services should work") is None
    pattern = re.compile(focus(SPECS))
    assert all(pattern.search(f"{PREFIX}{s.text} [Slow]") for s in SPECS)
    assert not pattern.search("[It] [sig-network] Services should serve a basic endpoint from pods")


def test_the_spec_sets() -> None:
    assert len(SPECS) == 21
    assert [s.text for s in SPECS if s not in QUICK] == [s.text for s in SPECS if s.rolling]
    assert len(QUICK) == 19
    assert set(SLICE) <= set(QUICK) and SLICE


@pytest.mark.parametrize(("text", "outcome", "mode", "expected"), [
    ("should work from pods", Outcome.PASSED, Mode.KUBEPROXY, Verdict.PASSED),
    (SWITCH_LOCAL, Outcome.FAILED, Mode.KUBEPROXY, Verdict.INHERENT_L2),
    (SWITCH_LOCAL, Outcome.FAILED, Mode.NODEPORT, Verdict.INHERENT_L2),
    ("should work from pods", Outcome.FAILED, Mode.KUBEPROXY, Verdict.DEFECT),
    (UDP_SAME, Outcome.SKIPPED, Mode.NODEPORT, Verdict.SKIPPED),
    (UDP_SAME, Outcome.NOT_RUN, Mode.NODEPORT, Verdict.NOT_RUN),
])
def test_classification_is_by_name_and_mode(text: str, outcome: Outcome, mode: Mode, expected: Verdict) -> None:
    assert classify.verdict(Result(spec_named(text), outcome, message="anything at all"), mode) is expected


def test_every_inherent_entry_names_a_spec_and_gives_a_reason() -> None:
    for text, entry in classify.INHERENT.items():
        assert spec_named(text)
        assert entry.reason and entry.modes


def test_render_writes_the_table_and_the_summary(tmp_path: Path) -> None:
    kube_proxy = _report(
        tmp_path, _case("should work from pods", "passed"),
        _case(SWITCH_LOCAL, "failed", '<failure message="all answers from one pod" type="failed"></failure>'),
        _case("should handle load balancer cleanup finalizer for service", "failed",
              '<failure message="timed out waiting for the finalizer" type="failed"></failure>'))
    table = render.load({Mode.KUBEPROXY: [kube_proxy]})
    figures = render.summary(table)
    assert figures["specs"] == 21 and figures["passed_kubeproxy"] == 1 and figures["passed_nodeport"] == 0
    assert figures["inherent_l2"] == 1 and figures["defects"] == 1
    assert figures["not_run"] == {"kubeproxy": 18, "nodeport": 21}
    doc = tmp_path / "conformance.md"
    doc.write_text(f"# title\n\n{render.BEGIN}\nold\n{render.END}\ntail\n")
    render.write(doc, table, {Mode.KUBEPROXY: [{"date": "d", "commit": "c", "specs_seconds": 1, "lab_seconds": 2}]})
    text = doc.read_text()
    assert "old" not in text and text.startswith("# title") and text.endswith("tail\n")
    assert "> timed out waiting for the finalizer" in text and "> all answers from one pod" in text
    assert "**fail: defect**" in text and "fail: inherent (L2)" in text
    summary_line = next(line for line in text.splitlines() if line.startswith("Summary:"))
    assert json.loads(summary_line.split("`")[1]) == figures


def test_reports_of_a_mode_in_the_order_written(tmp_path: Path) -> None:
    for part in (0, 1, 2):
        run.junit_path(Mode.NODEPORT, tmp_path, part).write_text("<testsuites/>")
    assert [p.name for p in run.reports(Mode.NODEPORT, tmp_path)] == [
        "junit-nodeport.xml", "junit-nodeport-1.xml", "junit-nodeport-2.xml"]
    assert run.record_path(run.junit_path(Mode.NODEPORT, tmp_path, 1)).name == "run-nodeport-1.json"
    assert run.reports(Mode.KUBEPROXY, tmp_path) == []


def test_the_pool_follows_the_mode() -> None:
    for mode, forwarding in ((Mode.KUBEPROXY, "KubeProxy"), (Mode.NODEPORT, "NodePort")):
        pool = run.pool_manifests(mode)[0]
        assert pool["spec"]["forwarding"] == forwarding  # type: ignore[index]
    assert run.CHART_VALUES[Mode.NODEPORT] == ("speaker.nodePortForwarding=true",)


def test_an_interrupted_spec_is_shown_as_such_and_counted_as_not_run(tmp_path: Path) -> None:
    report = _report(tmp_path, _case(SWITCH_LOCAL, "interrupted", '<error message="Interrupted by timeout"/>', 530))
    table = render.load({Mode.KUBEPROXY: [report]})
    assert table[Mode.KUBEPROXY][SWITCH_LOCAL].verdict is Verdict.NOT_RUN
    assert "interrupted by the run's time limit after 530 s" in render.section(table, {})
    assert render.summary(table)["defects"] == 0
