"""The operator's Service informer transform: what it keeps reads as the whole Service; slimming twice is a no-op."""

from __future__ import annotations

import copy

from ironlb.operator.services import view_of
from ironlb.operator.startup import slim_service
from tests.unit.speaker.test_slim import full_service


def test_a_slim_service_reads_as_the_whole_one_and_keeps_what_relists_compare() -> None:
    full = full_service()
    thin = slim_service(copy.deepcopy(full))
    assert "managedFields" not in thin["metadata"]
    assert {k: thin["metadata"][k] for k in ("name", "namespace", "resourceVersion")} == {
        "name": "web", "namespace": "shop", "resourceVersion": "4711"}
    for labels in (None, {"team": "payments"}):
        assert view_of(thin, None, labels) == view_of(full, None, labels)
    assert slim_service(copy.deepcopy(thin)) == thin  # handed to the reconciler as the informer keeps it
