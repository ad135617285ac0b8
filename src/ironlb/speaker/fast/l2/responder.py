"""Answers ARP requests and neighbour solicitations for the IPs one interface owns."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Collection, Container, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.io import PacketIO

if TYPE_CHECKING:
    from ironlb.speaker.fast.l2.kernel_arp import KernelArp

log = logging.getLogger(__name__)


class Verdict(Enum):
    """What the responder did with one received frame."""

    REPLIED = "replied"
    NOT_OWNED = "not-owned"
    NOT_A_REQUEST = "not-a-request"
    MALFORMED = "malformed"
    OWN_FRAME = "own-frame"
    DUPLICATE_SEEN = "duplicate-seen"


_UNSPECIFIED = bytes(4)  # 0.0.0.0: an ARP probe's sender, which claims nothing
_NAMES = {verdict: verdict.value for verdict in Verdict}  # an Enum's .value is a descriptor call: per frame, a dict


@dataclass
class Stats:
    """Counters of one interface's responder."""

    requests: int = 0  # seen here; the ones the kernel answered are kernel_replies
    replies: int = 0
    gratuitous: int = 0
    duplicates: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    kernel_replies: int = 0  # ARP replies the in-kernel responder sent (kernel_arp.py)
    in_kernel: bool = False  # whether it answers this interface's ARP requests now
    filter_failures: int = 0  # kernel filters refused (the socket then passes all ARP or NS/NA)


class MacSet:
    """Every MAC of this node's interfaces, replaced whole (so a reader never sees half of a change)."""

    def __init__(self, macs: Iterable[bytes] = ()) -> None:
        self.macs: frozenset[bytes] = frozenset(macs)

    def __contains__(self, mac: bytes) -> bool:
        return mac in self.macs


DuplicateHook = Callable[[str, str, str], None]  # (ip, foreign mac, interface)


