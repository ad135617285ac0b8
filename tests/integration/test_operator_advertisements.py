"""The cross-object checks CEL cannot make, against the lab's real API server: a pool that no
L2Advertisement announces, and an L2Advertisement naming a pool that does not exist."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.testkit.testing import Kube, wait_for
from e2e.testkit.testing import pool_manifest as pool
from tests.integration.conftest import wait_event

pytestmark = pytest.mark.lab


def condition(kube: Kube, kind: str, name: str, ctype: str) -> dict[str, Any] | None:
    """The condition CTYPE in the object's status, if written."""
    conds = (kube.get(kind, name).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ctype), None)


def wait_condition(kube: Kube, kind: str, name: str, ctype: str, status: str, text: str) -> dict[str, Any]:
    """Wait until condition CTYPE has STATUS and a message containing TEXT."""
    def probe() -> dict[str, Any] | None:
        cond = condition(kube, kind, name, ctype)
        return cond if cond and cond["status"] == status and text in cond["message"] else None
    return wait_for(probe, what=f"{ctype}={status} on {kind} {name}")


def advertisement(name: str, *pools: str) -> dict[str, Any]:
    """An L2Advertisement naming POOLS."""
    return {"apiVersion": "ironlb.io/v1beta1", "kind": "L2Advertisement", "metadata": {"name": name},
            "spec": {"ipAddressPools": list(pools)}}


def test_unannounced_pool_and_missing_pool_are_reported_then_cleared(kube: Kube, cleanup) -> None:
    for kind, name in (("ipaddresspool", "t-unann"), ("ipaddresspool", "t-later"), ("l2advertisement", "t-names")):
        cleanup(kind, name, None)
    kube.apply(pool("t-unann", ["203.0.113.228/30"], autoAssign=False))
    wait_condition(kube, "ipaddresspool", "t-unann", "Announced", "False", "no L2Advertisement announces this pool")
    wait_event(kube, "t-unann", "NoL2Advertisement", kind="IPAddressPool")

    # A typo in the advertisement: the pool it meant is announced, the one it names is reported.
    kube.apply(advertisement("t-names", "t-unann", "t-later"))
    wait_condition(kube, "ipaddresspool", "t-unann", "Announced", "True", "announced by L2Advertisement t-names")
    wait_condition(kube, "l2advertisement", "t-names", "MissingPools", "True", "no IPAddressPool named t-later")
    event = wait_event(kube, "t-names", "PoolNotFound", kind="L2Advertisement")
    assert event["type"] == "Warning" and "t-later" in event["message"]

    kube.apply(pool("t-later", ["203.0.113.232/30"], autoAssign=False))
    wait_condition(kube, "l2advertisement", "t-names", "MissingPools", "False", "every pool named exists")
    wait_condition(kube, "ipaddresspool", "t-later", "Announced", "True", "t-names")

    # The delete that leaves nothing to announce a pool: it says so again.
    kube.kubectl("delete", "l2advertisement", "t-names")
    wait_condition(kube, "ipaddresspool", "t-later", "Announced", "False", "no L2Advertisement")
