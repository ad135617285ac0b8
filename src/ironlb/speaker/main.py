"""`ironlb-speaker`: announce this node's share of LoadBalancer IPs over ARP/NDP."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client
from kubernetes.client.rest import ApiException

from ironlb.common.http import HealthServer
from ironlb.common.kube import api_client
from ironlb.common.logs import setup_logging
from ironlb.speaker.app import Speaker
from ironlb.speaker.forward import ForwardingSettings
from ironlb.speaker.join import KUBE_PROXY_METRICS_URL
from ironlb.speaker.liveness.protocol import MIN_KEY_BYTES
from ironlb.speaker.metrics import registry_for

log = logging.getLogger("ironlb.speaker")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (each also settable by an IRONLB_* / NODE_NAME environment variable)."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="ironlb-speaker", description=__doc__)
    p.add_argument("--node", default=env("NODE_NAME") or socket.gethostname())
    p.add_argument("--lb-class", default=env("IRONLB_LB_CLASS") or None)
    p.add_argument("--namespace", default=env("POD_NAMESPACE", "kube-system"), help="where the heartbeat Secret is")
    p.add_argument("--heartbeat-secret", default=env("IRONLB_HEARTBEAT_SECRET", "ironlb-heartbeat"))
    p.add_argument("--heartbeat-secret-key", default=env("IRONLB_HEARTBEAT_SECRET_KEY", "key"))
    p.add_argument("--heartbeat-port", type=int, default=int(env("IRONLB_HEARTBEAT_PORT", "7946")))
    p.add_argument("--metrics-host", default=env("IRONLB_METRICS_HOST", "0.0.0.0"))
    p.add_argument("--metrics-port", type=int, default=int(env("IRONLB_METRICS_PORT", "7473")))
    p.add_argument("--exclude-interfaces", default=env("IRONLB_EXCLUDE_INTERFACES", ""),
                   help="comma list of interfaces never to answer on (e.g. a management NIC)")
    p.add_argument("--nodeport-forwarding", default=env("IRONLB_NODEPORT_FORWARDING", "true"),
                   choices=["true", "false"], help="program nftables for pools with forwarding: NodePort")
    p.add_argument("--nft", default=env("IRONLB_NFT", "nft"), help="nft binary, for forwarding: NodePort pools")
    p.add_argument("--kube-proxy-healthz-port", type=int, default=int(env("IRONLB_KUBE_PROXY_HEALTHZ_PORT", "10256")),
                   help="kube-proxy's healthz port on every node (health check of NodePort forwarding)")
    p.add_argument("--kube-proxy-metrics-url", default=env("IRONLB_KUBE_PROXY_METRICS_URL", KUBE_PROXY_METRICS_URL),
                   help="kube-proxy's metrics on this node: the speaker joins the election once kube-proxy has "
                        "synced its rules ('' joins at once, e.g. where kube-proxy does not run)")
    p.add_argument("--join-wait", type=float, default=float(env("IRONLB_JOIN_WAIT", "30")),
                   help="longest wait in seconds for kube-proxy's first sync before joining anyway")
    p.add_argument("--log-format", choices=["json", "text"], default=env("IRONLB_LOG_FORMAT", "json"))
    p.add_argument("--log-level", default=env("IRONLB_LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


async def read_key(api: client.ApiClient, namespace: str, name: str, key: str) -> bytes:
    """The heartbeat HMAC key from its Secret (waits for it: without it no peer can be trusted)."""
    core = client.CoreV1Api(api)
    while True:
        try:
            secret = await asyncio.to_thread(core.read_namespaced_secret, name, namespace)
            value = (secret.data or {}).get(key)
            decoded = base64.b64decode(value) if value else b""
            if len(decoded) >= MIN_KEY_BYTES:
                return decoded
            if value:  # a short key can be guessed from one captured heartbeat: refuse it, loudly
                log.error("the key %r in Secret %s/%s has %d bytes, fewer than the %d required; waiting for a "
                          "longer one", key, namespace, name, len(decoded), MIN_KEY_BYTES)
            else:
                log.error("Secret %s/%s has no key %r; waiting", namespace, name, key)
        except ApiException as exc:
            log.error("cannot read heartbeat Secret %s/%s (%s); waiting", namespace, name, exc.reason)
        await asyncio.sleep(2)


async def run(args: argparse.Namespace) -> int:
    """Run the speaker until SIGTERM/SIGINT."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(16, thread_name_prefix="api"))
    api = api_client()
    key = await read_key(api, args.namespace, args.heartbeat_secret, args.heartbeat_secret_key)
    exclude = [i for i in args.exclude_interfaces.split(",") if i]
    fwd = ForwardingSettings(enabled=args.nodeport_forwarding == "true", nft=args.nft,
                             kube_proxy_healthz_port=args.kube_proxy_healthz_port)
    speaker = Speaker(args.node, args.lb_class, api, key, args.heartbeat_port, exclude, fwd,
                      kube_proxy_metrics_url=args.kube_proxy_metrics_url, join_bound=args.join_wait)
    health = HealthServer(registry_for(lambda: speaker), speaker.ready, args.metrics_host, args.metrics_port)
    task = asyncio.create_task(speaker.run(health))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ironlb-speaker`."""
    args = parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    sys.exit(asyncio.run(run(args)))
