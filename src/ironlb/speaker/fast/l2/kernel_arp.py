"""ARP replies from the kernel: a tcx program on the interface answers requests for the IPs it owns.

A reply from user space costs a process wake-up; the kernel answers its own addresses in softirq. This
program answers ours there too, at the interface's ingress hook, from a map the fast plane keeps equal to
the responder's owned set. It answers exactly what the user-space responder would (responder.py) and hands
everything else on untouched, which then reaches the responder's socket as before:
- a request (op 1) for an owned target, Ethernet/IPv4 header, untagged, from a MAC not of this node: the
  frame is turned into the reply in place and sent back out of the interface;
- a frame whose sender claims an owned IP (another host answering for it), one from any of this node's MACs,
  a tagged frame, a reply, or one too short: passed on, so the responder sees and judges it;
- a frame sent to another host's MAC (the kernel's pkt_type is neither this host, broadcast nor multicast),
  which a promiscuous interface hears: passed on, and the responder's socket filter drops it;
- anything at all once the fast plane's lease has run out (NodeMaps): a stalled fast plane answers nothing.

The link is tied to this process's descriptor: if the fast plane dies, even by SIGKILL, the kernel detaches
the program, so a dead speaker never goes on answering for IPs a peer has taken over.

kernel_arp.listing.c, beside this file, is the program as annotated C, block by block.
"""

from __future__ import annotations

import socket
import struct
import time

from ironlb.speaker.fast.l2 import ebpf as bpf
from ironlb.speaker.fast.l2.ebpf import FP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, Label

MAX_OWNED = 1 << 16  # entries per interface; memory is taken as they are added (F_NO_PREALLOC)
MAX_MACS = 1024
_ARP_LEN = 42  # Ethernet header + ARP for IPv4 over Ethernet


def _le16(raw: bytes) -> int:
    return int(struct.unpack("<H", raw)[0])


def _le32(raw: bytes) -> int:
    return int(struct.unpack("<I", raw)[0])


def _mac_key(mac: bytes) -> bytes:
    return mac + b"\0\0"


class NodeMaps:
    """What every interface's program reads: this node's MACs (a frame from one is ours), and the lease.

    The lease is a CLOCK_MONOTONIC deadline the fast plane's loop keeps moving on. A loop that stops (a
    frozen or wedged process) stops sending heartbeats, and its peers take its IPs over; past the deadline
    the program answers nothing more either, as a stalled user-space responder would not.
    """

    def __init__(self) -> None:
        self.macs_map = bpf.Map(bpf.MAP_HASH, 8, 1, MAX_MACS, "ilb_own_macs", bpf.F_NO_PREALLOC)
        try:
            self.lease = bpf.Map(bpf.MAP_ARRAY, 4, 8, 1, "ilb_arp_lease")
        except OSError:
            self.macs_map.close()
            raise
        self._deadline = self.lease.slot(bytes(4))  # renewed every heartbeat round: its buffers made once
        self.macs: frozenset[bytes] = frozenset()

    def set_macs(self, macs: frozenset[bytes]) -> None:
        """Make the map hold exactly MACS."""
        for mac in self.macs - macs:
            self.macs_map.delete(_mac_key(mac))
        for mac in macs - self.macs:
            self.macs_map.put(_mac_key(mac), b"\1")
        self.macs = macs

    def renew(self, seconds: float) -> None:
        """Let the programs answer for SECONDS more (from now)."""
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        self._deadline.put(deadline.to_bytes(8, "little"))

    def close(self) -> None:
        """Release the maps (programs still attached keep them)."""
        self.macs_map.close()
        self.lease.close()


