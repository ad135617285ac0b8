"""Many Services created, and counted, at the API server's pace rather than the Python client's.

The client deserialises every response into model objects, and one interpreter holds the GIL: a thread pool in
one process spends its time there, not waiting on the API server. Creation is spread over processes, each with
a few threads, reading no response bodies; listings are parsed as plain JSON.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from benchmarks._lab import core_api

RETRIES = 5
RETRY_STATUSES = (429, 500, 503, 504)  # the API server shedding load or timing out: try again
PROGRESS_EVERY_S = 10.0
MakeBody = Callable[[str], dict[str, Any]]


class CreationTooSlow(RuntimeError):
    """The Services were not all created within the time allowed."""


def create_all(namespace: str, names: list[str], make_body: MakeBody, processes: int = 4, threads: int = 8,
               timeout_s: float = float("inf")) -> float:
    """Create a Service MAKE_BODY(name) for every name, from PROCESSES processes of THREADS threads; the seconds
    taken. Prints a progress line now and then; raises if a process failed, or CreationTooSlow (the creating
    processes stopped) when TIMEOUT_S passed first."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no client, pool or thread inherited from this one
    done: Synchronized[int] = ctx.Value("q", 0)
    workers = [ctx.Process(target=_create_share, args=(namespace, names[k::processes], make_body, threads, done))
               for k in range(processes)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    while any(w.is_alive() for w in workers):
        for worker in workers:
            worker.join(timeout=PROGRESS_EVERY_S / processes)
        elapsed = time.monotonic() - started
        print(f"created {done.value}/{len(names)} in {elapsed:.0f} s ({done.value / elapsed:.0f}/s)", flush=True)
        if elapsed > timeout_s:
            _stop(workers)
            raise CreationTooSlow(f"{done.value} of {len(names)} Services created in {elapsed:.0f} s")
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {processes} creating processes failed (exit codes {failed})")
    return time.monotonic() - started


def _stop(workers: list[mp.process.BaseProcess]) -> None:
    """Stop the creating processes: the Services they already created stay."""
    for worker in workers:
        worker.kill()
    for worker in workers:
        worker.join()


def _create_share(namespace: str, names: list[str], make_body: MakeBody, threads: int,
                  done: Synchronized[int]) -> None:
    """One process's share: its names, THREADS at a time."""
    api = core_api(pool=threads)

    def create(name: str) -> None:
        create_one(api, namespace, make_body(name))
        with done.get_lock():
            done.value += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, names))


def create_one(api: CoreV1Api, namespace: str, body: dict[str, Any]) -> None:
    """Create one Service, again after a transient failure; one that a lost answer already created counts."""
    for attempt in range(RETRIES):
        try:
            api.create_namespaced_service(namespace, body, _preload_content=False).release_conn()
            return
        except ApiException as exc:
            if exc.status == 409 and attempt > 0:
                return
            if exc.status not in RETRY_STATUSES or attempt == RETRIES - 1:
                raise
        except HTTPError:
            if attempt == RETRIES - 1:
                raise
        time.sleep(0.5 * 2**attempt)


def ingress_ips(api: CoreV1Api, namespace: str) -> dict[str, str]:
    """name -> first ingress IP, for every Service in NAMESPACE that has one."""
    out: dict[str, str] = {}
    cont = None
    while True:
        resp = api.list_namespaced_service(namespace, limit=2000, _continue=cont, _preload_content=False)
        page = json.loads(resp.data)
        for svc in page["items"]:
            ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress")
            if ingress:
                out[svc["metadata"]["name"]] = ingress[0]["ip"]
        cont = page["metadata"].get("continue")
        if not cont:
            return out
