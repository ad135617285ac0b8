"""The health/metrics server under a connection flood and a /metrics loop, offline (loopback only, no lab).

Run: `python -m benchmarks.http_flood [--series 25000] [--connections 15000] [--seconds 15]`. A child process
serves a registry of SERIES series (as a speaker's per-IP series at that many owned IPs) the way the speaker
does: /metrics behind a token (a stand-in authorizer: no API server), /healthz and /readyz on a listener and
thread of their own, the control loop beating. The parent opens CONNECTIONS idle or slow connections from many
loopback source addresses (127.0.x.y, a few per address, so the per-client cap does not turn them all away),
loops /metrics with a valid token from SCRAPERS threads, and asks /healthz every 50 ms.

The last line printed is one JSON object: /healthz latency (p50, p99, max, ms) and failures, the server's RSS
(before, peak; MB), renders and pages served, one render's time (ms), and the server's refusals by reason.
`--unprotected` serves as the server did before its caps, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._figures import percentile, report

TOKEN = "bench"


def serve(series: int, unprotected: bool) -> None:
    """The child: serve until stdin closes; print ports first and figures last."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    from ironlb.common import http as http_mod
    from ironlb.common.http import HealthServer
    from ironlb.common.httpauth import Access

    renders = [0, 0.0]

    class Series:
        def collect(self) -> Iterator[Any]:
            started = time.perf_counter()
            family = GaugeMetricFamily("ironlb_speaker_announcing", "bench", labels=["ip", "interface"])
            for i in range(series):
                family.add_metric([f"198.18.{i >> 8 & 255}.{i & 255}", "eth0"], 1)
            yield family
            renders[0] += 1
            renders[1] = max(renders[1], time.perf_counter() - started)

    class Token:
        async def check(self, authorization: str | None) -> Access:
            return Access.ALLOWED if authorization == f"Bearer {TOKEN}" else Access.UNAUTHENTICATED

    async def main() -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Series())  # type: ignore[arg-type]
        if unprotected:  # as before the caps: one listener on the loop, no cap, a render per scrape
            http_mod.RENDER_EVERY_S = 0.0
            server = HealthServer(registry, lambda: (True, "ready"), "127.0.0.1", 0, authorizer=Token(),
                                  max_connections=1 << 30, max_per_client=1 << 30)
        else:
            server = HealthServer(registry, lambda: (True, "ready"), "127.0.0.1", 0, health=("127.0.0.1", 0),
                                  authorizer=Token())
        await server.start()
        health = server.health.listener.port if server.health else server.port
        print(json.dumps({"metrics": server.port, "health": health}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent is done
        refused = {f"{lst.name}:{r.value}": n for lst in server.listeners for r, n in lst.refused.items() if n}
        await server.stop()
        print(json.dumps({"renders": renders[0], "render_ms": round(renders[1] * 1000, 1), "refused": refused}),
              flush=True)

    asyncio.run(main())


def rss_mb(pid: int) -> float:
    """Resident memory of PID, MB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def flood(port: int, count: int, until: float, held: list[int]) -> None:
    """Open COUNT connections from 127.0.x.y sources (idle; every third trickles a head) and keep them up."""
    socks: list[socket.socket] = []
    for i in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.bind((f"127.0.{1 + i // 4 // 250}.{1 + i // 4 % 250}", 0))  # four per source address
            sock.connect_ex(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        socks.append(sock)
        if time.monotonic() > until:
            break
    held.append(len(socks))
    while time.monotonic() < until:
        for sock in socks[::3]:
            with contextlib.suppress(OSError):
                sock.send(b"G")
        time.sleep(1.0)
    for sock in socks:
        sock.close()


def scrape(port: int, until: float, counts: dict[str, int]) -> None:
    """/metrics with the token, again and again."""
    while time.monotonic() < until:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            resp = conn.getresponse()
            body = resp.read()
            key = str(resp.status)
            counts["bytes"] = len(body)
        except (OSError, http.client.HTTPException):
            key = "error"
            time.sleep(0.05)
        finally:
            conn.close()
        counts[key] = counts.get(key, 0) + 1


def probe(port: int, until: float, latencies: list[float], failures: list[str]) -> None:
    """/healthz every 50 ms on a fresh connection (as kubelet does), timing each."""
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            conn.close()
            if status != 200:
                failures.append(str(status))
        except (OSError, http.client.HTTPException) as exc:
            failures.append(type(exc).__name__)
        latencies.append(time.monotonic() - started)
        time.sleep(0.05)


def main() -> None:
    """Run the child server, flood and scrape it, print the figures."""
    p = argparse.ArgumentParser(prog="benchmarks.http_flood", description=__doc__)
    p.add_argument("--series", type=int, default=25_000)
    p.add_argument("--connections", type=int, default=15_000)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--scrapers", type=int, default=4)
    p.add_argument("--unprotected", action="store_true", help="serve as before the caps, for comparison: one "
                   "listener on the control loop, no connection cap, a render per scrape")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve is not None:
        serve(args.serve, args.unprotected)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    count = min(args.connections, hard - 256)
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.http_flood", "--serve", str(args.series),
                              *(["--unprotected"] if args.unprotected else [])],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    ports = json.loads(child.stdout.readline())
    time.sleep(0.5)
    before = rss_mb(child.pid)
    until = time.monotonic() + args.seconds
    held: list[int] = []
    counts: dict[str, int] = {}
    latencies: list[float] = []
    failures: list[str] = []
    threads = [threading.Thread(target=flood, args=(ports["metrics"], count, until, held), daemon=True),
               threading.Thread(target=probe, args=(ports["health"], until, latencies, failures), daemon=True),
               *(threading.Thread(target=scrape, args=(ports["metrics"], until, counts), daemon=True)
                 for _ in range(args.scrapers))]
    for thread in threads:
        thread.start()
    peak = before
    while time.monotonic() < until:
        peak = max(peak, rss_mb(child.pid))
        time.sleep(0.2)
    for thread in threads:
        thread.join(10)
    child.stdin.close()
    server = json.loads(child.stdout.readline())
    child.wait(10)
    report({"healthz_p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "healthz_p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "healthz_max_ms": round(max(latencies) * 1000, 2), "healthz_probes": len(latencies),
            "healthz_failures": len(failures), "rss_mb_before": round(before, 1), "rss_mb_peak": round(peak, 1),
            "connections_opened": held[0] if held else 0, "series": args.series,
            "scrapes_ok": counts.get("200", 0), "scrapes_failed": counts.get("error", 0),
            "page_bytes": counts.get("bytes", 0), "renders": server["renders"], "render_ms": server["render_ms"],
            "refused": server["refused"], "unprotected": args.unprotected})


if __name__ == "__main__":
    main()
