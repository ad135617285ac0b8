"""A Service kept as a flat record reads as the slim dict it was: every section, every reader's result, and its
conditions' writes are the same; Services alike share one layout; the view keeps records."""

from __future__ import annotations

import copy
import pickle
import sys
from typing import Any

from hypothesis import given, settings

from ironlb.speaker.control.forward.plan import Backend, ServicePlan
from ironlb.speaker.control.status import condition_writer, forwarding_condition, service_ref
from ironlb.speaker.state import compact, slim
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.compact import Record
from ironlb.speaker.state.endpoints import service_ports
from ironlb.speaker.state.incremental import IncrementalDesired
from tests.unit.speaker.state.test_slim import KINDS, _writes, full_service, json_values


def test_a_record_reads_as_the_slim_service_it_was_made_from() -> None:
    thin = slim.service(full_service())
    kept = Record(copy.deepcopy(thin))
    assert kept == thin and thin == kept and kept.whole() == thin
    assert dict(kept) == thin and list(kept) == list(thin) and len(kept) == len(thin)
    for section in ("metadata", "spec", "status"):
        assert kept[section] == thin[section] and type(kept[section]) is dict
    assert kept.get("nothing") is None and "spec" in kept and "nothing" not in kept
    assert kept["metadata"]["annotations"] is thin["metadata"]["annotations"]  # a shared part stays the one copy


def test_each_read_is_a_fresh_copy_so_no_reader_changes_what_is_kept() -> None:
    kept = Record(slim.service(full_service()))
    kept["status"]["conditions"].clear()
    kept["spec"]["ports"][0]["port"] = 1
    assert kept == slim.service(full_service())


def _containers_size(value: Any) -> int:
    """Bytes of the plain dicts and lists in VALUE (what a record replaces by one tuple)."""
    if type(value) not in (dict, list):
        return 0
    items = value.values() if type(value) is dict else value
    return sys.getsizeof(value) + sum(_containers_size(v) for v in items)


def test_services_alike_share_one_layout_and_keep_only_their_leaves() -> None:
    thin = slim.service(full_service("web"))
    one, two = Record(thin), Record(slim.service(full_service("api", "203.0.113.11")))
    assert one._shape is two._shape and one != two
    assert sys.getsizeof(one) + sys.getsizeof(one._leaves) < _containers_size(thin) / 4


def test_the_readers_of_a_service_read_a_record_as_the_slim_dict() -> None:
    thin = slim.service(full_service())
    kept = Record(thin)
    plan = ServicePlan("shop/web", {"n1": Backend.HEALTHY, "n2": Backend.DEAD}, vips=("203.0.113.10",))
    assert forwarding_condition(plan, kept) == forwarding_condition(plan, thin)
    assert service_ref(kept) == service_ref(thin)
    assert service_ports(kept) == service_ports(thin) and len(service_ports(kept)) == 2
    state = ClusterState()
    assert state.kept(kept) and state.withdrawing(kept) == state.withdrawing(thin)
    assert state.service_info("shop/web", kept, {}) == state.service_info("shop/web", thin, {})
    assert condition_writer("shop/web", [], kept, frozenset({"n1"})) == condition_writer("shop/web", [], thin,
                                                                                         frozenset({"n1"}))


async def test_a_record_gets_the_same_condition_writes_and_events_as_the_slim_service() -> None:
    thin = slim.service(full_service())
    kept_writes, thin_writes = await _writes(Record(thin)), await _writes(thin)  # type: ignore[arg-type]
    assert kept_writes == thin_writes and len(kept_writes[0]) == 3


def test_the_view_keeps_records_and_a_relists_copy_recomputes_nothing() -> None:
    inc = IncrementalDesired("n1")
    for kind, objs in KINDS.items():
        for o in objs:
            inc.apply(kind, "ADDED", slim.TRANSFORMS[kind](o) if kind in slim.TRANSFORMS else o)
    table = inc.publish()
    assert all(type(svc) is Record for svc in inc.state.services.values()) and len(inc.state.services) == 2
    inc.apply("services", "MODIFIED", slim.service(full_service("web", "203.0.113.10", "Local")))
    assert not inc._dirty and inc.publish() is table


def test_a_record_pickles_and_copies_as_itself() -> None:
    kept = Record(slim.service(full_service()))
    assert pickle.loads(pickle.dumps(kept)) == kept and copy.deepcopy(kept) == kept


def test_the_layouts_kept_are_bounded() -> None:
    for i in range(compact.SHAPE_LIMIT + 10):
        Record({"metadata": {f"k{i}": i}})
    assert len(compact._shapes) <= compact.SHAPE_LIMIT


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_slimmed_object_comes_back_as_it_was(value: Any) -> None:
    for transform in slim.TRANSFORMS.values():
        thin = transform(value)
        kept = Record(thin)
        assert kept == thin and kept.whole() == thin and repr(kept.whole()) == repr(thin)
        assert Record(copy.deepcopy(thin)) == kept


def test_services_with_the_same_ports_share_one_copy_of_them_in_their_infos() -> None:
    state = ClusterState()
    infos = [state.service_info(f"shop/{name}", Record(slim.service(full_service(name, ip))), {})
             for name, ip in (("web", "203.0.113.10"), ("api", "203.0.113.11"))]
    assert infos[0] is not None and infos[1] is not None
    assert infos[0].ports == ((("TCP", 80, 31080), ("UDP", 53, 31053)))
    assert infos[0].ports is infos[1].ports
