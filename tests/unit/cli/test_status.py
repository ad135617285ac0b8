"""`ironlb status` renders what it is given, including what other implementations write."""

from __future__ import annotations

from kubernetes import client

from ironlb.cli.main import render_status


def lb(name: str, ingress: list[client.V1LoadBalancerIngress], cls: str | None = None) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, namespace="default",
                                     annotations={"ironlb.io/allocated-from-pool": "p"}),
        spec=client.V1ServiceSpec(type="LoadBalancer", load_balancer_class=cls),
        status=client.V1ServiceStatus(load_balancer=client.V1LoadBalancerStatus(ingress=ingress)))


def test_hostname_only_ingress_is_shown_not_a_crash() -> None:
    out = render_status([], [lb("h", [client.V1LoadBalancerIngress(hostname="lb.example.com")]),
                             lb("i", [client.V1LoadBalancerIngress(ip="203.0.113.5")]), lb("pending", [])], None)
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:] if line.strip()}
    assert rows["default/h"] == "lb.example.com"
    assert rows["default/i"] == "203.0.113.5"
    assert rows["default/pending"] == "<pending>"
    assert "no IPAddressPools" in out


def test_other_classes_are_left_out() -> None:
    out = render_status([], [lb("x", [client.V1LoadBalancerIngress(ip="203.0.113.5")], cls="example.com/other")], None)
    assert out.endswith("no LoadBalancer Services")


def test_user_text_is_printed_escaped() -> None:
    svc = lb("x", [client.V1LoadBalancerIngress(ip="203.0.113.5")])
    svc.metadata.annotations = {"ironlb.io/allocated-from-pool": "p\x1b[2J\rfake"}  # the annotation is user-editable
    pool = {"metadata": {"name": "p"}, "spec": {"addresses": ["203.0.113.0/24"]},
            "status": {"conditions": [{"type": "Invalid", "status": "True", "message": "bad \x1b]0;t\x07"}]}}
    out = render_status([pool], [svc], None)
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "p\\x1b[2J\\x0dfake" in out and "bad \\x1b]0;t\\x07" in out
