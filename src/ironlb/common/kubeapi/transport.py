"""HTTP/1.1 to one API server over http.client, with a small pool of kept-alive connections.

http.client rather than urllib3 or aiohttp's client: it is already loaded, costs no memory, and the
callers are threads (informers, the default executor), which a blocking client with a lock-guarded
pool serves simply. Every request has a connect timeout (TCP and TLS handshake) and a read timeout
(the longest silence while waiting for or reading the response). Every failure is an OSError:
http.client's own protocol errors are raised as ProtocolError.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
from collections.abc import Iterator, Mapping

Timeout = tuple[float, float]  # (connect, read) seconds
IDLE_S = 60.0  # a connection idle longer than this is closed rather than reused (proxies drop them)
# Safe to send again when a kept-alive connection turns out closed by the server before it answered.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class ProtocolError(ConnectionError):
    """The server's answer was not HTTP we could read (cut mid-response, bad status line, ...)."""


class Connection(http.client.HTTPConnection):
    """One HTTP or HTTPS connection: its connect (TCP and TLS handshake) has a timeout of its own."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, server_name: str | None,
                 connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.context, self.server_name = context, server_name
        self.default_port = 443 if context is not None else 80  # the Host header names the port only if not this
        self.idle_since = time.monotonic()

    def connect(self) -> None:
        """TCP, then TLS when the server is https (checked against tls-server-name, else the host)."""
        super().connect()
        if self.context is not None:
            self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name or self.host)

    def dropped(self) -> bool:
        """True if the server has closed (or written unasked to) this idle connection."""
        sock = self.sock
        if sock is None:
            return True
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        poller = select.poll()  # not select(): it fails for descriptors above 1023
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))


class Pool:
    """Kept-alive connections to one server; any number in use, at most MAXSIZE kept idle."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, server_name: str | None = None,
                 maxsize: int = 16, idle_s: float = IDLE_S) -> None:
        self.host, self.port, self.context, self.server_name = host, port, context, server_name
        self.maxsize, self.idle_s = maxsize, idle_s
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self, timeout: Timeout) -> tuple[Connection, bool]:
        """A connected connection set to TIMEOUT's read timeout, and whether it was reused."""
        while (conn := self._pop()) is not None:
            if time.monotonic() - conn.idle_since < self.idle_s and not conn.dropped():
                assert conn.sock is not None
                conn.sock.settimeout(timeout[1])
                return conn, True
            conn.close()
        conn = Connection(self.host, self.port, self.context, self.server_name, timeout[0])
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        assert conn.sock is not None
        conn.sock.settimeout(timeout[1])
        return conn, False

    def put(self, conn: Connection) -> None:
        """Give back a connection whose response was read to its end (closed instead if it cannot be kept)."""
        conn.idle_since = time.monotonic()
        with self._lock:
            if conn.sock is not None and not self._closed and len(self._idle) < self.maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _pop(self) -> Connection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None  # the most recently used: the least likely dropped


class Exchange:
    """A response being read; its connection goes back to the pool once the body is read to its end."""

    def __init__(self, pool: Pool, conn: Connection, response: http.client.HTTPResponse) -> None:
        self.pool, self.conn, self.response = pool, conn, response
        self.status, self.reason = response.status, response.reason
        self._done = False

    def read(self) -> bytes:
        """The whole body."""
        try:
            data = self.response.read()
        except http.client.HTTPException as exc:
            self.close()
            raise ProtocolError(f"response cut short: {exc!r}") from exc
        except BaseException:
            self.close()
            raise
        self._finish()
        return data

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        """The body as it arrives (each piece at most SIZE bytes; waits at most the read timeout for one)."""
        try:
            while chunk := self.response.read1(size):
                yield chunk
        except http.client.HTTPException as exc:
            self.close()
            raise ProtocolError(f"stream cut short: {exc!r}") from exc
        except BaseException:  # a timeout, a reset, or the reader stopping early: the connection cannot be reused
            self.close()
            raise
        self._finish()

    def close(self) -> None:
        """Stop reading: the connection is closed (a half-read response cannot be reused)."""
        if not self._done:
            self._done = True
            self.response.close()
            self.conn.close()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self.response.isclosed() and not self.response.will_close:
            self.pool.put(self.conn)
        else:
            self.response.close()
            self.conn.close()


def send(pool: Pool, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
         timeout: Timeout) -> Exchange:
    """Send one request and read the response's head; the body is the caller's to read (or close)."""
    retried = False
    while True:
        conn, reused = pool.get(timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            return Exchange(pool, conn, conn.getresponse())
        except ConnectionError as exc:
            conn.close()
            # The server closed a kept-alive connection as we sent: nothing was answered, so a request
            # safe to repeat goes once more, on a new connection.
            if reused and not retried and method in IDEMPOTENT:
                retried = True
                continue
            if isinstance(exc, http.client.HTTPException):
                raise ProtocolError(f"{method} {path}: {exc!r}") from exc
            raise
        except http.client.HTTPException as exc:
            conn.close()
            raise ProtocolError(f"{method} {path}: {exc!r}") from exc
        except BaseException:
            conn.close()
            raise


def resolve_timeout(value: float | Timeout) -> Timeout:
    """(connect, read) from a single number (both) or a pair."""
    if isinstance(value, tuple):
        return float(value[0]), float(value[1])
    return float(value), float(value)

