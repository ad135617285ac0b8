"""What `ironlb doctor` reports: the links of the chain, each with a mark, and the exit code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

EXIT_HEALTHY = 0
EXIT_ERROR = 1  # the API could not be read (argparse uses 2 for usage errors)
EXIT_BASE = 10  # a broken link N exits with 10 + N


class Mark(Enum):
    """The outcome of one link."""

    OK = "ok"
    FAILED = "failed"
    NOT_CHECKED = "not-checked"  # doctor cannot see it (said why); the walk goes on
    BLOCKED = "blocked"  # cannot hold until a later link is fixed (the speakers wait on it)
    NOT_REACHED = "not-reached"  # after the first broken link


class TokenOutcome(Enum):
    """Doctor's token for the speakers' /metrics (the chart's <release>-doctor ServiceAccount), or why it has none."""

    ISSUED = "issued"
    NOT_NEEDED = "not-needed"  # no speaker to read
    NO_SERVICE_ACCOUNT = "no-service-account"  # none labelled app.kubernetes.io/component=doctor (or it went)
    CANNOT_LIST = "cannot-list-service-accounts"  # the user may not list ServiceAccounts
    FORBIDDEN = "token-forbidden"  # the user may not create serviceaccounts/token for it
    FAILED = "token-failed"  # the API server did not answer the request


class FindingReason(Enum):
    """Why a finding beside the chain was made (JSON findings[].reason: scripts and tests read this)."""

    METRICS_NEED_TOKEN = "metrics-need-token"  # speakers answered but refused doctor, which had no token
    METRICS_TOKEN_REFUSED = "metrics-token-refused"  # speakers answered but refused the token doctor was given


@dataclass(frozen=True)
class Finding:
    """Something doctor could not do, and how to let it: said apart from the chain's links."""

    reason: FindingReason
    summary: str
    fix: str = ""
    token: TokenOutcome | None = None

    def as_json(self) -> dict[str, Any]:
        """The finding for `-o json`."""
        return {"reason": self.reason.value, "summary": self.summary, "fix": self.fix or None,
                "token": self.token.value if self.token else None}


class LinkId(Enum):
    """The links of the chain, in the order they are walked (value = number)."""

    CLASS = 1
    ALLOCATION = 2
    ADVERTISEMENT = 3
    ELIGIBLE_NODES = 4
    ANNOUNCER = 5
    SPEAKER_TABLE = 6
    ENDPOINTS = 7
    FORWARDING = 8

    @property
    def title(self) -> str:
        """The link's name as a person reads it."""
        return TITLES[self]

    @property
    def exit_code(self) -> int:
        """The exit code when this link is the first broken one."""
        return EXIT_BASE + self.value


TITLES = {
    LinkId.CLASS: "type and class",
    LinkId.ALLOCATION: "allocation",
    LinkId.ADVERTISEMENT: "L2Advertisement",
    LinkId.ELIGIBLE_NODES: "eligible nodes",
    LinkId.ANNOUNCER: "announcing node",
    LinkId.SPEAKER_TABLE: "speaker's table",
    LinkId.ENDPOINTS: "ready endpoints",
    LinkId.FORWARDING: "forwarding",
}


@dataclass(frozen=True)
class Link:
    """One link's verdict: a one-line summary, details, and the fix when it is broken."""

    id: LinkId
    mark: Mark
    summary: str
    fix: str = ""
    details: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The link for `-o json`."""
        return {"link": self.id.value, "name": self.id.name.lower().replace("_", "-"), "title": self.id.title,
                "status": self.mark.value, "summary": self.summary, "fix": self.fix or None,
                "details": list(self.details)}


class BgpLinkId(Enum):
    """BGP mode's links, walked after the chain for a Service its BGP objects announce (value = number)."""

    ADVERTISEMENT = 1
    NODES = 2
    SESSIONS = 3
    SENT = 4

    @property
    def title(self) -> str:
        """The link's name as a person reads it."""
        return BGP_TITLES[self]

    @property
    def exit_code(self) -> int:
        """The exit code when this link is the first broken one (the chain itself holding)."""
        return EXIT_BGP_BASE + self.value


EXIT_BGP_BASE = 20  # a broken BGP link N exits with 20 + N
BGP_TITLES = {
    BgpLinkId.ADVERTISEMENT: "BGPAdvertisement",
    BgpLinkId.NODES: "BGP nodes selected",
    BgpLinkId.SESSIONS: "sessions Established",
    BgpLinkId.SENT: "prefix sent",
}


@dataclass(frozen=True)
class BgpLink:
    """One BGP link's verdict, with the reason it stands on (an ironlb.api enum: scripts and tests read it)."""

    id: BgpLinkId
    mark: Mark
    reason: Enum | None
    summary: str
    fix: str = ""
    details: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The link for `-o json`."""
        return {"link": self.id.value, "name": self.id.name.lower(), "title": self.id.title,
                "status": self.mark.value, "reason": self.reason.value if self.reason else None,
                "summary": self.summary, "fix": self.fix or None, "details": list(self.details)}


@dataclass(frozen=True)
class Report:
    """The whole walk for one Service."""

    service: str
    ips: tuple[str, ...]
    links: tuple[Link, ...]
    findings: tuple[Finding, ...] = ()
    bgp: tuple[BgpLink, ...] = ()  # BGP mode's links, when BGP objects exist

    @property
    def failed(self) -> Link | None:
        """The first broken link (None when healthy)."""
        return next((link for link in self.links if link.mark is Mark.FAILED), None)

    @property
    def bgp_failed(self) -> BgpLink | None:
        """The first broken BGP link (None when BGP's links hold, or there are none)."""
        return next((link for link in self.bgp if link.mark is Mark.FAILED), None)

    @property
    def exit_code(self) -> int:
        """0 when healthy, else 10 + the number of the first broken link (20 + N: BGP link N, the chain holding)."""
        failed, bgp = self.failed, self.bgp_failed
        if failed is not None:
            return failed.id.exit_code
        return EXIT_HEALTHY if bgp is None else bgp.id.exit_code

    @property
    def not_checked(self) -> tuple[str, ...]:
        """What doctor could not check, one line each."""
        return tuple(f"{link.id.title}: {link.summary}" for link in self.links if link.mark is Mark.NOT_CHECKED)

    def as_json(self) -> dict[str, Any]:
        """The report for `-o json`."""
        failed = self.failed
        return {"service": self.service, "ips": list(self.ips), "healthy": failed is None and not self.bgp_failed,
                "failedLink": None if failed is None else failed.id.value, "exitCode": self.exit_code,
                "links": [link.as_json() for link in self.links], "notChecked": list(self.not_checked),
                "findings": [f.as_json() for f in self.findings], "bgpLinks": [link.as_json() for link in self.bgp]}


EXIT_CODES_HELP = "exit codes:\n  0   healthy\n  1   the API could not be read\n" + "".join(
    f"  {link.exit_code:<3} link {link.value} broken: {link.title}\n" for link in LinkId) + "".join(
    f"  {link.exit_code:<3} BGP link {link.value} broken: {link.title}\n" for link in BgpLinkId)
