"""Reasons, not text: no Event or condition in src/ is written or read with a bare reason or type literal.

Every Event reason, condition type and condition reason IronLB writes is a member of an enum in
ironlb.api.reasons. An AST scan of src/ finds the places a literal would slip back in: the calls that
record Events or build conditions, condition dicts written by hand, and comparisons of what was read.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest

from ironlb.api import reasons
from ironlb.api.conditions import changed_since, condition, find
from ironlb.api.reasons import AllocationReason, ConditionType, ConfigReason, EventReason, parse

SRC = Path(__file__).resolve().parents[3] / "src" / "ironlb"
# Calls that record an Event or build a condition: none of their arguments is a reason spelled out (nor is a
# variable or constant named for a reason, or a condition type).
WRITERS = {"event", "submit", "record", "_event", "condition", "object_condition"}
# The keys under which a reason or a condition type is written or read.
REASON_KEYS = {"reason", "type"}
# A reason or condition type spelled out: one CamelCase word, or one with the ironlb.io/ prefix.
WORD = re.compile(r"^(ironlb\.io/)?[A-Z][A-Za-z0-9]+$")
# A `type` read off an object is a condition's only when compared with one of these (Services, Nodes and watch
# events have types too).
CONDITION_TYPES = {t.value for t in ConditionType}


def _literal(node: ast.AST) -> bool:
    """A reason word spelled out in the code, or an f-string that makes one (a message has spaces)."""
    if isinstance(node, ast.IfExp):
        return _literal(node.body) or _literal(node.orelse)
    if isinstance(node, ast.JoinedStr):  # f"{PREFIX}Announced" and f"{why}" are; f"{PREFIX}reason", a key, is not
        words = [str(v.value) for v in node.values if isinstance(v, ast.Constant)]
        return not words or (" " not in "".join(words) and isinstance(node.values[-1], ast.Constant)
                             and bool(re.match(r"^[A-Z][A-Za-z0-9]*$", words[-1])))
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(WORD.match(node.value))


def _read_key(node: ast.AST) -> str | None:
    """"reason" for X.get("reason") or X["reason"] (and "type" likewise): what is read off an object."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
        key = node.args[0]
    elif isinstance(node, ast.Subscript):
        key = node.slice
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and key.value in REASON_KEYS else None


def _compared_as_text(node: ast.Compare) -> bool:
    """A reason read and compared with a word; a type compared with one of IronLB's condition types."""
    sides = [node.left, *node.comparators]
    keys = {_read_key(side) for side in sides} - {None}
    words = [item for side in sides for item in (side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set)
                                                 else [side]) if _literal(item)]
    if "reason" in keys:
        return bool(words)
    return "type" in keys and any(isinstance(w, ast.Constant) and w.value in CONDITION_TYPES for w in words)


