"""A scripted API server on 127.0.0.1 (HTTP or HTTPS) for the client's tests, and a throwaway PKI made with openssl."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    connection: int  # which TCP connection it came on (1, 2, ...)


@dataclass
class Reply:
    """What to answer: a JSON body, or raw chunks sent chunked (with a pause before each if asked)."""

    status: int = 200
    body: Any = None
    chunks: list[bytes] | None = None
    raw: bytes | None = None  # sent as is with a Content-Length (not JSON)
    close: bool = False  # say Connection: close, and close it
    hangup: bool = False  # close the connection after answering, though keep-alive was offered
    delay_s: float = 0.0  # wait this long before answering
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Reply]


class FakeApiServer:
    """Answers each request with the first route whose (method, path prefix) matches; 404 Status otherwise."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: list[tuple[str, str, Route]] = []
        self.requests: list[Request] = []
        self.connections = 0
        self.stop = threading.Event()  # set on shutdown: a delayed answer gives up waiting
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1
                self.number = server.connections

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                server.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def route(self, method: str, path: str, reply: Reply | Route) -> None:
        """Answer METHOD on paths starting with PATH with REPLY (or what the function makes of the request)."""
        self.routes.append((method, path, reply if callable(reply) else (lambda _r, _reply=reply: _reply)))

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeApiServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        """Read one request, record it, answer it."""
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        url = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        req = Request(h.command, url.path, query, dict(h.headers.items()), json.loads(raw) if raw else None,
                      h.number)  # type: ignore[attr-defined]
        self.requests.append(req)
        route = next((r for m, p, r in self.routes if m == req.method and req.path.startswith(p)), None)
        reply = route(req) if route else Reply(404, {"kind": "Status", "code": 404, "reason": "NotFound",
                                                     "message": f"{req.path} not found"})
        if reply.delay_s and self.stop.wait(reply.delay_s):
            return
        self._send(h, reply)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        h.send_response(reply.status)
        for k, v in reply.headers.items():
            h.send_header(k, v)
        if reply.close:
            h.send_header("Connection", "close")
            h.close_connection = True
        try:
            if reply.chunks is not None:
                h.send_header("Content-Type", "application/json")
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                for chunk in reply.chunks:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    h.wfile.flush()
                h.wfile.write(b"0\r\n\r\n")
                return
            data = reply.raw if reply.raw is not None else json.dumps(reply.body or {}).encode()
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away first (a test of stopping early)
        finally:
            if reply.close or reply.hangup:
                h.close_connection = True
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d: Path) -> Path:
    """A CA, a serving cert for 127.0.0.1 and a client cert, as PEM files in D (returned)."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             str(d / "ca.key"), "-out", str(d / "ca.crt"), "-subj", "/CN=test-ca", "-days", "2")
    for stem, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 str(d / f"{stem}.key"), "-out", str(d / f"{stem}.csr"), "-subj", f"/CN={stem}")
        (d / f"{stem}.ext").write_text(ext)
        _openssl("x509", "-req", "-in", str(d / f"{stem}.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
                 str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{stem}.ext"),
                 "-out", str(d / f"{stem}.crt"))
    return d


def server_tls(pki: Path, require_client_cert: bool = True) -> ssl.SSLContext:
    """The fake server's TLS: its cert, and (if asked) client certs checked against the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(pki / "ca.crt"))
    return ctx
