"""The allocator: lowest free address of the best pool, sharing, dual-stack, restore on restart.

Free addresses live in interval sets (one per pool and family), so an allocation costs
O(log intervals), not a walk over addresses; IPv6 /64 pools are fine. An address covered by
two overlapping pools is taken from both pools' free sets at once, so it is never handed out
twice. Everything here is synchronous and deterministic: the same history gives the same IPs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ironlb.core.addresses import IPV4, IPV6, int_to_ip, ip_to_int
from ironlb.core.holds import Hold, Holds
from ironlb.core.pool_state import IP, PoolState, candidate_pools, fresh_state, release_free, take_free
from ironlb.core.pools import Pool
from ironlb.core.requested import requested_ips
from ironlb.core.requests import (
    OK_REASONS,
    Allocation,
    AllocationReason,
    ServiceRequest,
    fail,
    family_plan,
    refusal,
)
from ironlb.core.sharing import Sharing, SharingFacts, can_share

__all__ = ["OK_REASONS", "Allocation", "AllocationReason", "Allocator", "ServiceRequest", "refusal"]

@dataclass(slots=True)
class _Held:
    pool: str
    ips: tuple[IP, ...]
    facts: SharingFacts


class Allocator:
    """Holds pools and assignments; all decisions are synchronous and deterministic.

    With a REUSE_DELAY, an IP a Service gives up is held for that Service's namespace for that many
    seconds of CLOCK (see holds.py): other namespaces can neither request it nor get it automatically.
    """

    def __init__(self, reuse_delay: float = 0.0, clock: Callable[[], float] = lambda: 0.0) -> None:
        self.reuse_delay, self.clock = reuse_delay, clock
        self.holds = Holds()
        self._pools: dict[str, PoolState] = {}
        self._holders: dict[IP, dict[str, SharingFacts]] = {}
        self._ip_pool: dict[IP, str] = {}
        self._by_service: dict[str, _Held] = {}
        self._by_sharing_key: dict[str, set[IP]] = {}

    # ---- configuration ------------------------------------------------------------------------

    def set_pools(self, pools: Sequence[Pool]) -> list[str]:
        """Replace the pools; release and return the keys of Services no longer covered."""
        states: dict[str, PoolState] = {}
        for pool in sorted(pools, key=lambda p: p.name):
            states[pool.name] = fresh_state(pool)
        self._pools = states
        uncovered = sorted(key for key, held in self._by_service.items()
                           if held.pool not in states or not all(states[held.pool].usable(ip) for ip in held.ips))
        for key in uncovered:
            self._drop(key, hold=False)
        for state in states.values():  # count from scratch: the drops above touched the new states
            state.assigned = {IPV4: 0, IPV6: 0}
        for ip, pool_name in self._ip_pool.items():
            take_free(self._pools.values(), ip)
            states[pool_name].assigned[ip[0]] += 1
        for held in self.holds:  # a hold outlives a pool edit only where some pool still covers its IP
            if any(state.usable(held.ip) for state in states.values()):
                take_free(self._pools.values(), held.ip)
            else:
                self.holds.pop(held.ip)
        return uncovered

    def pool_names(self) -> list[str]:
        """Names of the configured pools."""
        return list(self._pools)

    # ---- queries -----------------------------------------------------------------------------

    def pool_stats(self, name: str) -> dict[str, tuple[int, int, int]]:
        """family -> (size, assigned, available) for a pool (big ints for IPv6)."""
        state = self._pools[name]
        return {f: (state.size[f], state.assigned[f], state.free[f].count) for f in (IPV4, IPV6)}

    def assignment(self, key: str) -> tuple[tuple[str, ...], str] | None:
        """(ips, pool) held by a Service, or None."""
        held = self._by_service.get(key)
        return (tuple(int_to_ip(f, v) for f, v in held.ips), held.pool) if held else None

    def holders(self, ip: str) -> frozenset[str]:
        """Keys of the Services the allocator grants IP to (more than one only when shared)."""
        try:
            parsed = ip_to_int(ip)
        except ValueError:
            return frozenset()
        return frozenset(self._holders.get(parsed, ()))

    def assignments(self) -> dict[str, tuple[tuple[str, ...], str]]:
        """Every Service's (ips, pool)."""
        return {k: self.assignment(k) for k in self._by_service}  # type: ignore[misc]

    def holds_in(self, pool: str) -> list[Hold]:
        """The holds on IPs last held from POOL, lowest IP first."""
        return sorted((h for h in self.holds if h.pool == pool), key=lambda h: h.ip)

    # ---- holds -------------------------------------------------------------------------------

    def hold(self, ip: str, namespace: str, key: str, pool: str, until: float) -> bool:
        """Re-register a hold recorded before a restart; False if IP is taken, outside every pool, or past."""
        try:
            parsed = ip_to_int(ip)
        except ValueError:
            return False
        if until <= self.clock() or parsed in self._holders or self.holds.get(parsed) \
                or not any(state.usable(parsed) for state in self._pools.values()):
            return False
        take_free(self._pools.values(), parsed)
        self.holds.add(Hold(parsed, namespace, key, pool, until))
        return True

    def expire(self) -> list[Hold]:
        """End the holds whose time is up: their IPs are free for anyone again. Return them."""
        ended = self.holds.ended(self.clock())
        for held in ended:
            release_free(self._pools.values(), held.ip)
        return ended

    # ---- changes -----------------------------------------------------------------------------

    def release(self, key: str) -> list[str]:
        """Release everything a Service holds; return the IPs released."""
        held = self._by_service.get(key)
        if not held:
            return []
        self._drop(key, hold=True)
        return [int_to_ip(f, v) for f, v in held.ips]

    def restore(self, req: ServiceRequest, ips: Sequence[str], pool_hint: str | None = None) -> Allocation:
        """Re-register an assignment that already exists in the cluster (operator restart)."""
        try:
            parsed = [ip_to_int(ip) for ip in ips]
        except ValueError:
            return fail(AllocationReason.INVALID_REQUEST, f"recorded IPs {', '.join(ips)} are not IP addresses")
        if not parsed or len({f for f, _ in parsed}) != len(parsed):
            return fail(AllocationReason.INVALID_REQUEST,
                         f"recorded IPs {', '.join(ips)} are not one address per family")
        candidates = ([pool_hint] if pool_hint in self._pools else []) + list(self._pools)
        covering = [n for n in candidates if all(self._pools[n].usable(ip) for ip in parsed)]
        if not covering:
            return fail(AllocationReason.REQUESTED_IP_NOT_IN_POOL, f"{', '.join(ips)} is no longer in any pool")
        # A pool's serviceAllocation is a boundary: a restart does not let a Service keep an IP
        # from a pool that no longer serves it (its namespace or labels changed meanwhile).
        pool = next((n for n in covering if refusal(self._pools[n].pool, req) is None), None)
        if pool is None:
            return fail(AllocationReason.POOL_NOT_ALLOWED, refusal(self._pools[covering[0]].pool, req) or "")
        facts = req.facts()
        for ip in parsed:
            verdict = self._compatible(ip, facts, joining=False)
            if verdict is not Sharing.COMPATIBLE:
                return fail(AllocationReason.SHARING_INCOMPATIBLE,
                             f"{int_to_ip(*ip)} is held by another Service ({verdict.value})")
        self._commit(req.key, facts, pool, parsed)
        return Allocation(tuple(ips), pool, AllocationReason.RESTORED)

    def assign(self, req: ServiceRequest) -> Allocation:
        """Give the Service IPs (or confirm the ones it has); the old IPs go only if new ones are granted."""
        facts = req.facts()
        if req.requested_ips:
            return self._assign_requested(req, facts)
        held = self._by_service.get(req.key)
        candidates = candidate_pools(self._pools, req)
        if isinstance(candidates, Allocation):
            return candidates
        required, optional = family_plan(req)
        if held and self._still_fits(held, req, facts, [c.pool.name for c in candidates], required):
            if held.facts != facts:  # same IPs, new ports/policy/selector: later sharing checks must see them
                self._commit(req.key, facts, held.pool, held.ips)
            return Allocation(self._strs(held.ips), held.pool, AllocationReason.UNCHANGED)
        # PreferDualStack: both families from the first pool that can give both, else one family.
        for plan in ([(required + optional, [])] if optional else []) + [(required, optional)]:
            for state in candidates:
                picked = self._pick_all(state, *plan, facts)
                if picked is not None:
                    self._commit(req.key, facts, state.pool.name, picked)
                    return Allocation(self._strs(picked), state.pool.name, AllocationReason.ASSIGNED,
                                      f"assigned {', '.join(self._strs(picked))} from pool {state.pool.name}")
        names = ", ".join(c.pool.name for c in candidates)
        if not any(all(c.size[f] for f in required) for c in candidates):
            return fail(AllocationReason.FAMILY_UNAVAILABLE,
                         f"no candidate pool ({names}) has {' and '.join(required)} addresses")
        return fail(AllocationReason.POOL_EXHAUSTED, f"no free {'+'.join(required)} address in pool(s) {names}")

    # ---- internals ---------------------------------------------------------------------------

    @staticmethod
    def _strs(ips: Iterable[IP]) -> tuple[str, ...]:
        return tuple(int_to_ip(f, v) for f, v in ips)

    def _compatible(self, ip: IP, facts: SharingFacts, joining: bool = True) -> Sharing:
        """May FACTS' Service hold IP beside its holders? The namespace rule binds joining only: a share
        that already exists (restored after an upgrade, or made while the pool allowed it) is kept, so no
        IP changes because the operator restarted or a pool stopped allowing new cross-namespace joins."""
        state = self._pools.get(self._ip_pool.get(ip, ""))
        across = not joining or (state is not None and state.pool.allow_shared_ip_across_namespaces)
        for other_key, other in self._holders.get(ip, {}).items():
            if other_key != facts.key:
                verdict = can_share(facts, other, across)
                if verdict is not Sharing.COMPATIBLE:
                    return verdict
        return Sharing.COMPATIBLE

    def _still_fits(self, held: _Held, req: ServiceRequest, facts: SharingFacts, pools: list[str],
                    required: list[str]) -> bool:
        if held.pool not in pools or not all(self._pools[held.pool].usable(ip) for ip in held.ips):
            return False
        families = [f for f, _ in held.ips]
        if any(f not in families for f in required) or any(f not in req.ip_families and req.ip_family_policy
                                                            == "SingleStack" for f in families):
            return False
        return all(self._compatible(ip, facts, joining=False) is Sharing.COMPATIBLE for ip in held.ips)

    def _pick_all(self, state: PoolState, required: list[str], optional: list[str],
                  facts: SharingFacts) -> list[IP] | None:
        picked: list[IP] = []
        for family in required + optional:
            ip = self._pick(state, family, facts)
            if ip is None and family in required:
                return None
            if ip is not None:
                picked.append(ip)
        return picked

    def _pick(self, state: PoolState, family: str, facts: SharingFacts) -> IP | None:
        held = self._by_service.get(facts.key)
        for ip in held.ips if held else ():
            if ip[0] == family and state.usable(ip) and self._compatible(ip, facts) is Sharing.COMPATIBLE:
                return ip
        own = [h.ip for h in self.holds.of_namespace(facts.namespace) if h.ip[0] == family and state.usable(h.ip)]
        mine = [h.ip for h in self.holds.of_namespace(facts.namespace) if h.key == facts.key and h.ip in own]
        if mine:  # the previous owner gets its own IP back
            return min(mine)
        if facts.sharing_key:
            for ip in sorted(self._by_sharing_key.get(facts.sharing_key, ())):
                if ip[0] == family and state.usable(ip) and self._compatible(ip, facts) is Sharing.COMPATIBLE:
                    return ip
        # IPs held for this namespace are free to it (lowest first, as ever); other namespaces' held
        # IPs are not in the free sets at all.
        value = state.free[family].lowest()
        return min([ip for ip in own + ([(family, value)] if value is not None else [])], default=None)

    def _assign_requested(self, req: ServiceRequest, facts: SharingFacts) -> Allocation:
        wanted = requested_ips(req)
        if isinstance(wanted, Allocation):
            return wanted
        if req.requested_pool:
            if req.requested_pool not in self._pools:
                return fail(AllocationReason.POOL_NOT_FOUND, f"pool {req.requested_pool!r} does not exist")
            names = [req.requested_pool]
        else:
            names = list(self._pools)
        covering = [n for n in names if all(self._pools[n].usable(ip) for ip in wanted)]
        if not covering:
            where = f"pool {req.requested_pool}" if req.requested_pool else "any pool"
            return fail(AllocationReason.REQUESTED_IP_NOT_IN_POOL,
                         f"requested {', '.join(req.requested_ips)} is not in {where}")
        # A requested IP is bound by its pool's serviceAllocation too, as in MetalLB: naming an
        # address is no way around a pool reserved for another namespace.
        pool = next((n for n in covering if refusal(self._pools[n].pool, req) is None), None)
        if pool is None:
            return fail(AllocationReason.POOL_NOT_ALLOWED, f"requested {', '.join(req.requested_ips)}: "
                         + (refusal(self._pools[covering[0]].pool, req) or ""))
        now = self.clock()
        for ip in wanted:
            hold = self.holds.get(ip)
            if hold is not None and hold.refuses(req.namespace, now):
                return fail(AllocationReason.REQUESTED_IP_HELD,
                             f"requested {int_to_ip(*ip)} was released by another namespace and is held for it "
                             f"for {hold.until - now:.0f} s more (IP reuse delay)")
        for ip in wanted:
            verdict = self._compatible(ip, facts)
            if verdict is Sharing.NO_SHARING_KEY:
                return fail(AllocationReason.REQUESTED_IP_IN_USE, f"requested {int_to_ip(*ip)} is already in use")
            if verdict is not Sharing.COMPATIBLE:
                return fail(AllocationReason.SHARING_INCOMPATIBLE,
                             f"requested {int_to_ip(*ip)} is shared and incompatible ({verdict.value})")
        held = self._by_service.get(req.key)
        unchanged = held is not None and held.pool == pool and sorted(held.ips) == sorted(wanted)
        self._commit(req.key, facts, pool, wanted)
        reason = AllocationReason.UNCHANGED if unchanged else AllocationReason.ASSIGNED
        return Allocation(self._strs(wanted), pool, reason,
                          f"assigned requested {', '.join(req.requested_ips)} from pool {pool}")

    def _commit(self, key: str, facts: SharingFacts, pool: str, ips: Sequence[IP]) -> None:
        old = self._by_service.get(key)
        if old:
            self._drop(key, hold=True)
        self._by_service[key] = _Held(pool, tuple(ips), facts)
        for ip in ips:
            holders = self._holders.setdefault(ip, {})
            if not holders:
                self.holds.pop(ip)  # taken again (by its namespace, or after its hold ended)
                self._ip_pool[ip] = pool
                self._pools[pool].assigned[ip[0]] += 1
                take_free(self._pools.values(), ip)
            holders[key] = facts
            if facts.sharing_key:
                self._by_sharing_key.setdefault(facts.sharing_key, set()).add(ip)

    def _drop(self, key: str, hold: bool) -> None:
        """Forget KEY's IPs; an IP nobody else holds is free again, or held for KEY's namespace (HOLD)."""
        held = self._by_service.pop(key)
        for ip in held.ips:
            holders = self._holders.get(ip, {})
            holders.pop(key, None)
            if holders:  # still shared: count it in the pool of a Service that keeps it
                keepers = {self._by_service[k].pool for k in holders}
                self._recount(ip, self._by_service[min(holders)].pool, keepers)
                continue
            self._holders.pop(ip, None)
            pool = self._ip_pool.pop(ip, None)
            if pool in self._pools:
                self._pools[pool].assigned[ip[0]] -= 1
            if hold and self.reuse_delay > 0 and pool is not None:
                self.holds.add(Hold(ip, held.facts.namespace, key, pool, self.clock() + self.reuse_delay))
            else:
                release_free(self._pools.values(), ip)
            if held.facts.sharing_key:
                self._by_sharing_key.get(held.facts.sharing_key, set()).discard(ip)

    def _recount(self, ip: IP, pool: str, keepers: set[str]) -> None:
        """Move IP's assigned count to POOL unless a remaining holder's pool already counts it."""
        current = self._ip_pool.get(ip)
        if current in keepers:
            return
        if current in self._pools:
            self._pools[current].assigned[ip[0]] -= 1
        self._ip_pool[ip] = pool
        if pool in self._pools:
            self._pools[pool].assigned[ip[0]] += 1
