"""When each of several addresses first answers: a GET on a fresh connection to every one still silent, each
INTERVAL, until all have answered or DURATION passes.

Run inside the client namespace: `python -m e2e.probes.firstanswer HOST... [--port P] [--interval S]
[--timeout S] [--duration S]`. Prints `<host> <start> <end>` (monotonic seconds; CLOCK_MONOTONIC is system-wide,
so the caller compares them with its own) once per host, at its first answer. One thread per host, so a host
that times out delays no other.
"""

from __future__ import annotations

import argparse
import threading
import time

from e2e.probes.prober import once

_PRINT = threading.Lock()


def watch(host: str, port: int, interval: float, timeout: float, end: float) -> None:
    """Probe HOST until it answers once (printing when) or END passes."""
    while time.monotonic() < end:
        started = time.monotonic()
        if once(host, port, timeout):
            with _PRINT:
                print(f"{host} {started:.6f} {time.monotonic():.6f}", flush=True)
            return
        time.sleep(interval)


def main() -> None:
    """Probe every host given until each has answered once."""
    p = argparse.ArgumentParser()
    p.add_argument("hosts", nargs="+")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=0.2)
    p.add_argument("--duration", type=float, default=60.0)
    args = p.parse_args()
    end = time.monotonic() + args.duration
    threads = [threading.Thread(target=watch, args=(h, args.port, args.interval, args.timeout, end))
               for h in args.hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
