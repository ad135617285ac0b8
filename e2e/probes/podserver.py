"""A lab pod's process: an HTTP server that answers every GET with its pod name
(and GET /bytes/N with N zero bytes, for the datapath benchmark's throughput). HTTP/1.1 requests
keep their connection open (keep-alive), so a client can hold a long-lived connection to one pod.

With --drain-seconds, SIGTERM does not stop it at once: it goes on serving that long, as the Kubernetes
docs ask of a workload (its endpoint is marked terminating meanwhile, and load balancers move away from it),
then exits."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main() -> None:
    """Serve the pod name on PORT (IPv4 and IPv6)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--drain-seconds", type=float, default=0.0, help="seconds served after SIGTERM")
    args = parser.parse_args()
    if args.drain_seconds > 0:
        exit_later = threading.Timer(args.drain_seconds, os._exit, (0,))
        exit_later.daemon = True
        signal.signal(signal.SIGTERM, lambda *_: exit_later.start() if not exit_later.is_alive() else None)
    body = f"{args.name}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for HTTP/1.1 clients; an HTTP/1.0 client gets one answer

        def do_GET(self) -> None:
            if self.path.startswith("/bytes/") and self.path[7:].isdigit():
                self._send_bytes(int(self.path[7:]))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Client-Address", self.client_address[0])
            self.end_headers()
            self.wfile.write(body)

        def _send_bytes(self, size: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = memoryview(bytes(1 << 16))
            while size > 0:
                self.wfile.write(chunk[:min(size, len(chunk))])
                size -= len(chunk)

        def log_message(self, format: str, *args: object) -> None:
            return

    _DualStackServer(("::", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
