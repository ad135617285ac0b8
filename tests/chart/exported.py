"""The metric names IronLB exports, read from its own collectors, and the metric names a PromQL query reads."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry

from ironlb.common.kubeapi import Client, ClusterConfig
from ironlb.common.kubeapi.metrics import count_writes
from ironlb.operator import metrics as operator_metrics
from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.metrics import registry_for

# The names a family's samples take in the exposition format, by the family's type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan",
                # aggregations, whose grouping may stand between the name and its parenthesis
                "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}


def _names(family: Any) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}


def exported_names() -> set[str]:
    """Every sample name the operator and the speaker serve on /metrics (their runtime collectors included)."""
    offline = Client(ClusterConfig("http", "127.0.0.1", 9))  # never asked: nothing here calls the API
    operator_runtime = CollectorRegistry()
    operator_metrics.count_events(lambda: {}, operator_runtime)
    count_writes(offline, operator_runtime)
    speaker = Speaker("node-1", None, offline, b"k" * 32, 7946, [])
    speaker_registry = registry_for(lambda: speaker)
    count_writes(offline, speaker_registry)
    registries = (operator_metrics.REGISTRY, operator_runtime, speaker_registry)
    return {name for registry in registries for family in registry.collect() for name in _names(family)}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, keywords, labels or durations)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges, $__rate_interval included
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", bare)  # label lists
    found = re.findall(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", bare)
    return {name for name, call in found if not call and name.lower() not in PROMQL_WORDS}
