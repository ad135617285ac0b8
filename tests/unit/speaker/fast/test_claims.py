"""This node's claims on each IP: scenario tables for `claims_of` and the ClaimTable."""

from __future__ import annotations

import pytest

from ironlb.speaker.desired import ALL_INTERFACES, AnnounceReason
from ironlb.speaker.fast.claims import Claim, ClaimTable, claims_of
from ironlb.speaker.ranking import Ranked

ME = "n1"
IP = "203.0.113.1"
ETH = frozenset({"eth0"})


def ranked(*ranking: str, service: str = "ns/a", reason: AnnounceReason = AnnounceReason.ANNOUNCING,
           interfaces: tuple[frozenset[str], ...] = (ALL_INTERFACES,)) -> Ranked:
    """One entry for IP."""
    return Ranked(service, IP, reason, ranking, interfaces if ranking else ())


@pytest.mark.parametrize(("entries", "expected"), [
    # first in the ranking: nobody ahead; those after never matter
    ((ranked(ME, "n2", "n3"),), (Claim(frozenset(), ALL_INTERFACES),)),
    # third: the two ahead are what can keep the IP from us
    ((ranked("n3", "n2", ME, "n4"),), (Claim(frozenset({"n2", "n3"}), ALL_INTERFACES),)),
    # not ranked, or ranked for a reason other than announcing: no claim
    ((ranked("n2", "n3"),), ()),
    ((Ranked("ns/a", IP, AnnounceReason.NO_READY_ENDPOINTS),), ()),
    # interfaces per ranked node: ours are the ones at our index
    ((ranked("n2", ME, interfaces=(frozenset({"eth1"}), ETH)),), (Claim(frozenset({"n2"}), ETH),)),
    # two Services share the IP: one claim each, in their order
    ((ranked(ME, service="ns/a"), ranked("n2", ME, service="ns/b")),
     (Claim(frozenset(), ALL_INTERFACES), Claim(frozenset({"n2"}), ALL_INTERFACES))),
])
def test_claims_of(entries: tuple[Ranked, ...], expected: tuple[Claim, ...]) -> None:
    assert claims_of(entries, ME) == expected


@pytest.mark.parametrize(("claims", "alive", "expected"), [
    ((Claim(frozenset(), ETH),), {ME}, ETH),
    ((Claim(frozenset(), ETH),), set(), None),  # not joined (or fenced): nothing is ours
    ((Claim(frozenset({"n2"}), ETH),), {ME, "n2"}, None),  # n2 is ahead and alive
    ((Claim(frozenset({"n2"}), ETH),), {ME, "n3"}, ETH),  # n2 is ahead but dead
    # shared IP: ours on the union of the interfaces of the claims we win
    ((Claim(frozenset(), ETH), Claim(frozenset({"n2"}), frozenset({"eth1"}))), {ME}, frozenset({"eth0", "eth1"})),
    ((Claim(frozenset(), ETH), Claim(frozenset({"n2"}), frozenset({"eth1"}))), {ME, "n2"}, ETH),
])
def test_interfaces_for(claims: tuple[Claim, ...], alive: set[str], expected: frozenset[str] | None) -> None:
    table = ClaimTable()
    table.put(IP, claims)
    assert table.interfaces_for(IP, alive, ME) == expected


def test_the_peer_index_follows_every_put_and_drop() -> None:
    table = ClaimTable()
    table.update({"a": (Claim(frozenset({"n2", "n3"}), ETH),), "b": (Claim(frozenset({"n2"}), ETH),),
                  "c": (Claim(frozenset(), ETH),)})
    assert table.affected_by("n2") == {"a", "b"} and table.affected_by("n3") == {"a"}
    assert set(table.mine) == {"a", "b", "c"}
    table.put("a", (Claim(frozenset({"n3"}), ETH),))  # re-ranked: n2 no longer ahead on a
    assert table.affected_by("n2") == {"b"} and table.affected_by("n3") == {"a"}
    table.put("b", ())  # b no longer ranks us: gone, from the index too
    table.put("a", ())
    assert table.affected_by("n2") == frozenset() and table.affected_by("n3") == frozenset()
    assert set(table.mine) == {"c"} and table._ahead == {}
    table.put("never-there", ())  # dropping an unknown IP is a no-op
    assert set(table.mine) == {"c"}


def test_claims_decide_as_the_whole_ranking_table_does() -> None:
    # The fast plane decides from claims only; the control plane's table decides from whole rankings.
    # For random tables (shared IPs, per-node interfaces, unranked entries) and every alive set drawn,
    # both must name the same IPs and interfaces: the claims lose nothing that matters.
    import random

    from ironlb.speaker.ranking import Table

    rng = random.Random(5)
    nodes = [ME, "n2", "n3", "n4", "n5"]
    for _ in range(200):
        put: dict[str, tuple[Ranked, ...]] = {}
        for s in range(rng.randrange(1, 8)):
            ip = f"203.0.113.{rng.randrange(1, 5)}"
            ranking = tuple(rng.sample(nodes, rng.randrange(0, len(nodes) + 1)))
            ifaces = tuple(frozenset(rng.sample(["eth0", "eth1", "*"], rng.randrange(1, 3))) for _ in ranking)
            reason = AnnounceReason.ANNOUNCING if ranking else AnnounceReason.NO_READY_ENDPOINTS
            put[f"ns/s{s}"] = (Ranked(f"ns/s{s}", ip, reason, ranking, ifaces),)
        table = Table(ME).evolve(put)
        claims = ClaimTable()
        claims.update({ip: claims_of(entries, ME) for ip, entries in table.by_ip.items()})
        for _ in range(5):
            alive = set(rng.sample(nodes, rng.randrange(0, len(nodes) + 1)))
            for ip in table.by_ip:
                assert claims.interfaces_for(ip, alive, ME) == table.interfaces_for(ip, alive), (ip, alive, put)
