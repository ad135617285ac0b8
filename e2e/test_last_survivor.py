"""The last surviving node when the API goes too (a 3-node control plane that lost two members: no quorum).

With the default `--on-api-loss=answer` it keeps answering for every IP; it never fences itself
for the lost API alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from e2e.lab import lab, workload
from e2e.test_loadbalancer import service, vip_of
from e2e.test_speaker_resilience import answers, fenced
from e2e.testkit.testing import Kube, announced_pool, served_everywhere, speaker_hears_all, wait_for

pytestmark = pytest.mark.lab
POOL = "e2e-last-survivor"
NODES = ("node-1", "node-2", "node-3")
SURVIVOR = "node-1"


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A pool announced from every node, once every speaker hears every peer."""
    yield from announced_pool(kube, POOL, ["203.0.113.224/29"], NODES)


@pytest.fixture
def web(kube: Kube) -> Iterator[str]:
    """A workload with a pod on every node and its LoadBalancer Service."""
    yield from served_everywhere(kube, "last-survivor", service("last-survivor", pool=POOL), NODES)


def test_the_last_survivor_keeps_answering_when_the_api_goes_too(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    wait_for(lambda: answers(kube, vip), what="the VIP answered")
    others = [n for n in NODES if n != SURVIVOR]
    for n in others:
        workload.set_ready(f"{web}-{NODES.index(n)}", False)
        lab.kill_node(n)
    lab.stop_apiserver()
    try:
        # Past the silence grace and a few API probes: every sample, the survivor alone answers, unfenced.
        wait_for(lambda: answers(kube, vip) == [lab.node_mac(SURVIVOR)], timeout=10, what="the survivor answering")
        seen, reasons = [], set()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            seen.append(answers(kube, vip))
            reasons.add(fenced(kube, SURVIVOR))
            time.sleep(0.3)
        print(f"survivor without peers or API: answers {seen}, fenced reasons {reasons}")
        assert reasons == {None}, reasons
        assert all(a == [lab.node_mac(SURVIVOR)] for a in seen), seen
    finally:
        lab.start_apiserver()
        for n in others:
            lab.revive_node(n)
            workload.set_ready(f"{web}-{NODES.index(n)}", True)
        wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=90, what="every node back")
