"""Links 5-8 of `ironlb doctor`: the announcing node and its speaker, its table, endpoints, forwarding (pure)."""

from __future__ import annotations

from enum import Enum

from ironlb.api.conditions import announced_in
from ironlb.api.constants import FORWARDING_NODE_PORT
from ironlb.api.reasons import AnnounceReason, ConditionType, ForwardingReason, parse
from ironlb.cli.doctor.context import Context
from ironlb.cli.doctor.model import Link, LinkId, Mark

SPEAKER_PODS = "kubectl get pods -A -l app.kubernetes.io/component=speaker -o wide --field-selector spec.nodeName={n}"
BLOCKED_BY_ENDPOINTS = "waits on link 7: the speakers announce an IP only while the Service has a ready endpoint"
# A Forwarding condition's reason when it is False, and its fix.
FORWARDING_FIXES = {
    ForwardingReason.DISABLED: "helm upgrade with --set speaker.nodePortForwarding=true",
    ForwardingReason.NO_HEALTHY_BACKEND: "kube-proxy's healthz (port 10256) fails on every node: check kube-proxy",
    ForwardingReason.INVALID_SOURCE_RANGES: "make every spec.loadBalancerSourceRanges entry a CIDR (192.0.2.0/24, "
                                            "2001:db8::/64)",
}


class SpeakerState(Enum):
    """A speaker as doctor saw it through the API server proxy."""

    UP = "its /metrics answered"
    REFUSED = "its /metrics answered, but refused doctor"  # alive; what it knows is unread (see the findings)
    DOWN = "its /metrics did not answer (while other speakers' did)"
    UNKNOWN = "its /metrics could not be read"


def speaker_state(ctx: Context, node: str) -> SpeakerState:
    """UP when its metrics were read; DOWN only when others' were (so the proxy path itself works)."""
    scraped = ctx.speaker(node)
    if scraped is not None and "samples" in scraped:
        return SpeakerState.UP
    if scraped is not None and "refused" in scraped:
        return SpeakerState.REFUSED
    return SpeakerState.DOWN if scraped is not None and ctx.scrape_path_works else SpeakerState.UNKNOWN


def _evidence(ctx: Context, node: str) -> str:
    state = speaker_state(ctx, node)
    if state is SpeakerState.UP:
        alive = ctx.samples(node, "ironlb_speaker_alive_peers")
        return "speaker alive" + (f", hears {alive[0]['value']:.0f} speakers" if alive else "")
    scraped = ctx.speaker(node) or {}
    if state is SpeakerState.REFUSED:
        return f"speaker alive (its /metrics refused doctor: {scraped['refused']})"
    error = scraped.get("error")
    return f"{state.value}{f' ({error})' if error else ''}"


def _no_endpoints(ctx: Context) -> bool:
    return not ctx.ready_endpoints


def claims(message: str) -> dict[str, tuple[str, str]]:
    """IP -> (node, interfaces) from the Announced condition's message."""
    return announced_in(message)


def _down_fix(node: str) -> str:
    return (f"check the speaker on {node}: {SPEAKER_PODS.format(n=node)}, then its logs; peers must hear its "
            "heartbeats (UDP 7946 between nodes, the same key from Secret ironlb-heartbeat)")


