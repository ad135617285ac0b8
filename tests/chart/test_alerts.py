"""The chart's PrometheusRule and Grafana dashboard: off by default; the rule passes `promtool check rules`;
each alert fires on its bad series and stays silent on its good ones (`promtool test rules`, a file per
alert in tests/chart/alerts/); every metric a rule or a panel reads is one IronLB exports; every alert's
runbook is a section of docs/operations.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.exported import exported_names, metric_names
from tests.chart.helm import CHART, REPO
from tests.chart.test_chart_template import find, render

ALERT_TESTS = REPO / "tests" / "chart" / "alerts"
DASHBOARD = CHART / "files" / "dashboard.json"
ON = ("metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true")


def rules(helm: Path, *sets: str) -> list[dict[str, Any]]:
    """The rendered PrometheusRule's alerting rules."""
    rule = find(render(helm, ON[0], *sets), "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def promtool_run(promtool: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *map(str, args)], capture_output=True, text=True, timeout=120)


def dashboard_queries() -> list[str]:
    """Every panel's PromQL, rows' panels included."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    panels += [p for row in panels for p in row.get("panels", [])]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_off_by_default_no_rule_and_no_dashboard(helm: Path) -> None:
    objs = render(helm)
    assert not [o for o in objs if o["kind"] == "PrometheusRule"]
    assert not [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]


def test_the_rule_passes_promtool_check(helm: Path, promtool: Path, tmp_path: Path) -> None:
    spec = find(render(helm, ON[0]), "PrometheusRule")["spec"]
    (tmp_path / "ironlb.rules.yaml").write_text(yaml.safe_dump(spec))
    checked = promtool_run(promtool, "check", "rules", tmp_path / "ironlb.rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(spec['groups'][0]['rules'])} rules found" in checked.stdout


def test_every_alert_has_a_test_file_and_a_runbook(helm: Path) -> None:
    names = {r["alert"] for r in rules(helm)}
    assert names == {p.stem for p in ALERT_TESTS.glob("*.yaml")}
    headings = set(re.findall(r"^### (IronLB\w+)$", (REPO / "docs" / "operations.md").read_text(), re.M))
    assert names <= headings, f"no runbook section: {sorted(names - headings)}"
    for rule in rules(helm):
        assert rule["annotations"]["runbook_url"].endswith(f"docs/operations.md#{rule['alert'].lower()}")
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"]


@pytest.mark.parametrize("alert", sorted(p.stem for p in ALERT_TESTS.glob("*.yaml")))
def test_the_alert_fires_on_its_bad_series_and_not_on_the_good(helm: Path, promtool: Path, tmp_path: Path,
                                                               alert: str) -> None:
    spec = find(render(helm, ON[0]), "PrometheusRule")["spec"]
    (tmp_path / "ironlb.rules.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(ALERT_TESTS / f"{alert}.yaml", tmp_path)
    tested = promtool_run(promtool, "test", "rules", tmp_path / f"{alert}.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((ALERT_TESTS / f"{alert}.yaml").read_text())["tests"]
    # each file has a case where the alert fires and one where it stays silent, both on this alert
    assert {bool(t["alert_rule_test"][0]["exp_alerts"]) for t in cases} == {True, False}
    assert {a["alertname"] for t in cases for a in t["alert_rule_test"]} == {alert}


def test_alert_values_reach_the_rule(helm: Path) -> None:
    tuned = {r["alert"]: r for r in rules(
        helm, "metrics.prometheusRule.alerts.speakerFenced.enabled=false",
        "metrics.prometheusRule.alerts.poolNearlyExhausted.threshold=0.75",
        "metrics.prometheusRule.alerts.poolNearlyExhausted.for=1h",
        "metrics.prometheusRule.alerts.operatorNoLeader.severity=warning",
        "metrics.prometheusRule.alerts.servicesPending.reasons={PoolExhausted}")}
    assert "IronLBSpeakerFenced" not in tuned
    assert tuned["IronLBPoolNearlyExhausted"]["expr"].endswith("> 0.75")
    assert tuned["IronLBPoolNearlyExhausted"]["for"] == "1h"
    assert tuned["IronLBOperatorNoLeader"]["labels"]["severity"] == "warning"
    assert 'reason=~"PoolExhausted"' in tuned["IronLBServicesPending"]["expr"]
    assert "for" not in tuned["IronLBDuplicateAnswers"]  # 0s: at once


def test_namespace_and_labels_of_both(helm: Path) -> None:
    objs = render(helm, *ON, "metrics.prometheusRule.namespace=monitoring",
                  "metrics.prometheusRule.additionalLabels.release=kube-prometheus-stack",
                  "metrics.grafanaDashboard.namespace=grafana",
                  "metrics.grafanaDashboard.annotations.k8s-sidecar-target-directory=/tmp/ironlb")
    rule, dashboard = find(objs, "PrometheusRule"), find(objs, "ConfigMap", "-dashboard")
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert dashboard["metadata"]["namespace"] == "grafana"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"k8s-sidecar-target-directory": "/tmp/ironlb"}
    assert json.loads(dashboard["data"]["ironlb.json"]) == json.loads(DASHBOARD.read_text())


def test_rules_and_panels_read_only_metrics_ironlb_exports(helm: Path) -> None:
    exported = exported_names()
    queries = [r["expr"] for r in rules(helm)] + dashboard_queries()
    for query in queries:
        read = metric_names(query)
        assert read, f"reads no metric: {query}"
        assert read <= exported, f"not exported by IronLB: {sorted(read - exported)} in {query}"


def test_dashboard_queries_parse(promtool: Path, tmp_path: Path) -> None:
    """Each panel's query, as a recording rule (Grafana's $__rate_interval as a duration), passes promtool."""
    records = [{"record": f"ironlb:dashboard_query_{i}", "expr": q.replace("$__rate_interval", "5m")}
               for i, q in enumerate(dashboard_queries())]
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": records}]}))
    checked = promtool_run(promtool, "check", "rules", tmp_path / "dashboard.rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
