"""Record UDP datagrams between two lab nodes, and send the recording again: a LAN replay attack.

`python -m e2e.probes.udpreplay record --src IP --port P --seconds S OUT` (in the receiving node's
namespace) writes every IPv4 packet from IP to UDP port P seen on eth0, one hex line each.
`python -m e2e.probes.udpreplay replay IN [--times N] [--rate R]` (in the client namespace) sends
those packets again as they were, source address included. `python -m e2e.probes.udpreplay chase IN --src IP
--port P --seconds S` (in the receiving node's namespace: a host-network process with NET_RAW) sends the
next recorded packets right after each real one from IP to port P arrives, so the receiver reads the
recording last. All stop by themselves: at most 60 s of recording or chasing and 10,000 packets sent.
Each prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import time

ETH_P_IP = 0x0800
MAX_SECONDS, MAX_SENT = 60.0, 10_000


def record(src: str, port: int, seconds: float, out: str, iface: str) -> dict[str, int]:
    """Write the matching packets seen within SECONDS to OUT."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((iface, 0))
    want = socket.inet_aton(src)
    kept = []
    deadline = time.monotonic() + min(seconds, MAX_SECONDS)
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        frame, addr = sock.recvfrom(65535)
        ip = frame[14:]
        if addr[2] == 4 or len(ip) < 28 or ip[9] != 17 or ip[12:16] != want:  # outgoing, not UDP, not from SRC
            continue
        ihl = (ip[0] & 0x0F) * 4
        if struct.unpack_from("!H", ip, ihl + 2)[0] == port:
            kept.append(ip.hex())
    with open(out, "w") as fh:
        fh.write("\n".join(kept) + ("\n" if kept else ""))
    return {"recorded": len(kept)}


def _fold(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_udp_checksum(packet: bytes) -> bytes:
    """PACKET with its UDP checksum computed: one recorded on a veth carries only the partial sum
    (the sender's kernel left the rest to an offload that never happened)."""
    ihl = (packet[0] & 0x0F) * 4
    udp = bytearray(packet[ihl:])
    udp[6:8] = b"\0\0"
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    udp[6:8] = struct.pack("!H", _fold(pseudo + bytes(udp)) or 0xFFFF)
    return packet[:ihl] + bytes(udp)


def replay(path: str, times: int, rate: float) -> dict[str, int]:
    """Send the recorded packets again (UDP payload and addresses as recorded), TIMES over, at RATE per second."""
    with open(path) as fh:
        packets = [with_udp_checksum(bytes.fromhex(line.strip())) for line in fh if line.strip()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # header included: source kept
    sent = 0
    for _ in range(times):
        for packet in packets:
            if sent >= MAX_SENT:
                return {"sent": sent}
            dst = socket.inet_ntoa(packet[16:20])
            sock.sendto(packet, (dst, 0))
            sent += 1
            time.sleep(1.0 / rate)
    return {"sent": sent}


def _matches(frame: bytes, want: bytes, port: int) -> bool:
    """Is FRAME an IPv4 UDP packet from WANT to PORT?"""
    ip = frame[14:]
    if len(ip) < 28 or ip[9] != 17 or ip[12:16] != want:
        return False
    return struct.unpack_from("!H", ip, (ip[0] & 0x0F) * 4 + 2)[0] == port


def chase(path: str, src: str, port: int, seconds: float, each: int, iface: str) -> dict[str, int]:
    """After each packet from SRC to PORT arriving on IFACE, send the next EACH recorded ones (for SECONDS)."""
    with open(path) as fh:
        packets = [with_udp_checksum(bytes.fromhex(line.strip())) for line in fh if line.strip()]
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sniff.bind((iface, 0))
    out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    want, sent, seen, i = socket.inet_aton(src), 0, 0, 0
    deadline = time.monotonic() + min(seconds, MAX_SECONDS)
    while sent < MAX_SENT and (left := deadline - time.monotonic()) > 0:
        if not select.select([sniff], [], [], left)[0]:
            break
        frame, addr = sniff.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING or not _matches(frame, want, port):
            continue
        seen += 1
        for _ in range(each):
            packet = packets[i % len(packets)]
            i += 1
            out.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))
            sent += 1
    return {"seen": seen, "sent": sent}


def main() -> None:
    """Record or replay."""
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out")
    r.add_argument("--src", required=True)
    r.add_argument("--port", type=int, default=7946)
    r.add_argument("--seconds", type=float, default=5.0)
    r.add_argument("--iface", default="eth0")
    s = sub.add_parser("replay")
    s.add_argument("path")
    s.add_argument("--times", type=int, default=1)
    s.add_argument("--rate", type=float, default=200.0)
    c = sub.add_parser("chase")
    c.add_argument("path")
    c.add_argument("--src", required=True)
    c.add_argument("--port", type=int, default=7946)
    c.add_argument("--seconds", type=float, default=10.0)
    c.add_argument("--each", type=int, default=2)
    c.add_argument("--iface", default="eth0")
    args = p.parse_args()
    if args.cmd == "record":
        print(json.dumps(record(args.src, args.port, args.seconds, args.out, args.iface)))
    elif args.cmd == "chase":
        print(json.dumps(chase(args.path, args.src, args.port, args.seconds, args.each, args.iface)))
    else:
        print(json.dumps(replay(args.path, args.times, args.rate)))


if __name__ == "__main__":
    main()
