"""This node's claims on each IP: scenario tables for the node index, `claims_of` and the ClaimTable."""

from __future__ import annotations

import random

import pytest

from ironlb.speaker.fast.claims import Claim, Claims, ClaimTable, claims_of
from ironlb.speaker.fast.messages import TO_FAST, LearnNodes, PutClaims
from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.fast.wire import decode, encode
from ironlb.speaker.state.desired import ALL_INTERFACES, AnnounceReason
from ironlb.speaker.state.ranking import Ranked, Table

ME = "n1"
IP = "203.0.113.1"
ETH = frozenset({"eth0"})
NamedClaims = list[tuple[set[str], frozenset[str]]]  # (nodes ahead, interfaces) per claim


def ranked(*ranking: str, service: str = "ns/a", reason: AnnounceReason = AnnounceReason.ANNOUNCING,
           interfaces: tuple[frozenset[str], ...] = (ALL_INTERFACES,)) -> Ranked:
    """One entry for IP."""
    return Ranked(service, IP, reason, ranking, interfaces if ranking else ())


def index_of(*names: str) -> NodeIndex:
    """An index that has seen NAMES, in this order."""
    index = NodeIndex()
    for name in names:
        index.bit(name)
    return index


def fill(table: ClaimTable, named: dict[str, NamedClaims], sender: NodeIndex | None = None) -> NodeIndex:
    """Put these claims in TABLE as the control plane sends them: new node names first, then the claims."""
    sender = sender or NodeIndex()
    known = len(sender)
    claims = {ip: tuple(Claim(sender.assign(sorted(ahead)), ifaces) for ahead, ifaces in cs)
              for ip, cs in named.items()}
    table.learn(known, sender.names_from(known))
    table.update(claims)
    return sender


def alive_table(named: dict[str, NamedClaims], alive: set[str]) -> ClaimTable:
    """A ClaimTable holding these claims, with ALIVE."""
    table = ClaimTable(ME)
    fill(table, named)
    table.set_alive(frozenset(alive))
    return table


# -- the node index ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seen", "name", "bit"), [
    ((), "n2", 0),  # the first name: bit 0
    (("n2", "n3"), "n4", 2),  # a new name gets the next bit
    (("n2", "n3", "n4"), "n2", 0),  # a known name keeps its bit, however many came after it
    (("n2", "n3", "n4"), "n4", 2),
])
def test_a_name_keeps_the_bit_it_was_first_given(seen: tuple[str, ...], name: str, bit: int) -> None:
    index = index_of(*seen)
    assert index.bit(name) == bit
    assert index.names_from(0) == list(dict.fromkeys((*seen, name)))  # appended once, in order of first sight


@pytest.mark.parametrize(("seen", "names", "mask", "known_mask"), [
    ((), ["n2", "n3"], 0b11, 0),  # both new: bits 0 and 1 given; before that they had none
    (("n2", "n3", "n4"), ["n4", "n2"], 0b101, 0b101),
    (("n2",), ["n3"], 0b10, 0),
    (("n2",), [], 0, 0),
])
def test_masks_turn_back_into_the_names(seen: tuple[str, ...], names: list[str], mask: int, known_mask: int) -> None:
    index = index_of(*seen)
    assert index.mask(names) == known_mask  # unknown names have no bit: they add nothing
    assert index.assign(names) == mask
    assert index.mask(names) == mask and index.names(mask) == frozenset(names)
    assert len(index) == len(set(seen) | set(names))


@pytest.mark.parametrize(("start", "names", "error"), [
    (3, ["n5"], None),  # the next bits, as the control plane gave them
    (2, ["n5"], "out of step"),  # a message lost or repeated: never silently misnumbered
    (4, ["n5"], "out of step"),
    (3, ["n2"], "already has bit 0"),
])
def test_the_fast_plane_extends_its_index_only_in_step(start: int, names: list[str], error: str | None) -> None:
    index = index_of("n2", "n3", "n4")
    if error is None:
        index.extend(start, names)
        assert index.bit("n5") == 3
    else:
        with pytest.raises(ValueError, match=error):
            index.extend(start, names)


# -- claims ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("entries", "expected"), [
    # first in the ranking: nobody ahead; those after never matter (and get no bit)
    ((ranked(ME, "n2", "n3"),), [(set(), ALL_INTERFACES)]),
    # third: the two ahead are what can keep the IP from us
    ((ranked("n3", "n2", ME, "n4"),), [({"n2", "n3"}, ALL_INTERFACES)]),
    # not ranked, or ranked for a reason other than announcing: no claim
    ((ranked("n2", "n3"),), []),
    ((Ranked("ns/a", IP, AnnounceReason.NO_READY_ENDPOINTS),), []),
    # interfaces per ranked node: ours are the ones at our index
    ((ranked("n2", ME, interfaces=(frozenset({"eth1"}), ETH)),), [({"n2"}, ETH)]),
    # two Services share the IP: one claim each, in their order
    ((ranked(ME, service="ns/a"), ranked("n2", ME, service="ns/b")),
     [(set(), ALL_INTERFACES), ({"n2"}, ALL_INTERFACES)]),
])
def test_claims_of(entries: tuple[Ranked, ...], expected: NamedClaims) -> None:
    index = NodeIndex()
    claims = claims_of(entries, ME, index)
    assert [(set(index.names(c.ahead)), c.interfaces) for c in claims] == expected
    assert set(index.names_from(0)) == set().union(*(ahead for ahead, _ in expected))  # bits for those ahead only


