"""What a refused heartbeat datagram costs the speaker, by where it is refused (no lab needed).

Figures: us_bad_mac_1key / us_bad_mac_3keys (a well-formed heartbeat from a peer's address and port with a
wrong MAC: decoded and checked against every accepted key), us_not_a_peer (from any other source: refused
before decoding), us_malformed (junk from a peer's address); and, on a real socket over loopback,
kernel_dropped_share: the share of a burst from a non-peer that the socket filter kept from user space.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

from ironlb.speaker.fast.liveness.protocol import Heartbeat, KeySet, Kind, encode
from ironlb.speaker.fast.liveness.transport import Liveness

N = 100_000
PEER, PORT = "192.0.2.12", 7946


def per_datagram_us(live: Liveness, data: bytes, source: tuple[str, int]) -> float:
    """Mean microseconds of `datagram_received` over N copies of DATA from SOURCE."""
    feed = live.datagram_received
    start = time.perf_counter()
    for _ in range(N):
        feed(data, source)
    return round((time.perf_counter() - start) / N * 1e6, 3)


def user_space() -> dict[str, float]:
    """Per-datagram costs of each refusal."""
    keys = KeySet(os.urandom(32), (os.urandom(32), os.urandom(32)))
    bad = encode(Heartbeat(Kind.ALIVE, "b", 5, 1, 0), os.urandom(32))
    out = {}
    for label, key in (("1key", KeySet(keys.send)), ("3keys", keys)):
        live = Liveness("a", key, PORT, lambda _: None)
        live.set_peers({"b": PEER})
        out[f"us_bad_mac_{label}"] = per_datagram_us(live, bad, (f"::ffff:{PEER}", PORT))
    live = Liveness("a", keys, PORT, lambda _: None)
    live.set_peers({"b": PEER})
    out["us_not_a_peer"] = per_datagram_us(live, bad, ("::ffff:198.51.100.9", 40000))
    out["us_malformed"] = per_datagram_us(live, os.urandom(90), (f"::ffff:{PEER}", PORT))
    return out


async def kernel_share(burst: int = 20_000) -> float:
    """Share of BURST datagrams from a non-peer (127.0.0.2) that never reached the speaker's socket."""
    live = Liveness("a", os.urandom(32), 0, lambda _: None)
    await live.start("::")
    port = live._sock.getsockname()[1]  # type: ignore[union-attr]
    live.port = port
    live.set_peers({"b": "127.0.0.1"})  # the filter now admits 127.0.0.1:PORT only
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.2", 0))
    for _ in range(burst):
        tx.sendto(b"x" * 90, ("127.0.0.1", port))
    await asyncio.sleep(0.2)
    tx.close()
    seen = live.counters.rejected.get("not-a-peer", 0)
    await live.close()
    return round(1 - seen / burst, 4)


def main() -> int:
    """Measure and print the figures."""
    figures = user_space()
    figures["kernel_dropped_share"] = asyncio.run(kernel_share())
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
