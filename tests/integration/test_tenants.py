"""Tenants against the lab's API server and the real operator: a released IP is not squatted by another
namespace (its owner gets it back, across an operator restart too), and a sharing key does not join
another namespace's IP unless the pool allows it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from e2e.lab import ironlb_procs
from e2e.testkit.testing import Kube, wait_for
from e2e.testkit.testing import pool_manifest as pool
from tests.integration.conftest import events_for, ingress_ips, lb_service, wait_ips

pytestmark = pytest.mark.lab
IPS_ANN, SHARED_ANN, POOL_ANN = "ironlb.io/loadBalancerIPs", "ironlb.io/allow-shared-ip", "ironlb.io/address-pool"
OWNER, SQUATTER = "t-owner", "t-squatter"
SHARER, JOINER = "t-sharer", "t-joiner"  # their own: a namespace deleted by one test is still terminating
WANTED = "198.51.100.161"


def namespace(kube: Kube, cleanup, name: str) -> None:
    """Create namespace NAME (removed after the test)."""
    cleanup("namespace", name, None)
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


class Watcher:
    """Polls one Service's ingress in the background and remembers every IP it ever showed."""

    def __init__(self, kube: Kube, name: str, ns: str) -> None:
        self.kube, self.name, self.ns = kube, name, ns
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.seen |= set(ingress_ips(self.kube, self.name, self.ns))

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def reasons(kube: Kube, name: str, ns: str) -> Iterator[str]:
    """The AllocationFailed messages about a Service."""
    return (e["message"] for e in events_for(kube, name, ns) if e["reason"] == "AllocationFailed")


def test_a_recreated_service_gets_its_ip_back_and_the_other_namespace_never_shows_it(kube: Kube, cleanup) -> None:
    """B asks for A's IP. A deletes its Service (the IP is held for namespace A), the operator restarts (the
    hold is read back from the pool's status), A recreates its Service: A has the IP again, and B's Service
    never showed it at any moment."""
    for ns in (OWNER, SQUATTER):
        namespace(kube, cleanup, ns)
    cleanup("ipaddresspool", "t-squat", None)
    kube.apply(pool("t-squat", ["198.51.100.160/30"], autoAssign=False))
    want = {IPS_ANN: WANTED}
    cleanup("service", "web", OWNER)
    cleanup("service", "squat", SQUATTER)
    kube.apply(lb_service("web", OWNER, annotations=want))
    assert wait_ips(kube, "web", OWNER) == [WANTED]
    with Watcher(kube, "squat", SQUATTER) as squat:
        kube.apply(lb_service("squat", SQUATTER, annotations=want))
        wait_for(lambda: any("already in use" in m for m in reasons(kube, "squat", SQUATTER)), what="in use")
        kube.kubectl("delete", "service", "web", "-n", OWNER)
        wait_for(lambda: any("(RequestedIPHeld)" in m for m in reasons(kube, "squat", SQUATTER))
                 or ingress_ips(kube, "squat", SQUATTER), what="refusal, or the IP")
        assert ingress_ips(kube, "squat", SQUATTER) == [], "the other namespace took the released IP"
        cond = wait_for(lambda: next((c for c in kube.get("service", "squat", SQUATTER).get("status", {}).get(
            "conditions") or [] if c["type"] == "ironlb.io/Allocated" and c["reason"] == "RequestedIPHeld"), None),
            what="Allocated condition")
        assert cond["status"] == "False"
        held = wait_for(lambda: (kube.get("ipaddresspool", "t-squat", None).get("status") or {}).get("heldIPs"),
                        what="hold recorded in pool status")
        assert [(h["ip"], h["namespace"], h["service"]) for h in held] == [(WANTED, OWNER, "web")]
        ironlb_procs.restart("operator")
        kube.apply(lb_service("web", OWNER, annotations=want))
        assert wait_ips(kube, "web", OWNER, timeout=40) == [WANTED]
        assert ingress_ips(kube, "squat", SQUATTER) == []
    assert squat.seen == set(), f"the other namespace's Service showed {squat.seen}"


def sharer(name: str, ns: str, port: int, **annotations: str) -> dict:
    """A Service sharing key k on PORT."""
    return lb_service(name, ns, annotations={SHARED_ANN: "k", **annotations}, ports=[port])


def test_a_sharing_key_joins_another_namespaces_ip_only_where_the_pool_allows(kube: Kube, cleanup) -> None:
    """Same key, other port: refused across namespaces by default (the IP stays the owner's alone); a pool
    with allowSharedIPAcrossNamespaces lets the two namespaces share one IP."""
    for ns in (SHARER, JOINER):
        namespace(kube, cleanup, ns)
    cleanup("ipaddresspool", "t-xshare", None)
    cleanup("ipaddresspool", "t-xopen", None)
    kube.apply(pool("t-xshare", ["198.51.100.168/30"], autoAssign=False))
    for name, ns in (("web", SHARER), ("join", JOINER), ("auto", JOINER), ("o1", SHARER), ("o2", JOINER)):
        cleanup("service", name, ns)
    kube.apply(sharer("web", SHARER, 80, **{POOL_ANN: "t-xshare"}))
    [ip] = wait_ips(kube, "web", SHARER)
    with Watcher(kube, "join", JOINER) as join:
        kube.apply(sharer("join", JOINER, 443, **{IPS_ANN: ip}))
        wait_for(lambda: any("different-namespace" in m for m in reasons(kube, "join", JOINER))
                 or ingress_ips(kube, "join", JOINER), what="refusal, or the IP")
        assert ingress_ips(kube, "join", JOINER) == [], "a Service of another namespace joined the IP"
        kube.apply(sharer("auto", JOINER, 8080, **{POOL_ANN: "t-xshare"}))
        assert wait_ips(kube, "auto", JOINER) != [ip]
    assert join.seen == set(), f"the other namespace's Service showed {join.seen}"
    kube.apply(pool("t-xopen", ["198.51.100.172/30"], autoAssign=False, allowSharedIPAcrossNamespaces=True))
    kube.apply(sharer("o1", SHARER, 80, **{POOL_ANN: "t-xopen"}))
    kube.apply(sharer("o2", JOINER, 443, **{POOL_ANN: "t-xopen"}))
    assert wait_ips(kube, "o1", SHARER) == wait_ips(kube, "o2", JOINER) == ["198.51.100.172"]