def check_announcer(ctx: Context) -> Link:
    """5: the announcing node and interface, and whether its speaker is alive."""
    if _no_endpoints(ctx):
        return Link(LinkId.ANNOUNCER, Mark.BLOCKED, BLOCKED_BY_ENDPOINTS)
    cond = ctx.condition()
    ranked = {ip: ctx.ranking(ip) for ip in ctx.ips}
    details = tuple(f"election order for {ip}: " + ", ".join(f"{n} ({_evidence(ctx, n)})" for n in order)
                    for ip, order in ranked.items())
    if cond is None:
        return Link(LinkId.ANNOUNCER, Mark.FAILED, "no speaker has reported on it (no ironlb.io/Announced condition)",
                    "are the speakers running? kubectl get pods -A -l app.kubernetes.io/component=speaker -o wide",
                    details)
    message = str(cond.get("message") or "")
    if cond.get("status") != "True":
        if parse(AnnounceReason, cond.get("reason")) is AnnounceReason.NO_ELIGIBLE_NODE:
            first = ctx.eligible[0] if ctx.eligible else "?"
            return Link(LinkId.ANNOUNCER, Mark.FAILED, f"speaker down: {', '.join(ctx.eligible)} may announce it, "
                        "but no speaker hears an eligible peer alive", _down_fix(first), (*details, message))
        return Link(LinkId.ANNOUNCER, Mark.FAILED, f"the speakers say: {message}",
                    "the speakers see something else than the API shows; check their logs", details)
    found = claims(message)
    lines = []
    for ip in ctx.ips:
        if ip not in found:
            return Link(LinkId.ANNOUNCER, Mark.FAILED, f"{ip} is missing from the speakers' condition ({message})",
                        "check the speakers' logs", details)
        node, ifaces = found[ip]
        if speaker_state(ctx, node) is SpeakerState.DOWN:
            return Link(LinkId.ANNOUNCER, Mark.FAILED, f"speaker down: {ip} is announced by {node}, but "
                        f"{_evidence(ctx, node)}", _down_fix(node), details)
        if node not in ctx.eligible:
            why = ctx.node_reasons.get(node)
            return Link(LinkId.ANNOUNCER, Mark.FAILED, f"{ip} is announced by {node}, which is not eligible "
                        f"({why.value if why else 'no such Node'})", f"the speakers lag the API; check {node}'s "
                        "speaker logs", details)
        expected = next((n for n in ranked[ip] if speaker_state(ctx, n) is not SpeakerState.DOWN), None)
        if expected != node:
            details += (f"{ip}: the election over Ready Nodes gives {expected}; the speakers do not hear it alive",)
        ctx.announcers[ip] = (node, ifaces)
        lines.append(f"{ip} on {node} ({'interface ' if ifaces != 'all interfaces' else ''}{ifaces}), "
                     f"{_evidence(ctx, node)}")
    return Link(LinkId.ANNOUNCER, Mark.OK, "; ".join(lines), details=details)


def _counter(ctx: Context, node: str, name: str, iface: str) -> float:
    return sum(s["value"] for s in ctx.samples(node, name) if (s.get("labels") or {}).get("interface") == iface)


def check_speaker_table(ctx: Context) -> Link:
    """6: the announcing speaker has the IP in its table, and what it has answered on that interface."""
    if _no_endpoints(ctx):
        return Link(LinkId.SPEAKER_TABLE, Mark.BLOCKED, BLOCKED_BY_ENDPOINTS)
    ok, unchecked, details = [], [], []
    for ip, (node, _) in ctx.announcers.items():
        scraped = ctx.speaker(node) or {}
        if "refused" in scraped:
            unchecked.append(f"{node}'s speaker refused doctor its metrics ({scraped['refused']}: see the findings)")
            continue
        if "samples" not in scraped:
            unchecked.append(f"{node}'s speaker metrics could not be read through the API server proxy"
                             + (f" ({scraped['error']})" if scraped.get("error") else ""))
            continue
        if "ironlb_speaker_announcing" not in (scraped.get("families") or ()):
            unchecked.append(f"{node}'s speaker does not report its table per IP (an older speaker)")
            continue
        ifaces = sorted((s.get("labels") or {}).get("interface", "") for s in
                        ctx.samples(node, "ironlb_speaker_announcing") if (s.get("labels") or {}).get("ip") == ip)
        if not ifaces:
            return Link(LinkId.SPEAKER_TABLE, Mark.FAILED, f"{node}'s speaker does not have {ip} in its table, "
                        "though its condition says it announces it",
                        f"see the logs of the speaker on {node} ('usable interfaces'); restart it if it is stuck")
        for iface in ifaces:
            details.append(f"{node}/{iface}: {_counter(ctx, node, 'ironlb_speaker_replies_total', iface):.0f} "
                           f"ARP/NDP replies, {_counter(ctx, node, 'ironlb_speaker_gratuitous_total', iface):.0f} "
                           "gratuitous announcements sent (counted per interface, not per IP)")
        ok.append(f"{ip} in {node}'s table on {', '.join(ifaces)}")
    if not ok:
        return Link(LinkId.SPEAKER_TABLE, Mark.NOT_CHECKED, "; ".join(unchecked) or "no announcing node")
    return Link(LinkId.SPEAKER_TABLE, Mark.OK, "; ".join(ok), details=tuple(details + unchecked))