def _names_a_reason(target: ast.AST) -> bool:
    """A variable or constant that holds a reason or a condition type, by its name."""
    name = _name(target).lower()
    return "reason" in name or name.startswith("condition_")


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def bare_reasons(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) for every reason or condition type spelled as a literal where one is written or read."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in WRITERS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if _literal(arg):
                    yield node.lineno, f"{_name(node.func)}() given {ast.unparse(arg)}"
        elif isinstance(node, ast.Dict) and "reason" in {k.value for k in node.keys if isinstance(k, ast.Constant)}:
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in REASON_KEYS and _literal(value):
                    yield node.lineno, f"a condition written with {key.value}: {ast.unparse(value)}"
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and _literal(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(map(_names_a_reason, targets)):
                yield node.lineno, f"a reason kept as text: {ast.unparse(node)}"
        elif isinstance(node, ast.Compare) and _compared_as_text(node):
            yield node.lineno, f"a reason read as text: {ast.unparse(node)}"


def test_no_reason_in_src_is_a_bare_literal() -> None:
    found = [f"{path.relative_to(SRC)}:{line}: {what}" for path in sorted(SRC.rglob("*.py"))
             for line, what in bare_reasons(ast.parse(path.read_text(), str(path)))]
    assert found == []


@pytest.mark.parametrize("code", [
    'writer.event(ref, "IPAllocated", "assigned")',
    'recorder.submit(ref, EventReason.ALLOCATION_FAILED, text, detail="PoolExhausted")',
    'condition(ConditionType.INVALID, True, f"{why}", message, since=now)',
    '{"type": "ironlb.io/Announced", "status": "True", "reason": reason.value}',
    '{"type": kind.value, "status": "False", "reason": "NotInPool", "message": text}',
    'if cond.get("reason") == "NoEligibleNode": pass',
    'found = [e for e in events if e["reason"] in ("AllocationFailed", "IPAllocated")]',
    'mine = [c for c in conditions if c.get("type") == "ironlb.io/Forwarding"]',
    'condition(ConditionType.INVALID, bad, "InvalidSpec" if bad else "Valid", message, since=now)',
    'reason = "NodeAssigned" if ok else "NotAnnounced"',
    'REASON_DUPLICATE_ANSWER = "DuplicateAnswer"',
    'CONDITION_ANNOUNCED = f"{PREFIX}Announced"',
])
def test_the_scan_finds_a_bare_reason(code: str) -> None:
    assert list(bare_reasons(ast.parse(code)))


@pytest.mark.parametrize("code", [
    'writer.event(ref, EventReason.IP_ALLOCATED, f"Assigned IP {ip} from pool {pool}")',
    'condition(ConditionType.INVALID, True, ConfigReason.VALID, "the pool is valid", since=now)',
    'if parse(AnnounceReason, cond.get("reason")) is AnnounceReason.NO_ELIGIBLE_NODE: pass',
    'ready = _has_condition(node, "Ready")',
    'ours = spec.get("type") != "LoadBalancer"',
    'reason = EventReason.NODE_ASSIGNED if ok else EventReason.NOT_ANNOUNCED',
    'why = (exc.strerror or str(exc)).splitlines()[0]',
    'EVENT_REASON = f"{PREFIX}reason"',
])
def test_the_scan_lets_enums_and_messages_pass(code: str) -> None:
    assert list(bare_reasons(ast.parse(code))) == []


def test_each_enum_spells_each_word_once() -> None:
    for kind in (EventReason, ConditionType, ConfigReason, AllocationReason, reasons.AnnounceReason,
                 reasons.ForwardingReason):
        assert len({m.value for m in kind}) == len(kind.__members__), kind  # no alias hides a second name


def test_parse_reads_a_member_or_nothing() -> None:
    assert parse(AllocationReason, "PoolExhausted") is AllocationReason.POOL_EXHAUSTED
    assert parse(AllocationReason, "no free IPv4 address") is None and parse(EventReason, None) is None


def test_the_one_condition_builder_and_its_transition_time() -> None:
    shown = {"conditions": [{"type": "Announced", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    kept = changed_since(shown, ConditionType.POOL_ANNOUNCED, False)
    flipped = changed_since(shown, ConditionType.POOL_ANNOUNCED, True)
    assert kept == "2026-01-01T00:00:00Z" and flipped != kept
    assert condition(ConditionType.POOL_ANNOUNCED, False, ConfigReason.NO_L2_ADVERTISEMENT, "none", since=kept,
                     generation=2) == {"type": "Announced", "status": "False", "reason": "NoL2Advertisement",
                                       "message": "none", "lastTransitionTime": kept, "observedGeneration": 2}
    allocated = condition(ConditionType.SERVICE_ALLOCATED, True, AllocationReason.ASSIGNED, "ok", since=kept)
    assert "observedGeneration" not in allocated
    assert find(shown, ConditionType.POOL_ANNOUNCED) is shown["conditions"][0]
    assert find(shown, ConditionType.SERVICE_ANNOUNCED) is None  # the Service's Announced is another condition


def test_every_reason_kind_is_in_the_vocabulary() -> None:
    kinds = {k for k in vars(reasons).values() if isinstance(k, type) and issubclass(k, Enum) and k is not Enum}
    assert set(reasons.Reason.__args__) == kinds - {ConditionType}
