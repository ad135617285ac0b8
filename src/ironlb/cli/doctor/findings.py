"""What doctor could not do beside the chain, and how to let it (pure): speakers that refused their metrics."""

from __future__ import annotations

from ironlb.cli.doctor.context import Context
from ironlb.cli.doctor.model import Finding, FindingReason, TokenOutcome
from ironlb.common.httpauth import Access

CHART_SA = "<release>-doctor"
WHY_NO_TOKEN = {
    TokenOutcome.NOT_NEEDED: "it asked for none",
    TokenOutcome.NO_SERVICE_ACCOUNT: "no ServiceAccount labelled app.kubernetes.io/component=doctor "
                                     f"(the chart's {CHART_SA}) was found",
    TokenOutcome.CANNOT_LIST: "you may not list ServiceAccounts, so it cannot find IronLB's doctor ServiceAccount",
    TokenOutcome.FORBIDDEN: "you may not create a token for {sa}",
    TokenOutcome.FAILED: "the token request for {sa} failed",
}
FIX_NO_TOKEN = {
    TokenOutcome.NOT_NEEDED: "run doctor again",
    TokenOutcome.NO_SERVICE_ACCOUNT: f"helm upgrade with --set metrics.doctor=true: it creates {CHART_SA}, bound to "
                                     "<release>-metrics-reader and nothing else",
    TokenOutcome.CANNOT_LIST: "grant list on serviceaccounts: kubectl create clusterrole ironlb-doctor-find "
                              "--verb=list --resource=serviceaccounts; kubectl create clusterrolebinding "
                              "ironlb-doctor-find --clusterrole=ironlb-doctor-find --user=YOU",
    TokenOutcome.FORBIDDEN: "grant create on serviceaccounts/token for {sa}: kubectl create role {name}-token -n {ns} "
                            "--verb=create --resource=serviceaccounts/token --resource-name={name}; kubectl create "
                            "rolebinding {name}-token -n {ns} --role={name}-token --user=YOU",
    TokenOutcome.FAILED: "run doctor again; if it persists, check the API server",
}
FIX_REFUSED = {
    Access.FORBIDDEN: "bind {sa} to the <release>-metrics-reader ClusterRole again (helm upgrade restores the binding)",
    Access.UNAUTHENTICATED: "the speakers' API server does not know the token: are they on this cluster? check "
                            "their logs",
    Access.NO_TOKEN: "the token did not reach the speakers: a proxy between the API server and the nodes drops "
                     "the X-Ironlb-Authorization header",
    Access.UNAVAILABLE: "the speakers cannot ask the API server to review tokens now (503): check their logs and "
                        "retry",
}


def metrics_findings(ctx: Context) -> tuple[Finding, ...]:
    """A finding when speakers answered but refused doctor their metrics: why doctor had no usable token, the fix."""
    speakers = ctx.facts.get("speakers") or {}
    refused = {node: str(s["refused"]) for node, s in sorted(speakers.items()) if "refused" in s}
    if not refused:
        return ()
    fact = ctx.facts.get("metricsToken") or {}
    try:
        outcome = TokenOutcome(fact.get("outcome"))
    except ValueError:
        outcome = TokenOutcome.FAILED
    sa = str(fact.get("serviceAccount") or CHART_SA)
    ns, _, name = sa.rpartition("/")
    names = {"sa": sa, "ns": ns or "<namespace>", "name": name}
    error = f" ({fact['error']})" if fact.get("error") else ""
    who = ", ".join(f"{node}: {why}" for node, why in refused.items())
    if outcome is not TokenOutcome.ISSUED:
        return (Finding(FindingReason.METRICS_NEED_TOKEN, f"speakers' metrics need a token ({who}), and doctor has "
                        f"none: {WHY_NO_TOKEN[outcome].format(**names)}{error}; their liveness is judged from what "
                        "they answered, the rest from conditions and Events", FIX_NO_TOKEN[outcome].format(**names),
                        outcome),)
    first = Access(next(iter(refused.values())))
    return (Finding(FindingReason.METRICS_TOKEN_REFUSED, f"speakers refused doctor's token for {sa} ({who})",
                    FIX_REFUSED.get(first, "check the speakers' logs").format(**names), outcome),)
