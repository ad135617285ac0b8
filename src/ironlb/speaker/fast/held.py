"""Socket calls that keep the GIL, for the fast plane's packet sockets.

A CPython socket call releases the GIL around the system call and must win it back afterwards. While
another thread is busy in Python, each win waits for that thread to give the GIL up, up to the switch
interval: a heartbeat round is one sendto per peer, and a round made that way took far longer than one
made holding the GIL (docs/design.md, "Measurements behind the code"). The fast plane now has a process of its
own with one thread, where there is nobody to wait for. There a held call is not free: it goes through ctypes,
and costs a few times the socket module's own call, so the heartbeat socket, read and written every round,
uses the socket module's (docs/design.md, "Idle cost of a fast plane"); the packet sockets, quiet unless
something is asked, keep these. Every socket here is non-blocking, so a call that keeps the GIL returns at
once (EAGAIN at worst).

`HeldSocket` has the few methods of `socket.socket` the fast plane uses, with the same results and
exceptions (BlockingIOError, InterruptedError, OSError), so fakes stand in for it in unit tests.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

# PyDLL, not CDLL: a PyDLL call does not release the GIL. use_errno: errno is saved for get_errno.
_libc = ctypes.PyDLL(None, use_errno=True)
_libc.sendto.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint32]
_libc.sendto.restype = ctypes.c_ssize_t
_libc.send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
_libc.send.restype = ctypes.c_ssize_t
_libc.recvfrom.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p,
                           ctypes.POINTER(ctypes.c_uint32)]
_libc.recvfrom.restype = ctypes.c_ssize_t

MSG_DONTWAIT = 0x40  # belt and braces: the sockets are non-blocking already
_SOCKADDR_IN6 = struct.Struct("=H2sI16sI")  # family (host order), port (network order), flowinfo, addr, scope
_SOCKADDR_LL_HEAD = struct.Struct("=H2siHBB")  # family, protocol (network order), ifindex, hatype, pkttype, halen
_ADDR_BUF = 128  # as large as any sockaddr


def _raise(code: int) -> None:
    if code in (errno.EAGAIN, errno.EWOULDBLOCK):
        raise BlockingIOError(code, os.strerror(code))
    if code == errno.EINTR:
        raise InterruptedError(code, os.strerror(code))
    raise OSError(code, os.strerror(code))


def sockaddr_in6(host: str, port: int) -> bytes:
    """The struct sockaddr_in6 for HOST (IPv6, or IPv4-mapped `::ffff:a.b.c.d`) and PORT."""
    return _SOCKADDR_IN6.pack(socket.AF_INET6, port.to_bytes(2, "big"), 0,
                              socket.inet_pton(socket.AF_INET6, host), 0)


class HeldSocket:
    """A non-blocking socket whose send and receive calls keep the GIL (see the module docstring)."""

    def __init__(self, sock: socket.socket, ifname: str = "") -> None:
        if sock.getblocking():
            raise ValueError("a HeldSocket must be non-blocking: a call that holds the GIL must never wait")
        self.sock, self.family, self.ifname = sock, sock.family, ifname
        self._fd = sock.fileno()
        self._buf = ctypes.create_string_buffer(65536)
        self._addr = ctypes.create_string_buffer(_ADDR_BUF)
        self._addrlen = ctypes.c_uint32(_ADDR_BUF)
        self._sockaddrs: dict[tuple[str, int], bytes] = {}

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self._fd

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        """Send one datagram to (host, port) of an AF_INET6 socket; bytes sent."""
        sockaddr = self._sockaddrs.get(addr)
        if sockaddr is None:
            sockaddr = self._sockaddrs[addr] = sockaddr_in6(*addr)
        sent = _libc.sendto(self._fd, data, len(data), MSG_DONTWAIT, sockaddr, len(sockaddr))
        if sent < 0:
            _raise(ctypes.get_errno())
        return sent

    def send(self, data: bytes) -> int:
        """Send DATA on a bound (or connected) socket; bytes sent."""
        sent = _libc.send(self._fd, data, len(data), MSG_DONTWAIT)
        if sent < 0:
            _raise(ctypes.get_errno())
        return sent

    def recvfrom(self, size: int) -> tuple[bytes, tuple]:
        """One datagram or frame and its source, as `socket.recvfrom` gives them for AF_INET6 and AF_PACKET."""
        self._addrlen.value = _ADDR_BUF
        got = _libc.recvfrom(self._fd, self._buf, min(size, len(self._buf)), MSG_DONTWAIT, self._addr,
                             ctypes.byref(self._addrlen))
        if got < 0:
            _raise(ctypes.get_errno())
        return ctypes.string_at(self._buf, got), self._source()

    def _source(self) -> tuple:
        raw = self._addr.raw
        if self.family == socket.AF_INET6:
            _, port, flowinfo, addr, scope = _SOCKADDR_IN6.unpack_from(raw)
            return socket.inet_ntop(socket.AF_INET6, addr), int.from_bytes(port, "big"), flowinfo, scope
        if self.family == socket.AF_PACKET:
            _, proto, _, hatype, pkttype, halen = _SOCKADDR_LL_HEAD.unpack_from(raw)
            head = _SOCKADDR_LL_HEAD.size
            return self.ifname, int.from_bytes(proto, "big"), pkttype, hatype, raw[head:head + halen]
        raise ValueError(f"no source address format for family {self.family}")
