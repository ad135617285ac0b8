"""The control plane's steering: from the announced VIPs, the mesh and the confirmed deaths to the kernel's table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable, Sequence

from ironlb.api.reasons import SteeringReason
from ironlb.speaker.control.forward.plan import forwarded
from ironlb.speaker.control.forward.programmer import NftablesProgrammer
from ironlb.speaker.control.steer import SteeringSettings
from ironlb.speaker.control.steer.confirm import DeathConfirmer
from ironlb.speaker.control.steer.conntrack import forget_flows
from ironlb.speaker.control.steer.nft import TABLE, chain_name, render
from ironlb.speaker.control.steer.plan import ServicePorts, Steer, SteeringPlan, plan
from ironlb.speaker.state.endpoints import SliceTargets
from ironlb.speaker.state.snapshot import ServiceInfo, Snapshot

Pairs = Sequence[tuple[ServiceInfo, str]]  # (Service, VIP) pairs this node announces, in Service key order


class Steerer:
    """Keeps table `inet ironlb_steer` equal to the steering of this node's announced VIPs."""

    def __init__(self, settings: SteeringSettings, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self.confirmer = DeathConfirmer(on_change, settings.probe_port, settings.probe_timeout)
        self.nftables = NftablesProgrammer(settings.nft, table=TABLE, on_result=self._applied)
        # Only a node seen alive can die: a node whose speaker never joined (not scheduled there, not
        # started yet) is not dead, and its endpoints are Kubernetes' business alone.
        self.seen_alive: set[str] = set()
        self.plan = SteeringPlan()
        # The last pass's plan, by Service: each announced one's reason, and the steers of those steered.
        self._reasons: dict[str, SteeringReason] = {}
        self._steered: dict[str, tuple[tuple[Steer, ...], frozenset[str], frozenset[str]]] = {}
        self._read: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())  # (confirmed dead, held)
        self.standing = False  # the table has steered since the speaker started: it stays, emptied (see nft.render)
        self.on_change = on_change
        self._held_until: dict[str, float] = {}  # Service -> when its hand-over back to kube-proxy ends
        self._timer: asyncio.TimerHandle | None = None
        # Dead pods' addresses whose flows are forgotten (or will be, once the table that steers around them is in).
        self._forgotten: set[str] = set()
        self._to_forget: tuple[str, frozenset[str]] | None = None  # (the script that must be in first, addresses)
        self._forgetting: set[asyncio.Task[None]] = set()
        # Steers that may be in the kernel's table: those of the script applied last, and of any given since.
        self._in_table: dict[str, Steer] = {}
        self._latest: tuple[str, dict[str, Steer]] = ("", {})  # the script given last, and its steers

    def dead(self, snapshot: Snapshot) -> frozenset[str]:
        """Nodes the mesh saw alive and now reports dead (a deleted Node is forgotten)."""
        self.seen_alive = (self.seen_alive | snapshot.alive) & set(snapshot.nodes)
        return frozenset(self.seen_alive - snapshot.alive)

    def update(self, snapshot: Snapshot, pairs_of: Callable[[Collection[str] | None], Pairs],
               ports_of: Callable[[str], ServicePorts], targets_of: Callable[[str], list[SliceTargets]],
               keys: Collection[str] | None = None) -> SteeringPlan:
        """Steer the announced VIPs around the dead nodes confirmed so far; probe the ones still suspected.

        PAIRS_OF(KEYS) gives the announced (Service, VIP) pairs of the Services KEYS (None: of every Service);
        only those are planned again, unless what every Service's steering reads (the confirmed deaths, the
        hand-overs) changed since the last pass."""
        if not self.settings.enabled:
            self._replan(pairs_of, keys, lambda pairs: SteeringPlan(
                (), {svc.key: SteeringReason.DISABLED for svc, _ in pairs}))
            return self.plan
        dead = self.dead(snapshot)
        self.confirmer.watch({n: snapshot.nodes[n].addresses[0] for n in dead if snapshot.nodes[n].addresses})
        confirmed, held = self.confirmer.confirmed & dead, self._held()
        if (confirmed, held) != self._read:
            self._read, keys = (confirmed, held), None
        self._replan(pairs_of, keys, lambda pairs: plan(pairs, ports_of, targets_of, confirmed,
                                                        lambda svc: forwarded(svc, snapshot), held))
        self._hold(self.plan)
        self.standing = self.standing or bool(self.plan.steers)
        script = self._render(self.plan)
        self.nftables.update(script)
        self._forget_after(script, self.plan.dead_addresses)
        return self.plan

    def _replan(self, pairs_of: Callable[[Collection[str] | None], Pairs], keys: Collection[str] | None,
                planner: Callable[[Pairs], SteeringPlan]) -> None:
        """Plan the Services KEYS (None: all) again, keep the others' plans, and put the whole together."""
        if keys is None:
            self._reasons.clear()
            self._steered.clear()
        for key in keys or ():
            self._reasons.pop(key, None)
            self._steered.pop(key, None)
        part = planner(pairs_of(keys))
        self._reasons.update(part.reasons)
        for key, skipped in part.skipped.items():
            self._steered[key] = (tuple(s for s in part.steers if s.service == key), skipped,
                                  part.dead_of.get(key, frozenset()))
        steers = tuple(s for key in sorted(self._steered) for s in self._steered[key][0])
        skipped = {key: held[1] for key, held in self._steered.items()}
        dead = frozenset().union(*(held[2] for held in self._steered.values()))
        self.plan = SteeringPlan(steers, self._reasons, skipped, dead)

    def _render(self, steering: SteeringPlan) -> str:
        """STEERING's script, removing the steers a script given before may have left in the table."""
        steers = {chain_name(steer): steer for steer in steering.steers}
        script = render(steering, self.standing, stale=[s for name, s in self._in_table.items() if name not in steers])
        self._in_table.update(steers)
        self._latest = (script, steers)
        return script

    def _forget_after(self, script: str, dead: frozenset[str]) -> None:
        """Forget the flows to newly dead addresses once SCRIPT (which steers around them) is applied."""
        self._forgotten &= dead  # an address alive again is forgotten afresh if it dies again
        new = dead - self._forgotten
        self._forgotten |= new
        # Still waiting: the latest script is the one to wait for (the programmer applies only the latest).
        pending = (self._to_forget[1] & dead if self._to_forget else frozenset()) | new
        self._to_forget = (script, pending) if pending else None
        if pending and self.nftables.applied == script:
            self._applied(True, "")

    def _applied(self, ok: bool, _: str) -> None:
        if ok and self.nftables.applied == self._latest[0]:
            self._in_table = dict(self._latest[1])
        if not ok or self._to_forget is None or self.nftables.applied != self._to_forget[0]:
            return
        addresses, self._to_forget = self._to_forget[1], None
        task = asyncio.get_running_loop().create_task(self._forget(addresses))
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def _forget(self, addresses: frozenset[str]) -> None:
        for address in sorted(addresses):
            await forget_flows(address, self.settings.conntrack)

    def _held(self) -> frozenset[str]:
        now = time.monotonic()
        self._held_until = {k: t for k, t in self._held_until.items() if t > now}
        return frozenset(self._held_until)

    def _hold(self, steering: SteeringPlan) -> None:
        """Services steered around a dead endpoint now stay steered for the hand-over; a pass at its end ends it."""
        until = time.monotonic() + self.settings.handover_s
        held = [key for key, skipped in steering.skipped.items() if skipped]
        self._held_until.update(dict.fromkeys(held, until))
        if held:  # one timer, at the last hand-over's end
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(self.settings.handover_s + 0.05, self.on_change)

    async def run(self) -> None:
        """Apply the table whenever it changes (the programmer removes it on the way out)."""
        await self.nftables.run()

    async def close(self) -> None:
        """Stop probing."""
        if self._timer is not None:
            self._timer.cancel()
        await asyncio.gather(*self._forgetting, return_exceptions=True)
        await self.confirmer.close()


def pairs_from(snapshot: Snapshot, announced: Iterable[str]) -> Callable[[Collection[str] | None], Pairs]:
    """A `Steerer.update` PAIRS_OF over SNAPSHOT's Services and the ANNOUNCED VIPs (a scan of them all)."""
    owned = set(announced)

    def pairs_of(keys: Collection[str] | None) -> Pairs:
        wanted = sorted(snapshot.services) if keys is None else sorted(k for k in keys if k in snapshot.services)
        return [(svc, ip) for svc in (snapshot.services[k] for k in wanted) for ip in svc.ips if ip in owned]
    return pairs_of
