"""The verdict of `ironlb doctor`: walk the chain in order, stop at the first broken link (pure).

Links 1-4 (is it ours, its IP, its advertisement, its eligible nodes) live here; the data path
(5-8: announcer, speaker's table, endpoints, forwarding) in :mod:`ironlb.cli.doctor.path`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ironlb.api.annotations import EVENT_REASON
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.reasons import AllocationReason, EventReason, parse
from ironlb.api.service import Handling, handling
from ironlb.cli.doctor.bgp import bgp_links
from ironlb.cli.doctor.context import Context
from ironlb.cli.doctor.findings import metrics_findings
from ironlb.cli.doctor.model import Link, LinkId, Mark, Report
from ironlb.cli.doctor.path import check_announcer, check_endpoints, check_forwarding, check_speaker_table
from ironlb.speaker.state.desired import NodeEligibility

# The allocator's refusals, as the operator publishes them (the ironlb.io/reason annotation of its AllocationFailed
# Events), and their fixes.
ALLOCATION_FIXES: dict[AllocationReason, str] = {
    AllocationReason.REQUESTED_IP_HELD: "a Service of another namespace released that IP moments ago and it is held "
                                        "for that namespace (the operator's IP reuse delay, see the pool's "
                                        "status.heldIPs): wait for the hold to end, or request another IP",
    AllocationReason.SHARING_INCOMPATIBLE: "Services sharing an IP need the same ironlb.io/allow-shared-ip key, no "
                                           "(protocol, port) clash, the same externalTrafficPolicy (Local: the same "
                                           "selector too), and one namespace unless the pool has "
                                           "spec.allowSharedIPAcrossNamespaces: true",
    AllocationReason.INVALID_REQUEST: "fix the request the message names: the requested IPs (ironlb.io/loadBalancerIPs "
                                      "or spec.loadBalancerIP, at most one per family) or an annotation too long",
    AllocationReason.POOL_EXHAUSTED: "the pool is full: add addresses to its spec.addresses, delete Services you no "
                                     "longer need, or ask for another pool with the ironlb.io/address-pool annotation",
    AllocationReason.POOL_NOT_FOUND: "create that IPAddressPool, or fix the ironlb.io/address-pool annotation",
    AllocationReason.NO_POOL_MATCHES: "create an IPAddressPool with autoAssign: true that serves this namespace, or "
                                      "name a pool with the ironlb.io/address-pool annotation",
    AllocationReason.REQUESTED_IP_IN_USE: "another Service holds that IP: request another, or let both share it (the "
                                          "same ironlb.io/allow-shared-ip key on both, no (protocol, port) clash, one "
                                          "namespace unless the pool allows sharing across namespaces)",
    AllocationReason.POOL_NOT_ALLOWED: "the pool's spec.serviceAllocation leaves this Service out: widen it, or use "
                                       "another pool",
    AllocationReason.FAMILY_UNAVAILABLE: "no pool offers the Service's IP families: add addresses of that family to a "
                                         "pool, or change spec.ipFamilyPolicy",
    AllocationReason.REQUESTED_IP_NOT_IN_POOL: "request an IP inside an IPAddressPool (kubectl get ipaddresspools)",
}
# An AllocationFailed Event without a reason doctor knows (an operator older or newer than this doctor).
UNKNOWN_ALLOCATION_FIX = "fix what the message says; the operator retries on every change"

NODE_REASONS = {
    NodeEligibility.ELIGIBLE: "eligible",
    NodeEligibility.NOT_SELECTED: "not selected by the L2Advertisement's nodeSelectors",
    NodeEligibility.DEAD: "not alive (its Node is not Ready)",
    NodeEligibility.NETWORK_UNAVAILABLE: "NetworkUnavailable (its Node condition)",
    NodeEligibility.EXCLUDED_BY_LABEL: "excluded by the label node.kubernetes.io/exclude-from-external-load-balancers",
    NodeEligibility.NO_LOCAL_ENDPOINT: "no ready local endpoint (externalTrafficPolicy: Local)",
}
NODE_FIXES = {
    NodeEligibility.NOT_SELECTED: "widen the nodeSelectors of L2Advertisement {ads} (kubectl edit l2advertisement)",
    NodeEligibility.DEAD: "bring a selected Node back to Ready (kubectl describe node)",
    NodeEligibility.NETWORK_UNAVAILABLE: "the network plugin reports these Nodes' network unavailable: fix it there",
    NodeEligibility.EXCLUDED_BY_LABEL: "remove the label: kubectl label node NODE "
                                       "node.kubernetes.io/exclude-from-external-load-balancers-, or (a single-node, "
                                       "kind or Talos cluster) install with --set speaker.ignoreExcludeLB=true",
    NodeEligibility.NO_LOCAL_ENDPOINT: "run a ready pod on a selected node, or set externalTrafficPolicy: Cluster",
}


def _link(id_: LinkId, ok: bool, summary: str, fix: str = "", details: tuple[str, ...] = ()) -> Link:
    return Link(id_, Mark.OK if ok else Mark.FAILED, summary, "" if ok else fix, details)


REMOVE_FINALIZERS = '[{"op": "remove", "path": "/metadata/finalizers"}]'


def check_class(ctx: Context) -> Link:
    """1: is the Service handled at all, and by whom (the operator's one "is this ours" rule)."""
    if ctx.service is None:
        return _link(LinkId.CLASS, False, f"Service {ctx.key} not found",
                     "check the name and the namespace (-n): kubectl get services -A")
    meta = ctx.service.get("metadata") or {}
    if meta.get("deletionTimestamp") and LB_CLEANUP_FINALIZER in (meta.get("finalizers") or ()):
        return _link(LinkId.CLASS, False, f"being deleted since {meta['deletionTimestamp']}: it keeps the finalizer "
                     f"{LB_CLEANUP_FINALIZER} until the speaker that announced its IP says Withdrawn (its "
                     "ironlb.io/Announced condition) and the operator removes it (after "
                     "operator.withdrawalTimeoutSeconds at most)",
                     "is the operator running? kubectl get pods -A -l app.kubernetes.io/component=operator; with "
                     f"IronLB gone for good, remove it by hand: kubectl patch service {ctx.facts.get('name')} -n "
                     f"{ctx.facts.get('namespace')} --type=json -p '{REMOVE_FINALIZERS}' (if it lists no other)")
    kind, cls, ours = ctx.spec.get("type") or "ClusterIP", ctx.spec.get("loadBalancerClass"), ctx.facts.get("lbClass")
    serves = f"loadBalancerClass {ours}" if ours else "Services without a loadBalancerClass"
    how = handling(ctx.spec, ours)
    if how is Handling.NOT_LOADBALANCER:
        what = {"ExternalName": "an ExternalName Service is a DNS name and never gets an IP"}.get(
            kind, f"type {kind} gets no external IP; only type LoadBalancer does")
        return _link(LinkId.CLASS, False, what, "set spec.type: LoadBalancer (kubectl patch service "
                     f"{ctx.facts.get('name')} -n {ctx.facts.get('namespace')} "
                     "-p '{\"spec\":{\"type\":\"LoadBalancer\"}}')")
    if how is Handling.OTHER_CLASS:
        return _link(LinkId.CLASS, False, f"loadBalancerClass {cls or '(none)'} is not IronLB's: IronLB serves "
                     f"{serves}, so {'another controller' if cls else 'no one here'} handles it",
                     "spec.loadBalancerClass cannot change on an existing Service: recreate it "
                     + (f"with loadBalancerClass {ours}" if ours else "without loadBalancerClass")
                     + ", or run IronLB for this class (Helm value loadBalancerClass)")
    return _link(LinkId.CLASS, True, f"type LoadBalancer, {f'class {cls}' if cls else 'no loadBalancerClass'}: "
                 "IronLB's")


def _latest(events: list[Mapping[str, Any]], reason: EventReason) -> Mapping[str, Any] | None:
    def when(e: Mapping[str, Any]) -> str:
        return e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or ""
    found = [e for e in events if parse(EventReason, e.get("reason")) is reason]
    return max(found, key=when, default=None)


def allocation_reason(event: Mapping[str, Any]) -> AllocationReason | None:
    """The allocator's reason an AllocationFailed Event carries (its ironlb.io/reason annotation), if it has one."""
    return parse(AllocationReason, ((event.get("metadata") or {}).get("annotations") or {}).get(EVENT_REASON))


def allocation_fix(reason: AllocationReason | None) -> str:
    """The fix for an allocation failure, from the allocator's reason."""
    return ALLOCATION_FIXES.get(reason, UNKNOWN_ALLOCATION_FIX) if reason is not None else UNKNOWN_ALLOCATION_FIX


def check_allocation(ctx: Context) -> Link:
    """2: which pool the IP came from, or the allocator's reason for none."""
    events = list(ctx.facts.get("events") or [])
    failed = _latest(events, EventReason.ALLOCATION_FAILED)
    if ctx.ips and ctx.pool:
        details = () if not failed or failed is not _newest(events) else (
            f"the last request failed, so the IP was kept: {failed.get('message')}",)
        return _link(LinkId.ALLOCATION, True, f"{', '.join(ctx.ips)} from pool {ctx.pool}", details=details)
    if ctx.ips:
        return _link(LinkId.ALLOCATION, False, f"status shows {', '.join(ctx.ips)}, but from no IronLB pool: "
                     "another implementation wrote it",
                     "stop the other implementation; IronLB takes over IPs that lie inside its pools")
    if failed:
        reason = allocation_reason(failed)
        return _link(LinkId.ALLOCATION, False, f"no IP: {failed.get('message') or ''}", allocation_fix(reason),
                     (f"Event {EventReason.ALLOCATION_FAILED.value} ({reason.value if reason else 'no reason given'}), "
                      f"seen {failed.get('count') or 1} time(s)",))
    return _link(LinkId.ALLOCATION, False, "no IP, and the operator has published no reason",
                 "is the operator running? kubectl get pods -A -l app.kubernetes.io/component=operator; "
                 "then its logs")


def _newest(events: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    relevant = [e for e in events
                if parse(EventReason, e.get("reason")) in (EventReason.ALLOCATION_FAILED, EventReason.IP_ALLOCATED)]
    return max(relevant, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", default=None)


def check_advertisement(ctx: Context) -> Link:
    """3: which L2Advertisement covers the pool (the speakers' own rule)."""
    if ctx.pool not in ctx.state.pools:
        return _link(LinkId.ADVERTISEMENT, False, f"pool {ctx.pool} no longer exists",
                     "recreate the pool; until then the operator releases its IPs")
    names = [ad.name for ad in ctx.advertisements]
    if names:
        return _link(LinkId.ADVERTISEMENT, True, f"L2Advertisement {', '.join(names)} covers pool {ctx.pool}")
    if ctx.pool_advertisements:
        left_out = ", ".join(ad.name for ad in ctx.pool_advertisements)
        return _link(LinkId.ADVERTISEMENT, False, f"L2Advertisement {left_out} covers pool {ctx.pool}, but its "
                     f"serviceSelectors leave this Service out, so no node answers ARP/NDP for {', '.join(ctx.ips)}",
                     f"label the Service to match one of them (kubectl label service -n {ctx.facts.get('namespace')} "
                     f"{ctx.facts.get('name')} KEY=VALUE), or widen the serviceSelectors of L2Advertisement "
                     f"{left_out}")
    return _link(LinkId.ADVERTISEMENT, False, f"no L2Advertisement covers pool {ctx.pool}, so no node answers "
                 f"ARP/NDP for {', '.join(ctx.ips)}",
                 "create one: kubectl apply -f - <<<'{\"apiVersion\": \"ironlb.io/v1beta1\", \"kind\": "
                 f"\"L2Advertisement\", \"metadata\": {{\"name\": \"{ctx.pool}\"}}, \"spec\": "
                 f"{{\"ipAddressPools\": [\"{ctx.pool}\"]}}}}'")


def check_eligible(ctx: Context) -> Link:
    """4: the eligible nodes, each with its reason (the speakers' own eligibility function)."""
    reasons = ctx.node_reasons
    details = tuple(f"{node}: {NODE_REASONS[r]}" for node, r in reasons.items())
    if ctx.eligible:
        return _link(LinkId.ELIGIBLE_NODES, True, f"{len(ctx.eligible)} of {len(reasons)}: "
                     f"{', '.join(ctx.eligible)}", details=details)
    if not reasons:
        return _link(LinkId.ELIGIBLE_NODES, False, "the cluster has no Nodes", "register the Nodes")
    found = set(reasons.values())
    if found == {NodeEligibility.NO_LOCAL_ENDPOINT} and not ctx.ready_endpoints:
        return Link(LinkId.ELIGIBLE_NODES, Mark.BLOCKED, "waits on link 7: no node has a ready endpoint",
                    details=details)
    ads = ", ".join(ad.name for ad in ctx.advertisements)
    fixes = [NODE_FIXES[r].format(ads=ads) for r in NodeEligibility if r in found and r in NODE_FIXES]
    return _link(LinkId.ELIGIBLE_NODES, False, f"no node may announce it (0 of {len(reasons)})",
                 "; or ".join(fixes), details)


CHECKS: tuple[Callable[[Context], Link], ...] = (
    check_class, check_allocation, check_advertisement, check_eligible,
    check_announcer, check_speaker_table, check_endpoints, check_forwarding)


# The links that are layer 2's own: a Service only BGP announces skips them (its BGP links say the rest).
L2_ONLY = {check_advertisement: LinkId.ADVERTISEMENT, check_eligible: LinkId.ELIGIBLE_NODES,
           check_announcer: LinkId.ANNOUNCER, check_speaker_table: LinkId.SPEAKER_TABLE,
           check_forwarding: LinkId.FORWARDING}


def diagnose(facts: Mapping[str, Any]) -> Report:
    """Walk the chain over FACTS (see ironlb.cli.doctor.context) and stop at the first broken link; then, when
    BGP objects exist, BGP's links."""
    ctx = Context(facts)
    bgp = bgp_links(ctx)
    bgp_only = bool(bgp) and bgp[0].mark is Mark.OK and not ctx.pool_advertisements
    links: list[Link] = []
    for check in CHECKS:
        if bgp_only and check in L2_ONLY:
            link = Link(L2_ONLY[check], Mark.NOT_CHECKED, "no L2Advertisement covers the pool: announced over BGP "
                        "only (the BGP links)")
        else:
            link = check(ctx)
        links.append(link)
        if link.mark is Mark.FAILED:
            break
    links += [Link(LinkId(n), Mark.NOT_REACHED, "not reached") for n in range(len(links) + 1, len(CHECKS) + 1)]
    return Report(ctx.key, ctx.ips, tuple(links), metrics_findings(ctx), bgp)