def test_claims_of_gives_new_nodes_the_next_bits_and_known_ones_their_own() -> None:
    index = index_of("n3")
    assert claims_of((ranked("n2", "n3", ME),), ME, index) == (Claim(0b11, ALL_INTERFACES),)
    assert claims_of((ranked("n4", "n2", ME),), ME, index) == (Claim(0b110, ALL_INTERFACES),)
    assert index.names_from(0) == ["n3", "n2", "n4"]


# -- ownership -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("claims", "alive", "expected"), [
    ([(set(), ETH)], {ME}, ETH),
    ([(set(), ETH)], set(), None),  # not joined (or fenced): nothing is ours
    ([({"n2"}, ETH)], {ME, "n2"}, None),  # n2 is ahead and alive
    ([({"n2"}, ETH)], {ME, "n3"}, ETH),  # n2 is ahead but dead
    ([({"n2"}, ETH)], {ME}, ETH),  # n2 is ahead and not in the alive set at all: not alive
    ([({"n2", "n3"}, ETH)], {ME, "n3"}, None),  # any one alive ahead is enough
    # shared IP: ours on the union of the interfaces of the claims we win
    ([(set(), ETH), ({"n2"}, frozenset({"eth1"}))], {ME}, frozenset({"eth0", "eth1"})),
    ([(set(), ETH), ({"n2"}, frozenset({"eth1"}))], {ME, "n2"}, ETH),
])
def test_interfaces_for(claims: NamedClaims, alive: set[str], expected: frozenset[str] | None) -> None:
    assert alive_table({IP: claims}, alive).interfaces_for(IP) == expected


def test_alive_names_without_a_bit_count_once_they_get_one() -> None:
    table = ClaimTable(ME)
    assert table.set_alive(frozenset({ME, "n2", "n9"})) == 0  # nobody has a bit yet: no claim can change
    sender = fill(table, {IP: [(set(), ETH)]})
    fill(table, {IP: [({"n2"}, ETH)]}, sender)  # n2's bit arrives, then the claim behind it
    assert table.interfaces_for(IP) is None  # n2 was alive all along: the mask has it now
    assert table.set_alive(frozenset({ME, "n9"})) == 1 << sender.bit("n2")
    assert table.interfaces_for(IP) == ETH


def test_a_claim_on_a_bit_never_sent_is_refused() -> None:
    table = ClaimTable(ME)
    with pytest.raises(ValueError, match="never told of"):
        table.put(IP, (Claim(0b1, ETH),))
    assert not table.mine


def test_puts_and_drops_keep_mine() -> None:
    table = ClaimTable(ME)
    sender = fill(table, {"a": [({"n2", "n3"}, ETH)], "b": [({"n2"}, ETH)], "c": [(set(), ETH)]})
    assert set(table.mine) == {"a", "b", "c"}
    fill(table, {"b": [], "never-there": []}, sender)  # b no longer ranks us; dropping an unknown IP: a no-op
    assert set(table.mine) == {"a", "c"}


def test_equal_interface_sets_from_separate_messages_are_one_object() -> None:
    # Each message decodes into its own copy of the same sets: 10,000 claims must not carry 10,000 copies.
    table = ClaimTable(ME)
    for i in range(3):
        chunk = {f"203.0.113.{i}": (Claim(0, frozenset({"eth0"})), Claim(0, frozenset({"eth1"})))}
        table.update(decode(encode(PutClaims(chunk)), TO_FAST).changes)  # type: ignore[union-attr]
    first, *rest = table.claims.values()
    for claims in rest:
        assert all(a.interfaces is b.interfaces for a, b in zip(first, claims, strict=True))
    assert [c.interfaces for c in first] == [frozenset({"eth0"}), frozenset({"eth1"})]


# -- the scan on an alive-set change ------------------------------------------------------------------------------

SCAN: dict[str, NamedClaims] = {
    "a": [({"n2", "n3"}, ETH)],
    "b": [({"n2"}, ETH)],
    "c": [(set(), ETH)],
    "d": [(set(), ETH), ({"n4"}, ETH)],  # shared IP: n4 is ahead on its second claim only
    "e": [({"n3"}, ETH), ({"n2", "n4"}, ETH)],
}