class Responder:
    """One interface: an ARP PacketIO, an optional NDP PacketIO, and the set of owned IPs."""

    def __init__(self, ifname: str, mac: str, arp: PacketIO, ndp: PacketIO | None = None,
                 link_local: str | None = None, on_duplicate: DuplicateHook | None = None,
                 burst: int = 3, burst_gap_s: float = 0.05, own_macs: Container[bytes] = frozenset(),
                 kernel: KernelArp | None = None) -> None:
        self.ifname, self.mac, self.link_local = ifname, pk.mac_bytes(mac), link_local
        # Every MAC of this node: our frames heard back on another interface (the other end of a veth
        # pair, a second NIC on the same segment) are never another host answering.
        self.own_macs = own_macs
        self.arp, self.ndp = arp, ndp
        self.owned: set[str] = set()  # changed in place, an IP at a time (thousands owned: no copy per change)
        self._owned4: set[str] = set()  # the IPv4 ones
        self._owned6: set[str] = set()  # the IPv6 ones
        # IPs answered for a peer whose speaker restarts, each with the peer's MAC: its node still forwards
        # their traffic, so the clients' entries must keep naming it (docs/design.md, "A speaker that restarts").
        self.covered: dict[str, bytes] = {}
        self._covered4: set[str] = set()
        self._covered6: set[str] = set()
        # The IPs each filter names (None: too many, or refused; it passes all ARP or all NS/NA, as a new
        # socket does until the first filter below)
        self._filtered: list[str] | None = None
        self._filtered6: list[str] | None = None
        self._filter_failure_logged = False
        self.stats = Stats()
        self.on_duplicate = on_duplicate
        self.burst, self.burst_gap_s = burst, burst_gap_s
        # The kernel answers the ARP requests it can (an accelerator: whatever it passes on, on_arp answers).
        self.kernel = kernel
        self.stats.in_kernel = kernel is not None
        # A new socket passes all ARP (or NS/NA): name the owned set (empty yet) at once, so that an interface
        # owning nothing is spared a flood of requests for other hosts' IPs too.
        self._refilter()
        if ndp is not None:
            self._refilter6()
        arp.start(self.on_arp)
        if ndp is not None:
            ndp.start(self.on_ndp)

    def _count(self, verdict: Verdict) -> Verdict:
        name = _NAMES[verdict]
        self.stats.verdicts[name] = self.stats.verdicts.get(name, 0) + 1
        return verdict

    def _ours(self, mac: bytes) -> bool:
        return mac == self.mac or mac in self.own_macs

    def set_owned(self, ips: Collection[str]) -> None:
        """Replace the owned set (joining and leaving the solicited-node groups of the IPv6 ones)."""
        self.change(set(ips) - self.owned, self.owned - set(ips))

    def change(self, added: Iterable[str], removed: Iterable[str]) -> None:
        """Own ADDED and no longer REMOVED: O(what changed), and the ARP filter only when it must change."""
        added, removed = [ip for ip in added if ip not in self.owned], [ip for ip in removed if ip in self.owned]
        self.owned.difference_update(removed)
        self.owned.update(added)
        self._owned4.difference_update(removed)
        self._owned4.update(ip for ip in added if ":" not in ip)
        self._owned6.difference_update(removed)
        self._owned6.update(ip for ip in added if ":" in ip)
        if self.kernel is not None:
            self._kernel_change(added, removed)
        self._groups([ip for ip in added if ip not in self.covered], [ip for ip in removed if ip not in self.covered])
        self._refilter_for([*added, *removed])

    def cover(self, changes: Mapping[str, bytes | None]) -> None:
        """Answer each IP of CHANGES at the peer MAC it maps to (None: no longer); never in the kernel, which
        answers with this interface's MAC only."""
        joined, left = [], []
        for ip, mac in changes.items():
            if mac is None:
                if self.covered.pop(ip, None) is not None:
                    (self._covered6 if ":" in ip else self._covered4).discard(ip)
                    left.append(ip)
            else:
                if ip not in self.covered:
                    (self._covered6 if ":" in ip else self._covered4).add(ip)
                    joined.append(ip)
                self.covered[ip] = mac
        self._groups([ip for ip in joined if ip not in self.owned], [ip for ip in left if ip not in self.owned])
        self._refilter_for([*joined, *left])

    def _groups(self, joined: list[str], left: list[str]) -> None:
        """Join and leave the solicited-node groups of the IPv6 ones among JOINED and LEFT."""
        if self.ndp is None:
            return
        for ip in joined:
            if ":" in ip:
                self.ndp.join(pk.multicast_mac(pk.solicited_node(ip)))
        for ip in left:
            if ":" in ip:
                self.ndp.leave(pk.multicast_mac(pk.solicited_node(ip)))

    def _refilter_for(self, changed: list[str]) -> None:
        if any(":" not in ip for ip in changed):
            self._refilter()
        if self.ndp is not None and any(":" in ip for ip in changed):
            self._refilter6()

    def _kernel_change(self, added: list[str], removed: list[str]) -> None:
        assert self.kernel is not None
        try:
            for ip in removed:
                if ":" not in ip:
                    self.kernel.remove(ip)
            for ip in added:
                if ":" not in ip:
                    self.kernel.add(ip)
        except OSError as exc:
            # An IP the kernel could not drop would be answered after a peer took it over: stop using it
            # altogether. One it could not add is still answered here, so nothing is lost either way.
            log.warning("ARP on %s is answered from user space from now on: the in-kernel responder failed (%s)",
                        self.ifname, exc)
            self._drop_kernel()

    def _drop_kernel(self) -> None:
        if self.kernel is not None:
            self.stats.kernel_replies = self.kernel.replies()
            self.kernel.close()
            self.kernel = None
            self.stats.in_kernel = False

    def counters(self) -> Stats:
        """The counters, the kernel's replies read now."""
        if self.kernel is not None:
            with contextlib.suppress(OSError):  # a counter that cannot be read now is read next time
                self.stats.kernel_replies = self.kernel.replies()
        return self.stats

    def _refilter(self) -> None:
        self._filtered = self._narrowed(self.arp, self._owned4 | self._covered4, self._filtered, bpf.MAX_FILTERED_IPS,
                                        bpf.ARP_PROGRAM, bpf.arp_program)

    def _refilter6(self) -> None:
        assert self.ndp is not None
        self._filtered6 = self._narrowed(self.ndp, self._owned6 | self._covered6, self._filtered6,
                                         bpf.MAX_FILTERED_IPV6, bpf.NDP_PROGRAM, bpf.ndp_program)

    def _narrowed(self, io: PacketIO, owned: set[str], current: list[str] | None, limit: int,
                  pass_all: list[bpf.Instruction], build: Callable[[list[str]], list[bpf.Instruction]]
                  ) -> list[str] | None:
        """The owned IPs IO's filter names now (None: it passes every frame). Past LIMIT the filter passes all,
        swapped in once, not again while the count stays past it; else a new program only when the set changed."""
        if len(owned) > limit:
            if current is not None:
                self._swap(io, pass_all)
            return None
        wanted = sorted(owned)
        if wanted == current:
            return current
        return wanted if self._swap(io, build(wanted)) else None

    def _swap(self, io: PacketIO, program: list[bpf.Instruction]) -> bool:
        """Put PROGRAM on IO's socket; a refusal (all frames pass then) is counted, and logged the first time."""
        if io.set_filter(program):
            return True
        self.stats.filter_failures += 1
        if not self._filter_failure_logged:
            self._filter_failure_logged = True
            log.warning("the kernel refused a packet filter of %d instructions on %s: every ARP/NDP frame on it "
                        "now reaches the speaker (counted in ironlb_speaker_filter_failures_total)",
                        len(program), self.ifname)
        return False

    def on_arp(self, frame: bytes) -> Verdict:
        """Handle one received ARP frame."""
        # Raw fields, not a parsed Arp: at 10k requests/s every microsecond here is one of the reply's.
        fields = pk.arp_fields(frame)
        if fields is None:
            return self._count(Verdict.MALFORMED)
        op, eth_src, sender_mac, sender_ip, _, target_ip = fields
        if self._ours(eth_src) or self._ours(sender_mac):
            return self._count(Verdict.OWN_FRAME)
        if sender_ip != _UNSPECIFIED and self._claims_ours(socket.inet_ntoa(sender_ip), sender_mac):
            return self._count(Verdict.DUPLICATE_SEEN)
        if op != pk.ARP_REQUEST:
            return self._count(Verdict.NOT_A_REQUEST)
        self.stats.requests += 1
        target = socket.inet_ntoa(target_ip)
        if target in self.owned:
            at = None
        elif (at := self.covered.get(target)) is None:
            return self._count(Verdict.NOT_OWNED)
        self.arp.send(pk.arp_reply_raw(self.mac, sender_mac, sender_ip, target_ip, at))
        self.stats.replies += 1
        return self._count(Verdict.REPLIED)

    def on_ndp(self, frame: bytes) -> Verdict:
        """Handle one received NS/NA frame."""
        ndp = pk.parse_ndp(frame)
        if ndp is None:
            return self._count(Verdict.MALFORMED)
        if self._ours(ndp.eth_src) or (ndp.link_addr is not None and self._ours(ndp.link_addr)):
            return self._count(Verdict.OWN_FRAME)
        target = str(ipaddress.IPv6Address(ndp.target))
        if ndp.type == pk.NDP_ADVERT:
            if self._claims_ours(target, ndp.link_addr or ndp.eth_src):
                return self._count(Verdict.DUPLICATE_SEEN)
            return self._count(Verdict.NOT_A_REQUEST)
        self.stats.requests += 1
        at = self.covered.get(target)
        if (target not in self.owned and at is None) or self.ndp is None or not self.link_local:
            return self._count(Verdict.NOT_OWNED)
        self.ndp.send(pk.ndp_reply(self.mac, self.link_local, target, ndp, None if target in self.owned else at))
        self.stats.replies += 1
        return self._count(Verdict.REPLIED)

    def _claims_ours(self, ip: str, mac: bytes) -> bool:
        """Does a frame from MAC claiming IP contradict what we answer (said as a duplicate if so)? The peer we
        cover for, answering again with its own MAC, does not."""
        if ip not in self.owned and self.covered.get(ip, mac) == mac:
            return False
        # Someone else claims an IP we answer for: two answers mean a split brain; say so.
        self.stats.duplicates += 1
        if self.on_duplicate:
            self.on_duplicate(ip, pk.mac_str(mac), self.ifname)
        return True

    def announce_once(self, ip: str) -> None:
        """Send one gratuitous ARP / unsolicited NA for IP."""
        if ":" in ip:
            if self.ndp is not None and self.link_local:
                self.ndp.send(pk.unsolicited_na(self.mac, self.link_local, ip))
                self.stats.gratuitous += 1
        else:
            self.arp.send(pk.gratuitous_arp(self.mac, ip))
            self.stats.gratuitous += 1

    async def announce(self, ip: str) -> None:
        """A burst of gratuitous ARP / unsolicited NA so neighbours update at once on takeover."""
        for i in range(self.burst):
            if ip not in self.owned:
                return
            self.announce_once(ip)
            if i + 1 < self.burst:
                await asyncio.sleep(self.burst_gap_s)

    def close(self) -> None:
        """Close the sockets."""
        self.set_owned(frozenset())
        self.cover(dict.fromkeys(self.covered))
        self._drop_kernel()
        self.arp.close()
        if self.ndp is not None:
            self.ndp.close()