def check_endpoints(ctx: Context) -> Link:
    """7: the Service has ready endpoints."""
    ready = ctx.ready_endpoints
    ns, selector = ctx.facts.get("namespace"), ",".join(f"{k}={v}" for k, v in (ctx.spec.get("selector") or {}).items())
    if ready:
        where = ", ".join(f"{n or '(no node)'}: {c}" for n, c in sorted(ready.items()))
        return Link(LinkId.ENDPOINTS, Mark.OK, f"{sum(ready.values())} ready ({where})")
    total = sum(len(sl.get("endpoints") or []) for sl in ctx.facts.get("slices") or [])
    if not selector and not total:
        return Link(LinkId.ENDPOINTS, Mark.FAILED, "no selector and no endpoints",
                    "give the Service a selector, or create its EndpointSlices")
    if not total:
        return Link(LinkId.ENDPOINTS, Mark.FAILED, f"no pod matches selector {selector}",
                    f"kubectl get pods -n {ns} -l {selector} --show-labels: fix the selector or the pods' labels")
    return Link(LinkId.ENDPOINTS, Mark.FAILED, f"0 of {total} endpoints ready",
                f"the pods are not Ready: kubectl get pods -n {ns} -l {selector}; kubectl describe pod (readiness "
                "probe, crash loop)")


def check_forwarding(ctx: Context) -> Link:
    """8: forwarding in place on the announcing node: IronLB's table in NodePort mode; kube-proxy's is not visible."""
    pool = ctx.state.pools.get(ctx.pool or "") or {}
    nodes = sorted({node for node, _ in ctx.announcers.values()})
    where = ", ".join(nodes) or "the announcing node"
    if (pool.get("spec") or {}).get("forwarding") != FORWARDING_NODE_PORT:
        return Link(LinkId.FORWARDING, Mark.NOT_CHECKED, f"kube-proxy's rules for {', '.join(ctx.ips)} on {where} "
                    "(doctor does not log in to nodes; the speaker joined only after kube-proxy's first sync)")
    for node in nodes:
        in_sync = ctx.samples(node, "ironlb_speaker_nftables_in_sync")
        if in_sync and not in_sync[0]["value"]:
            return Link(LinkId.FORWARDING, Mark.FAILED, f"{node}'s speaker could not apply table inet ironlb",
                        f"its logs show nft's error; the speaker needs NET_ADMIN ({SPEAKER_PODS.format(n=node)})")
    cond = ctx.condition(ConditionType.SERVICE_FORWARDING)
    if cond is None:
        return Link(LinkId.FORWARDING, Mark.NOT_CHECKED, f"pool {ctx.pool} forwards to NodePorts, but no speaker "
                    "has reported it yet (no ironlb.io/Forwarding condition)")
    if cond.get("status") != "True":
        fix = FORWARDING_FIXES.get(parse(ForwardingReason, cond.get("reason")), "see the speakers' logs")
        return Link(LinkId.FORWARDING, Mark.FAILED, str(cond.get("message")), fix)
    return Link(LinkId.FORWARDING, Mark.OK, f"table inet ironlb on {where}: {cond.get('message')}")
