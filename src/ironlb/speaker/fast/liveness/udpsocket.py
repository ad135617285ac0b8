"""The heartbeat socket: one UDP socket for IPv4 and IPv6, with deep buffers."""

from __future__ import annotations

import socket

# A peer whose address does not resolve (a powered-off node still in the Node list) holds each datagram
# in the kernel's neighbour queue for seconds, charged to our send buffer: with many such peers a buffer
# fills and heartbeats to live peers are dropped (docs/design.md, "Measurements behind the code").
# So such peers are probed now and then only (probes.PROBE_S); the buffer is deep, and a full one drops.
SNDBUF_BYTES = 4 << 20
SO_SNDBUFFORCE = 32
# The receive buffer holds what arrives while the loop is busy elsewhere (a round of sends, a stall): a deep
# one keeps a burst of real heartbeats from being dropped. Non-peers never take a place in it (sourcefilter).
RCVBUF_BYTES = 4 << 20
SO_RCVBUFFORCE = 33


def bind(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to HOST:PORT (IPv4 too), its buffers as deep as allowed."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF_BYTES)
        except OSError:  # without CAP_NET_ADMIN: as much as the system allows
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except OSError:  # without CAP_NET_ADMIN: capped by net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        # No SO_REUSEADDR: nothing else on this node may bind the port, so nothing else can send from it
        # (peers accept heartbeats from this port only: sourcefilter).
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
