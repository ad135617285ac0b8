"""Why a spec does not pass: a table by spec name, never by reading the failure message (the message is quoted in
the document as evidence, and decides nothing). A failure the table does not name for its mode is a defect."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from e2e.conformance.junit import Outcome, Result
from e2e.conformance.specs import Mode


class Kind(StrEnum):
    """Why a spec may fail without IronLB being at fault."""

    INHERENT_L2 = "inherent_l2"  # no L2 announcement can pass it: one node receives a VIP's traffic
    INHERENT_NODEPORT = "inherent_nodeport"  # NodePort forwarding's design (docs/design.md, "NodePort forwarding")


class Verdict(StrEnum):
    """One spec in one mode, as the document and the summary count it."""

    PASSED = "passed"
    INHERENT_L2 = "inherent_l2"
    INHERENT_NODEPORT = "inherent_nodeport"
    SKIPPED = "skipped"  # the spec skipped itself (its message says why)
    NOT_RUN = "not_run"
    DEFECT = "defect"


@dataclass(frozen=True)
class Inherent:
    """A spec expected to fail in MODES, and why."""

    kind: Kind
    modes: tuple[Mode, ...]
    reason: str


BOTH = (Mode.KUBEPROXY, Mode.NODEPORT)

# Spec text -> why it cannot pass. Only specs seen failing, with the cause traced, belong here.
INHERENT: dict[str, Inherent] = {
    "should be able to switch session affinity for LoadBalancer service with Local traffic policy": Inherent(
        Kind.INHERENT_L2, BOTH,
        "With affinity switched off the spec wants answers from every endpoint. An L2 announcement sends a VIP's "
        "traffic to one node, and externalTrafficPolicy: Local sends it only to that node's own endpoints: every "
        "answer comes from the announcing node's pod."),
    "should be able to create LoadBalancer Service without NodePort and change it": Inherent(
        Kind.INHERENT_NODEPORT, (Mode.NODEPORT,),
        "The spec's Service has allocateLoadBalancerNodePorts: false. NodePort forwarding sends a VIP's traffic to "
        "the nodes' NodePorts, and this Service has none: the speaker forwards nothing and says so in the "
        "Service's status (`has no nodePort`), so the announcing node, with no route for the VIP, answers "
        "\"network is unreachable\"."),
}


def verdict(result: Result, mode: Mode) -> Verdict:
    """How RESULT (one spec, one run in MODE) counts."""
    if result.outcome is Outcome.PASSED:
        return Verdict.PASSED
    if result.outcome is Outcome.SKIPPED:
        return Verdict.SKIPPED
    if result.outcome in (Outcome.NOT_RUN, Outcome.INTERRUPTED):
        return Verdict.NOT_RUN
    known = INHERENT.get(result.spec.text)
    if known is not None and mode in known.modes:
        return Verdict(known.kind.value)
    return Verdict.DEFECT


def reason(spec_text: str) -> str:
    """The table's reason for SPEC_TEXT, or an empty string."""
    known = INHERENT.get(spec_text)
    return known.reason if known else ""