@pytest.mark.parametrize(("dead", "expected"), [
    ({"n2"}, {"a", "b", "e"}),  # exactly the IPs where it was ahead
    ({"n3"}, {"a", "e"}),
    ({"n4"}, {"d", "e"}),
    ({"n2", "n4"}, {"a", "b", "d", "e"}),  # two at once: the union
    ({"n5"}, set()),  # has a bit, but nobody ranks it ahead of us: nothing to re-decide
    ({"n9"}, set()),  # has no bit at all (no claim ever named it): not even a scan
])
def test_a_peer_that_dies_re_decides_exactly_the_ips_it_was_ahead_on(dead: set[str], expected: set[str]) -> None:
    table = ClaimTable(ME)
    sender = fill(table, {"a": [({"n5"}, ETH)]})  # n5 was ahead on an IP once, and no longer is
    fill(table, SCAN, sender)
    everyone = frozenset({ME, "n2", "n3", "n4", "n5", "n9"})
    table.set_alive(everyone)
    changed = table.set_alive(everyone - dead)
    assert changed == sender.mask(dead)
    assert sorted(table.affected_by(changed)) == sorted(expected)
    assert sorted(table.affected_by(table.set_alive(everyone))) == sorted(expected)  # and the same when back


def test_claims_decide_as_the_whole_ranking_table_does() -> None:
    # The fast plane decides from claims only; the control plane's table decides from whole rankings.
    # For random tables (shared IPs, per-node interfaces, unranked entries) and every alive set drawn,
    # both must name the same IPs and interfaces: the claims lose nothing that matters. Claims and node
    # names cross as the wire carries them, into one long-lived table, so bits accumulate.
    rng = random.Random(5)
    nodes = [ME, "n2", "n3", "n4", "n5"]
    ips = [f"203.0.113.{i}" for i in range(1, 5)]
    sender, claims = NodeIndex(), ClaimTable(ME)
    for _ in range(200):
        put: dict[str, tuple[Ranked, ...]] = {}
        for s in range(rng.randrange(1, 8)):
            ip = rng.choice(ips)
            ranking = tuple(rng.sample(nodes, rng.randrange(0, len(nodes) + 1)))
            ifaces = tuple(frozenset(rng.sample(["eth0", "eth1", "*"], rng.randrange(1, 3))) for _ in ranking)
            reason = AnnounceReason.ANNOUNCING if ranking else AnnounceReason.NO_READY_ENDPOINTS
            put[f"ns/s{s}"] = (Ranked(f"ns/s{s}", ip, reason, ranking, ifaces),)
        table = Table(ME).evolve(put)
        known = len(sender)
        changes: dict[str, Claims] = {ip: claims_of(table.by_ip.get(ip) or (), ME, sender) for ip in ips}
        names = decode(encode(LearnNodes(known, sender.names_from(known))), TO_FAST)
        claims.learn(names.start, names.names)  # type: ignore[union-attr]
        claims.update(decode(encode(PutClaims(changes)), TO_FAST).changes)  # type: ignore[union-attr]
        for _ in range(5):
            alive = frozenset(rng.sample(nodes, rng.randrange(0, len(nodes) + 1)))
            claims.set_alive(alive)
            for ip in ips:  # those not in this table too: their claims were dropped
                assert claims.interfaces_for(ip) == table.interfaces_for(ip, alive), (ip, alive, put)


# -- answering for a held node ---------------------------------------------------------------------------------

PEER_MAC = b"\x02\x00\x00\x00\x00\x07"


@pytest.mark.parametrize(("claims", "alive", "held", "covers", "own", "cover"), [
    # n2 is first and held: we answer for it with its MAC, not as ours
    ([({"n2"}, ETH)], {ME, "n2"}, {"n2"}, {IP: PEER_MAC}, None, (ETH, PEER_MAC)),
    # n3 is alive, not held, and ahead of us too: it covers, not we
    ([({"n2", "n3"}, ETH)], {ME, "n2", "n3"}, {"n2"}, {IP: PEER_MAC}, None, None),
    # held but its RESTART did not name the IP (lost, or forwarded by it): taken over as ours
    ([({"n2"}, ETH)], {ME, "n2"}, {"n2"}, {}, ETH, None),
    # first ourselves: ours, whoever is held behind
    ([(set(), ETH)], {ME, "n2"}, {"n2"}, {IP: PEER_MAC}, ETH, None),
    # not joined (or fenced): neither
    ([({"n2"}, ETH)], {"n2"}, {"n2"}, {IP: PEER_MAC}, None, None),
    # held, then dead (released): taken over as ours
    ([({"n2"}, ETH)], {ME}, set(), {}, ETH, None),
])
def test_a_held_node_is_answered_for_by_the_next_live_one(
        claims: NamedClaims, alive: set[str], held: set[str], covers: dict[str, bytes],
        own: frozenset[str] | None, cover: tuple[frozenset[str], bytes] | None) -> None:
    table = ClaimTable(ME)
    fill(table, {IP: claims})
    table.set_alive(frozenset(alive), frozenset(held))
    assert table.interfaces_for(IP, covers) == own
    assert table.cover_for(IP, covers) == cover


def test_holding_and_letting_go_are_changes_of_the_node() -> None:
    table = ClaimTable(ME)
    fill(table, {IP: [({"n2"}, ETH)]})
    table.set_alive(frozenset({ME, "n2"}))
    bit = table.index.mask({"n2"})
    assert table.set_alive(frozenset({ME, "n2"}), frozenset({"n2"})) == bit  # held: alive all along
    assert table.affected_by(bit) == [IP]
    assert table.set_alive(frozenset({ME, "n2"})) == bit  # back
