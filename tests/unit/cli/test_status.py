"""`ironlb status` renders what it is given, including what other implementations write."""

from __future__ import annotations

from typing import Any

from ironlb.cli import main
from ironlb.cli.main import render_status


def lb(name: str, ingress: list[dict[str, str]], cls: str | None = None) -> dict[str, Any]:
    """A LoadBalancer Service as the API sends it."""
    spec = {"type": "LoadBalancer", **({"loadBalancerClass": cls} if cls else {})}
    return {"metadata": {"name": name, "namespace": "default", "annotations": {"ironlb.io/allocated-from-pool": "p"}},
            "spec": spec, "status": {"loadBalancer": {"ingress": ingress} if ingress else {}}}


def test_hostname_only_ingress_is_shown_not_a_crash() -> None:
    out = render_status([], [lb("h", [{"hostname": "lb.example.com"}]),
                             lb("i", [{"ip": "203.0.113.5"}]), lb("pending", [])], None)
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:] if line.strip()}
    assert rows["default/h"] == "lb.example.com"
    assert rows["default/i"] == "203.0.113.5"
    assert rows["default/pending"] == "<pending>"
    assert "no IPAddressPools" in out


def test_other_classes_are_left_out() -> None:
    out = render_status([], [lb("x", [{"ip": "203.0.113.5"}], cls="example.com/other")], None)
    assert out.endswith("no LoadBalancer Services")


def test_user_text_is_printed_escaped() -> None:
    svc = lb("x", [{"ip": "203.0.113.5"}])
    # the annotation is user-editable
    svc["metadata"]["annotations"] = {"ironlb.io/allocated-from-pool": "p\x1b[2J\rfake"}
    pool = {"metadata": {"name": "p"}, "spec": {"addresses": ["203.0.113.0/24"]},
            "status": {"conditions": [{"type": "Invalid", "status": "True", "message": "bad \x1b]0;t\x07"}]}}
    out = render_status([pool], [svc], None)
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "p\\x1b[2J\\x0dfake" in out and "bad \\x1b]0;t\\x07" in out


def test_the_announcing_column_reads_the_speakers_condition() -> None:
    def svc(*conditions: dict[str, str]) -> dict[str, object]:
        return {"status": {"conditions": list(conditions)}}
    said = {"type": "ironlb.io/Announced", "status": "True", "message": "node-1 on eth0"}
    assert main._announced(svc(said)) == "node-1 on eth0"
    assert main._announced(svc({**said, "status": "False", "message": "no ready endpoint"})) == \
        "NOT ANNOUNCED: no ready endpoint"
    assert main._announced(svc({**said, "type": "Announced"})) == "-"  # a pool's condition type, not a Service's
    assert main._announced({}) == "-"
