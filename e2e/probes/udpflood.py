"""Flood lab nodes' heartbeat port with what a speaker must refuse, as fast as one process can send.

`python -m e2e.probes.udpflood --seconds S --names node-1,node-2 [--key-file F] TARGET...` (in any lab
namespace) sends, round-robin over the targets, from an ephemeral source port: junk, well-formed
heartbeats naming each of NAMES signed with a wrong key (bad MAC), and, given the real key in F,
heartbeats naming each of NAMES signed with it (a valid MAC, from an address that is not that node's).
Targets must be lab node addresses. Stops by itself: at most 60 s and 20,000,000 datagrams. Prints one
JSON object: {"sent", "errors", "seconds", "rate"}.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import time
from pathlib import Path

from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind, encode

MAX_SECONDS, MAX_SENT = 60.0, 20_000_000
LAB_NETS = (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"))
PER_KIND = 32  # distinct datagrams of each kind and name, sent in turn


def datagrams(names: list[str], key: bytes | None) -> list[bytes]:
    """The flood's datagrams, kinds interleaved."""
    wrong = os.urandom(32)
    out = []
    for i in range(PER_KIND):
        out.append(os.urandom(48 + i))  # junk
        for name in names:
            msg = Heartbeat(Kind.ALIVE, name, int.from_bytes(os.urandom(8), "big") or 1, i + 1, 0)
            out.append(encode(msg, wrong))
            if key is not None:
                out.append(encode(msg, key))
    return out


def flood(targets: list[str], port: int, payloads: list[bytes], seconds: float, limit: int) -> dict[str, float]:
    """Send PAYLOADS round-robin to TARGETS for SECONDS (or LIMIT datagrams); what was sent."""
    socks = []
    for target in targets:
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.connect((target, port))
        except OSError:  # no route from here (e.g. IPv6 in a single-stack lab): the other targets still get it
            sock.close()
            continue
        socks.append(sock)
    if not socks:
        return {"sent": 0, "errors": 0, "seconds": 0.0, "rate": 0}
    sent = errors = 0
    start = time.monotonic()
    end = start + min(seconds, MAX_SECONDS)
    limit = min(limit, MAX_SENT)
    pairs = [(s.send, p) for p in payloads for s in socks]
    while sent + errors < limit and time.monotonic() < end:
        for send, payload in pairs:
            try:
                send(payload)
                sent += 1
            except OSError:  # a full buffer, or an ICMP error reported back: keep going
                errors += 1
    took = time.monotonic() - start
    for sock in socks:
        sock.close()
    return {"sent": sent, "errors": errors, "seconds": round(took, 2), "rate": round(sent / took)}


def main() -> None:
    """Flood until the time or the count is up."""
    p = argparse.ArgumentParser()
    p.add_argument("targets", nargs="+")
    p.add_argument("--port", type=int, default=7946)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--count", type=int, default=MAX_SENT)
    p.add_argument("--names", default="node-1,node-2,node-3")
    p.add_argument("--key-file", default="")
    args = p.parse_args()
    for target in args.targets:
        if not any(ipaddress.ip_address(target) in net for net in LAB_NETS):
            p.error(f"{target} is not a lab node address")
    key = Path(args.key_file).read_bytes() if args.key_file else None
    payloads = datagrams([n for n in args.names.split(",") if n], key)
    print(json.dumps(flood(args.targets, args.port, payloads, args.seconds, args.count)), flush=True)


if __name__ == "__main__":
    main()
