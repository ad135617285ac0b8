"""The in-kernel ARP responder on a real veth pair: it answers exactly what the user-space responder answers, with the
same bytes, hands everything else on untouched, and stops answering when closed or when its process dies."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.kernel_arp import KernelArp, NodeMaps
from ironlb.speaker.fast.l2.responder import Responder
from tests.fakeio import FakePacketIO
from tests.privileged.wire import FAR_MAC, NEAR_MAC, OTHER_OWN_MAC, Wire, near_mac, wire

OWNED, OTHER_OWNED, NOT_OWNED, ASKER = "203.0.113.10", "203.0.113.11", "203.0.113.99", "192.0.2.50"
FAR, OTHER_OWN = pk.mac_bytes(FAR_MAC), pk.mac_bytes(OTHER_OWN_MAC)
ZERO_MAC = bytes(6)
STRANGER = pk.mac_bytes("02:00:00:00:01:0d")  # another host on the segment


pytestmark = pytest.mark.privileged  # bpf(2) with CAP_BPF and CAP_NET_ADMIN, a network namespace


@pytest.fixture
def pair() -> Iterator[tuple[Wire, KernelArp, NodeMaps]]:
    """The responder on near0, owning OWNED and OTHER_OWNED; this node's MACs are near0's and OTHER_OWN."""
    with wire("karp") as w:
        macs = NodeMaps()
        macs.set_macs(frozenset({near_mac(), OTHER_OWN}))
        macs.renew(3600)
        kernel = KernelArp(w.near_index, near_mac(), macs)
        kernel.add(OWNED)
        kernel.add(OTHER_OWNED)
        try:
            yield w, kernel, macs
        finally:
            kernel.close()
            macs.close()


def request(target: str, sender_ip: str = ASKER, sender_mac: bytes = FAR, eth_src: bytes = FAR,
            eth_dst: bytes = pk.BROADCAST, op: int = pk.ARP_REQUEST) -> bytes:
    """An ARP frame as the far host would send it."""
    frame = pk.build_arp(op, eth_dst, sender_mac, sender_ip, ZERO_MAC, target)
    return frame[:6] + eth_src + frame[12:]


@pytest.mark.parametrize("case, frame, expected", [
    ("a request for an owned IP", request(OWNED), "answered"),
    ("a unicast request (the kernel's reachability probe)", request(OWNED, eth_dst=pk.mac_bytes(NEAR_MAC)),
     "answered"),
    ("an ARP probe (sender 0.0.0.0) for an owned IP", request(OWNED, sender_ip="0.0.0.0"), "answered"),
    ("a request for an IP not owned here", request(NOT_OWNED), "passed"),
    ("a request to another host's MAC (heard only as a promiscuous interface hears it)",
     request(OWNED, eth_dst=STRANGER), "passed"),
    ("a sender claiming an owned IP: another host answering", request(OWNED, sender_ip=OTHER_OWNED), "passed"),
    ("a gratuitous ARP for an owned IP from another host", request(OWNED, sender_ip=OWNED), "passed"),
    ("a request from another of this node's MACs", request(OWNED, sender_mac=OTHER_OWN, eth_src=OTHER_OWN),
     "passed"),
    ("an ARP sender that is one of ours behind a foreign source", request(OWNED, sender_mac=OTHER_OWN), "passed"),
    ("a reply, not a request", request(OWNED, op=pk.ARP_REPLY), "passed"),
    ("an unknown operation", request(OWNED, op=3), "passed"),
    ("a truncated frame", request(OWNED)[:40], "passed"),
    ("another protocol size", request(OWNED)[:19] + b"\x10" + request(OWNED)[20:], "passed"),
    ("another hardware type", request(OWNED)[:14] + b"\x00\x06" + request(OWNED)[16:], "passed"),
])
def test_answers_what_user_space_would(pair: tuple[Wire, KernelArp, NodeMaps], case: str, frame: bytes,
                                       expected: str) -> None:
    w, kernel, _ = pair
    outcome, data = w.outcome(frame)
    assert outcome == expected, case
    if expected == "answered":
        fields = pk.arp_fields(frame)
        assert fields is not None
        assert data == pk.arp_reply_raw(near_mac(), fields[2], fields[3], fields[5]), case
    else:
        assert data == frame, case  # handed on exactly as it came
    assert w.quiet(), case  # one outcome, never both
    assert kernel.replies() == (1 if expected == "answered" else 0), case


def test_random_frames_get_the_user_space_responders_answer(pair: tuple[Wire, KernelArp, NodeMaps]) -> None:
    """Frames made of owned, foreign and own addresses: where the responder would answer, the kernel sends its
    bytes; where it would not, the frame reaches the responder untouched."""
    w, kernel, _ = pair
    user = Responder("near0", NEAR_MAC, arp := FakePacketIO(), own_macs=frozenset({near_mac(), OTHER_OWN}))
    user.set_owned({OWNED, OTHER_OWNED})
    rng = random.Random(11)
    ips, macs = [OWNED, OTHER_OWNED, NOT_OWNED, ASKER, "0.0.0.0"], [FAR, OTHER_OWN, near_mac(), b"\x02" * 6]
    answered = 0
    for _ in range(300):
        frame = request(rng.choice(ips[:2] * 3 + ips[2:]), rng.choice(ips), rng.choice(macs[:1] * 6 + macs[1:]),
                        rng.choice(macs[:1] * 6 + macs[1:]), rng.choice([pk.BROADCAST, near_mac()]),
                        rng.choice([1, 1, 1, 2]))
        arp.sent.clear()
        user.on_arp(frame)
        outcome, data = w.outcome(frame)
        if arp.sent:
            assert (outcome, data) == ("answered", arp.sent[0]), frame.hex()
            answered += 1
        else:
            assert (outcome, data) == ("passed", frame), frame.hex()
    assert w.quiet()
    assert answered > 20 and kernel.replies() == answered


def test_an_ip_given_up_is_no_longer_answered(pair: tuple[Wire, KernelArp, NodeMaps]) -> None:
    w, kernel, _ = pair
    kernel.remove(OWNED)
    assert w.outcome(request(OWNED))[0] == "passed"
    kernel.add(OWNED)
    assert w.outcome(request(OWNED))[0] == "answered"


def test_own_macs_follow_the_node(pair: tuple[Wire, KernelArp, NodeMaps]) -> None:
    w, _, macs = pair
    macs.set_macs(frozenset({near_mac()}))  # the other interface went away: its MAC is a stranger's now
    assert w.outcome(request(OWNED, sender_mac=OTHER_OWN, eth_src=OTHER_OWN))[0] == "answered"
    macs.set_macs(frozenset({near_mac(), OTHER_OWN}))
    assert w.outcome(request(OWNED, sender_mac=OTHER_OWN, eth_src=OTHER_OWN))[0] == "passed"


def test_past_the_lease_nothing_is_answered(pair: tuple[Wire, KernelArp, NodeMaps]) -> None:
    """A fast plane whose loop stopped renewing (frozen, wedged) answers nothing in the kernel either."""
    w, _, maps = pair
    maps.renew(0.05)
    assert w.outcome(request(OWNED))[0] == "answered"
    time.sleep(0.1)
    assert w.outcome(request(OWNED))[0] == "passed"
    maps.renew(1)
    assert w.outcome(request(OWNED))[0] == "answered"


def test_closing_detaches(pair: tuple[Wire, KernelArp, NodeMaps]) -> None:
    w, kernel, _ = pair
    kernel.close()
    assert w.outcome(request(OWNED))[0] == "passed"


HOLDER = """
import socket, sys, time
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.kernel_arp import KernelArp, NodeMaps
macs = NodeMaps()
macs.renew(3600)
kernel = KernelArp(socket.if_nametoindex("near0"), pk.mac_bytes(sys.argv[1]), macs)
kernel.add(sys.argv[2])
print("ready", flush=True)
time.sleep(60)
"""


def test_a_killed_process_answers_nothing_more() -> None:
    """SIGKILL leaves no program behind: a dead speaker never answers for an IP a peer has taken over."""
    with wire("karpkill") as w:
        holder = subprocess.Popen(["ip", "netns", "exec", w.netns, sys.executable, "-c", HOLDER, NEAR_MAC, OWNED],
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      sys.path)})
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            assert w.outcome(request(OWNED))[0] == "answered"
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            assert w.outcome(request(OWNED))[0] == "passed"
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(10)
            if holder.stdout is not None:
                holder.stdout.close()


def test_an_interface_that_vanishes_takes_the_program_with_it(pair: tuple[Wire, KernelArp, NodeMaps]) -> None:
    w, kernel, _ = pair
    subprocess.run(["ip", "-n", w.netns, "link", "del", "near0"], check=True)
    kernel.remove(OWNED)  # the map outlives the link: no error for the fast plane to trip on
    kernel.close()
    assert not {"near0", "far0"} & {name for _, name in socket.if_nameindex()}  # really gone, pair and all
