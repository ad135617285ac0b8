"""Self-fencing: when a speaker stops answering on its own, and when it may answer again. Pure.

A speaker that hears none of its peers is either the last survivor (they failed) or the isolated
one (its links failed). The two look the same from the heartbeats; the API tells them apart, from
the peers' presence (speaker.presence: the kubelet renews each node's Lease, the speaker Pod shows whether
its speaker runs, and a condition each speaker sets on its own Pod says whether it hears peers):

- every announce interface lost carrier: it cannot be reached there, so it tells its peers
  (FENCED heartbeats, over whatever link still works) and answers nowhere;
- the API is unreachable too: it is the one cut off, or the last survivor of a failure that also took the
  API (three nodes that also run the control plane: two down, etcd has no quorum). What it does is a
  choice, ApiLossPolicy: ANSWER (the default) keeps its IPs, FENCE stops answering. A node cut off from
  both its peers and the API is most often cut off from its clients too, so its answers reach nobody,
  while the survivor going dark takes every IP down. A node that already fenced on evidence that the
  others live on (below) stays fenced when the API goes too;
- a peer whose speaker runs had its node Lease renewed after the silence began, and that peer hears
  others: a group lives on without this node, so this node is the isolated one and stops answering;
- peers renewed, but every one of them hears nobody either (each node alone, all reaching the
  API): the one with the lowest name keeps answering, the others stop, so one node answers;
- no peer renewed: they are dead, and this node keeps its IPs (the last survivor of a real
  failure never goes dark).

No clock is compared between nodes: "renewed" means the value changed between two of our own
probes. A peer whose speaker stops running (it leaves the evidence) loses what it proved at once.
A node that fenced itself answers again once it hears a peer again (then through the join gate:
kube-proxy synced, peers hear it before it counts itself), or once the API has shown no renewal
by any peer for PROOF_TTL_S (the peers really died while it was fenced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

SILENCE_GRACE_S = 1.0   # silence shorter than this is not judged (a peer's heartbeat timeout is 0.4 s)
PROOF_TTL_S = 25.0      # a renewal this recent proves a peer alive (over two kubelet Lease renewals)


class FenceDecision(Enum):
    """Whether this node answers for its IPs now, and why."""

    ANSWER = "answer"                          # a peer is heard
    NO_PEERS_EXPECTED = "no-peers-expected"    # no other speaker was ever heard: nothing to be cut off from
    SILENCE_GRACE = "silence-grace"            # silent, too briefly (or not yet probed) to judge
    PEERS_DEAD = "peers-dead"                  # silent, the API answers, no peer proved alive: keep the IPs
    ANSWER_API_UNREACHABLE = "answer-api-unreachable"  # silent, no API, ApiLossPolicy.ANSWER: keep the IPs
    ANSWER_TIE_BREAK = "answer-tie-break"      # every live peer is alone too: the lowest name answers
    FENCE_NO_CARRIER = "fence-no-carrier"
    FENCE_API_UNREACHABLE = "fence-api-unreachable"
    FENCE_PEERS_ALIVE = "fence-peers-alive"
    FENCE_TIE_BREAK = "fence-tie-break"            # every live peer is alone too, and one has a lower name
    FENCE_AWAITING_PROOF = "fence-awaiting-proof"  # fenced and still silent: not yet shown that the peers died


FENCING = frozenset({FenceDecision.FENCE_NO_CARRIER, FenceDecision.FENCE_API_UNREACHABLE,
                     FenceDecision.FENCE_PEERS_ALIVE, FenceDecision.FENCE_TIE_BREAK,
                     FenceDecision.FENCE_AWAITING_PROOF})


class ApiLossPolicy(Enum):
    """What a speaker that hears no peer does when the API cannot be reached either."""

    ANSWER = "answer"  # it may be the last survivor: keep answering
    FENCE = "fence"    # it may be the one cut off: stop answering


class ApiProbe(Enum):
    """What one look at the API came to."""

    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Evidence:
    """One probe: the API's state, and each peer's presence as (renewal token, peers it hears)."""

    api: ApiProbe
    presence: Mapping[str, tuple[str, int]] = field(default_factory=dict)


@dataclass
class Fence:
    """The fencing state machine; times are seconds from one monotonic clock, passed in."""

    me: str = ""
    on_api_loss: ApiLossPolicy = ApiLossPolicy.ANSWER
    grace: float = SILENCE_GRACE_S
    proof_ttl: float = PROOF_TTL_S
    silent_since: float | None = None
    last: FenceDecision = FenceDecision.NO_PEERS_EXPECTED
    seen: dict[str, str] | None = None    # renewal tokens at the last reachable probe of this silence
    proofs: dict[str, tuple[float, int]] = field(default_factory=dict)  # peer -> (when it renewed, heard)
    reachable_since: float | None = None  # since when the API has answered, in this silence

    def wants_probe(self, now: float) -> bool:
        """Is an API probe useful now (silent past the grace period)?"""
        return self.silent_since is not None and now - self.silent_since >= self.grace

    def observe(self, now: float, known_peers: int, heard: int, carrier: bool,
                evidence: Evidence | None = None) -> FenceDecision:
        """Decide from KNOWN_PEERS (speakers heard at least once), how many are HEARD now, CARRIER
        (some announce interface has it) and the latest API EVIDENCE (None: no probe this turn)."""
        decision = self._decide(now, known_peers, heard, carrier, evidence)
        self.last = decision
        return decision

    @property
    def fenced(self) -> bool:
        """Is this node fenced (by the last decision)?"""
        return self.last in FENCING

    def _decide(self, now: float, known_peers: int, heard: int, carrier: bool,
                evidence: Evidence | None) -> FenceDecision:
        if not carrier:
            return FenceDecision.FENCE_NO_CARRIER
        if heard > 0 or known_peers == 0:
            self.silent_since, self.seen, self.reachable_since = None, None, None
            self.proofs.clear()
            return FenceDecision.ANSWER if heard else FenceDecision.NO_PEERS_EXPECTED
        if self.silent_since is None:
            self.silent_since = now
        if evidence is not None:
            self._take(now, evidence)
        if now - self.silent_since < self.grace:  # too soon to judge: stay as we are
            return self.last if self.fenced else FenceDecision.SILENCE_GRACE
        if self.reachable_since is None:
            if evidence is not None and evidence.api is ApiProbe.UNREACHABLE:
                if self.on_api_loss is ApiLossPolicy.FENCE:
                    return FenceDecision.FENCE_API_UNREACHABLE
                return self.last if self.fenced else FenceDecision.ANSWER_API_UNREACHABLE  # a fence's evidence stands
            if self.fenced or self.last is FenceDecision.ANSWER_API_UNREACHABLE:
                return self.last  # no probe this turn: as the last one said
            return FenceDecision.SILENCE_GRACE  # no probe has answered yet
        alive = {p: hears for p, (when, hears) in self.proofs.items() if now - when < self.proof_ttl}
        if any(hears > 0 for hears in alive.values()):
            return FenceDecision.FENCE_PEERS_ALIVE
        if alive:  # everyone is alone: one answers, by name, so no two do
            return FenceDecision.ANSWER_TIE_BREAK if self.me < min(alive) else FenceDecision.FENCE_TIE_BREAK
        if self.fenced and now - self.reachable_since < self.proof_ttl:
            # Fenced while silent: "no renewal" counts only after the API has answered a whole proof period.
            return FenceDecision.FENCE_AWAITING_PROOF
        return FenceDecision.PEERS_DEAD

    def _take(self, now: float, evidence: Evidence) -> None:
        if evidence.api is ApiProbe.UNREACHABLE:
            self.reachable_since = None
            return
        if self.reachable_since is None:
            self.reachable_since = now
        tokens = {p: token for p, (token, _) in evidence.presence.items() if p != self.me}
        # A peer missing from the evidence has no running speaker now: what it proved before is void.
        self.proofs = {p: proof for p, proof in self.proofs.items() if p in tokens}
        if self.seen is not None:
            for peer, token in tokens.items():
                if self.seen.get(peer) != token:
                    self.proofs[peer] = (now, evidence.presence[peer][1])
        self.seen = tokens
