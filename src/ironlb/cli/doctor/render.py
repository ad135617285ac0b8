"""`ironlb doctor`'s output: a checklist a person reads at a glance, or JSON for scripts."""

from __future__ import annotations

import json

from ironlb.cli.doctor.model import Mark, Report
from ironlb.core.text import printable

DASH = "\u2013"  # an en dash: not checked, blocked, or not reached
SYMBOLS = {Mark.OK: "\u2713", Mark.FAILED: "\u2717", Mark.NOT_CHECKED: DASH, Mark.BLOCKED: DASH, Mark.NOT_REACHED: DASH}


def human(report: Report, verbose: bool = False) -> str:
    """The checklist: one line per link; the broken one explained, with its fix (terminal-safe)."""
    width = max(len(link.id.title) for link in report.links)
    ips = f" ({', '.join(report.ips)})" if report.ips else ""
    out = [f"Service {report.service}{ips}"]
    for link in report.links:
        prefix = "not checked: " if link.mark is Mark.NOT_CHECKED else ""
        out.append(f" {SYMBOLS[link.mark]} {link.id.value} {link.id.title.ljust(width)}  {prefix}{link.summary}")
        if verbose or link.mark is Mark.FAILED:
            out += [f"       {line}" for line in link.details]
        if link.fix:
            out.append(f"       fix: {link.fix}")
    if report.bgp:
        out.append(" BGP")
        bgp_width = max(len(link.id.title) for link in report.bgp)
    for link in report.bgp:
        reason = f" [{link.reason.value}]" if link.reason is not None and link.mark is not Mark.OK else ""
        out.append(f" {SYMBOLS[link.mark]} B{link.id.value} {link.id.title.ljust(bgp_width)}  {link.summary}{reason}")
        if verbose or link.mark is Mark.FAILED:
            out += [f"       {line}" for line in link.details]
        if link.fix:
            out.append(f"       fix: {link.fix}")
    for finding in report.findings:
        out.append(f" ! {finding.summary}")
        if finding.fix:
            out.append(f"       fix: {finding.fix}")
    failed, bgp_failed = report.failed, report.bgp_failed
    out.append("")
    if failed is not None:
        out.append(f"broken at link {failed.id.value} ({failed.id.title}); exit code {report.exit_code}")
    elif bgp_failed is not None:
        out.append(f"broken at BGP link {bgp_failed.id.value} ({bgp_failed.id.title}); exit code {report.exit_code}")
    else:
        out.append("healthy")
    # Summaries and details quote Events and conditions, which quote user text: no escape reaches the terminal.
    return "\n".join(printable(line) for line in out)


def as_json(report: Report) -> str:
    """The report as one JSON object."""
    return json.dumps(report.as_json(), indent=2)