def program(mac: bytes, owned_fd: int, own_macs_fd: int, lease_fd: int, stats_fd: int) -> list[bpf.Insn | Label]:
    """The responder for one interface whose MAC is MAC: see the module's docstring."""
    mac_lo, mac_hi = _le32(mac[:4]), _le16(mac[4:])
    passed = "pass"

    def lookup(map_fd: int, key_off: int) -> list[bpf.Insn | Label]:
        return [bpf.load_map(R1, map_fd), bpf.mov(R2, FP), bpf.add_imm(R2, key_off), bpf.call(bpf.HELPER_MAP_LOOKUP)]

    def mac_key(src_off: int) -> list[bpf.Insn | Label]:
        # a 6-byte MAC from the frame into the 8-byte key at fp-16 (its last two bytes stay zero)
        return [bpf.store_imm(8, FP, -16, 0), bpf.load(4, R4, R7, src_off), bpf.store(4, FP, -16, R4),
                bpf.load(2, R4, R7, src_off + 4), bpf.store(2, FP, -12, R4)]

    # The labels name the blocks of kernel_arp.listing.c, the program as C would say it (a test keeps them equal).
    return [
        Label("headers"),
        bpf.mov(R6, R1),                                            # r6: the skb
        bpf.load(4, R7, R6, bpf.SKB_DATA),                          # r7: the frame
        bpf.load(4, R3, R6, bpf.SKB_DATA_END),
        bpf.mov(R4, R7), bpf.add_imm(R4, _ARP_LEN),
        bpf.jump_if_greater(R4, R3, passed),                        # shorter than an ARP frame (or not linear)
        bpf.load(4, R4, R6, bpf.SKB_VLAN_PRESENT), bpf.jump_if("!=", R4, 0, passed),
        # to another host's MAC (heard by a promiscuous interface): not ours to answer
        bpf.load(4, R4, R6, bpf.SKB_PKT_TYPE), bpf.jump_if(">", R4, bpf.PACKET_MULTICAST, passed),
        bpf.load(2, R4, R7, 12), bpf.jump_if("!=", R4, _le16(b"\x08\x06"), passed),          # ARP
        bpf.load(4, R4, R7, 14), bpf.jump_if("!=", R4, _le32(b"\x00\x01\x08\x00"), passed),  # Ethernet, IPv4
        bpf.load(2, R4, R7, 18), bpf.jump_if("!=", R4, _le16(b"\x06\x04"), passed),          # 6- and 4-byte
        bpf.load(2, R4, R7, 20), bpf.jump_if("!=", R4, _le16(b"\x00\x01"), passed),          # a request
        Label("lease"),  # the fast plane's lease still runs (its loop is alive)?
        bpf.store_imm(4, FP, -20, 0), *lookup(lease_fd, -20), bpf.jump_if("==", R0, 0, passed),
        bpf.load(8, R8, R0, 0), bpf.call(bpf.HELPER_KTIME_NS), bpf.jump_if_greater(R0, R8, passed),
        Label("target"),  # the target IP owned here?
        bpf.load(4, R4, R7, 38), bpf.store(4, FP, -8, R4), *lookup(owned_fd, -8),
        bpf.jump_if("==", R0, 0, passed),
        Label("sender"),  # the sender claims an owned IP: another host answers for it; the responder reports that
        bpf.load(4, R4, R7, 28), bpf.store(4, FP, -8, R4), *lookup(owned_fd, -8),
        bpf.jump_if("!=", R0, 0, passed),
        Label("from_us"),  # from one of this node's MACs (Ethernet source or ARP sender): ours, heard back
        *mac_key(6), *lookup(own_macs_fd, -16), bpf.jump_if("!=", R0, 0, passed),
        *mac_key(22), *lookup(own_macs_fd, -16), bpf.jump_if("!=", R0, 0, passed),
        Label("reply"),  # the reply, in place: to the asker, from us
        bpf.load(4, R4, R7, 28), bpf.load(4, R5, R7, 38),           # r4 its IP, r5 the owned IP
        bpf.load(4, R8, R7, 22), bpf.load(2, R9, R7, 26),           # r8/r9 its MAC
        bpf.store(4, R7, 0, R8), bpf.store(2, R7, 4, R9),           # Ethernet destination: the asker
        bpf.store_imm(4, R7, 6, mac_lo), bpf.store_imm(2, R7, 10, mac_hi),  # Ethernet source: us
        bpf.store_imm(2, R7, 20, _le16(b"\x00\x02")),               # a reply
        bpf.store_imm(4, R7, 22, mac_lo), bpf.store_imm(2, R7, 26, mac_hi),  # sender: us, the owned IP
        bpf.store(4, R7, 28, R5),
        bpf.store(4, R7, 32, R8), bpf.store(2, R7, 36, R9),         # target: the asker
        bpf.store(4, R7, 38, R4),
        Label("count"),  # count it (array slot 0)
        bpf.store_imm(4, FP, -20, 0), *lookup(stats_fd, -20), bpf.jump_if("==", R0, 0, "send"),
        bpf.mov_imm(R1, 1), bpf.atomic_add64(R0, 0, R1),
        Label("send"),
        bpf.load(4, R1, R6, bpf.SKB_IFINDEX), bpf.mov_imm(R2, 0), bpf.call(bpf.HELPER_REDIRECT),  # out again
        bpf.exit_(),
        Label(passed),
        bpf.mov_imm(R0, bpf.TCX_NEXT), bpf.exit_(),
    ]


class KernelArp:
    """The program on one interface, its owned-IP map and its reply counter; close() detaches it."""

    def __init__(self, ifindex: int, mac: bytes, shared: NodeMaps) -> None:
        self.owned = bpf.Map(bpf.MAP_HASH, 4, 1, MAX_OWNED, f"ilb_arp_{ifindex}", bpf.F_NO_PREALLOC)
        self._objects: list[bpf.Fd] = [self.owned]
        try:
            self.stats = bpf.Map(bpf.MAP_ARRAY, 4, 8, 1, f"ilb_arpst_{ifindex}")
            self._objects.append(self.stats)
            code = bpf.assemble(program(mac, self.owned.fd, shared.macs_map.fd, shared.lease.fd, self.stats.fd))
            prog = bpf.load_program(code, "ironlb_arp")
            self._objects.append(prog)
            self._objects.append(bpf.attach_tcx(prog, ifindex))
        except OSError:
            self.close()
            raise

    def add(self, ip: str) -> None:
        """Answer for IP (dotted quad)."""
        self.owned.put(socket.inet_aton(ip), b"\1")

    def remove(self, ip: str) -> None:
        """Stop answering for IP."""
        self.owned.delete(socket.inet_aton(ip))

    def replies(self) -> int:
        """Replies the kernel has sent so far."""
        raw = self.stats.get(bytes(4))
        return int.from_bytes(raw, "little") if raw else 0

    def close(self) -> None:
        """Detach (the link first, so nothing answers from a map being torn down) and release everything."""
        for obj in reversed(self._objects):
            obj.close()
        self._objects = []
