"""Two network namespaces joined by a veth: a node whose FRR the driver under test owns, and a router running
FRR from a config file (a listen range over the link, BFD). Both FRRs start and stop with the pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ironlb.speaker.bgp.vty import Vty, VtyRefused, VtyStatus

FRR = "/usr/lib/frr"
NODE_IP, ROUTER_IP, LINK = "198.18.39.2", "198.18.39.1", "198.18.39.0/24"
NODE_ASN, ROUTER_ASN = 64513, 64512
ROUTER_BGPD = f"""router bgp {ROUTER_ASN}
 bgp router-id {ROUTER_IP}
 no bgp ebgp-requires-policy
 neighbor nodes peer-group
 neighbor nodes remote-as external
 neighbor nodes bfd
 neighbor nodes timers 1 3
 neighbor nodes timers connect 1
 bgp listen range {LINK} peer-group nodes
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
"""


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@dataclass
class Frr:
    """The three daemons of one namespace, their sockets in DIR (the contract's command lines)."""

    netns: str
    dir: str

    def start(self, daemon: str, config: str = "") -> None:
        """Start DAEMON (zebra, bgpd, bfdd) in the background with CONFIG as its config file."""
        conf = f"{self.dir}/{daemon}.conf"
        with open(conf, "w") as f:
            f.write(config)
        extra = {"zebra": ["-z", f"{self.dir}/zserv.api"], "bgpd": ["-z", f"{self.dir}/zserv.api"],
                 "bfdd": ["-z", f"{self.dir}/zserv.api", "--bfdctl", f"{self.dir}/bfdd.sock"]}[daemon]
        subprocess.run(["ip", "netns", "exec", self.netns, f"{FRR}/{daemon}", "-d", "--vty_socket", self.dir,
                        "-i", f"{self.dir}/{daemon}.pid", "-f", conf, "-u", "root", "-g", "frrvty", *extra],
                       check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{self.dir}/{daemon}.vty"):
            assert time.monotonic() < deadline, f"{daemon} in {self.netns} made no vty socket"
            time.sleep(0.02)

    def pid(self, daemon: str) -> int | None:
        """The daemon's pid while it runs."""
        try:
            with open(f"{self.dir}/{daemon}.pid") as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return None if state == "Z" else pid  # a zombie nobody reaps has stopped all the same
        except (OSError, ValueError, IndexError):
            return None

    def kill(self, daemon: str, sig: int = signal.SIGKILL) -> None:
        """Kill DAEMON (by the pid it wrote) and wait until it is gone."""
        pid = self.pid(daemon)
        if pid is None:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while self.pid(daemon) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self.dir}/{daemon}.vty")

    def stop(self) -> None:
        """Stop all three daemons (killed: their namespace goes with them)."""
        for daemon in ("bgpd", "bfdd", "zebra"):
            self.kill(daemon)

    def start_all(self) -> None:
        """Start the three daemons empty, as the chart's frr container does (after any of them exited, it ends
        and kubelet starts it again: bgpd never comes back alone to a zebra and bfdd that knew its predecessor)."""
        for daemon in ("zebra", "bfdd", "bgpd"):
            self.start(daemon)

    async def show(self, daemon: str, command: str) -> str:
        """A show command's output from DAEMON."""
        vty = Vty(f"{self.dir}/{daemon}.vty")
        try:
            return await vty.show(command)
        except VtyRefused as e:
            if e.status is VtyStatus.WARNING:  # FRR's answer for "no such route"
                return e.text
            raise
        finally:
            vty.close()

    async def json(self, daemon: str, command: str) -> dict:
        """A show command's JSON output."""
        return json.loads(await self.show(daemon, command) or "{}")


@dataclass
class Pair:
    """The node's FRR (empty config: the driver owns it) and the router's."""

    node: Frr
    router: Frr

    async def router_path(self, prefix: str) -> dict:
        """The router's BGP paths of PREFIX ({} while it has none)."""
        return await self.router.json("bgpd", f"show bgp ipv4 unicast {prefix} json")

    async def router_neighbor(self) -> dict:
        """The router's view of the node's session."""
        return (await self.router.json("bgpd", f"show bgp neighbors {NODE_IP} json")).get(NODE_IP, {})


async def wait_for(predicate, timeout: float = 15.0, period: float = 0.05):
    """Poll the coroutine function PREDICATE until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{predicate.__name__} still false after {timeout} s"
        await asyncio.sleep(period)


@contextlib.contextmanager
def frr_pair() -> Iterator[Pair]:
    """The namespaces ilb-bgpt-{node,rtr}-PID, the veth between them and both FRRs; all removed afterwards."""
    tag = os.getpid()
    node_ns, router_ns = f"ilb-bgpt-node-{tag}", f"ilb-bgpt-rtr-{tag}"
    top = tempfile.mkdtemp(prefix="ilb-bgpt-")
    pair = Pair(Frr(node_ns, f"{top}/node"), Frr(router_ns, f"{top}/router"))
    try:
        for ns in (node_ns, router_ns):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", "bgpt-n", "netns", node_ns, "type", "veth", "peer", "name", "bgpt-r", "netns", router_ns)
        _link(node_ns, "bgpt-n", NODE_IP)
        _link(router_ns, "bgpt-r", ROUTER_IP)
        # Static neighbours: the kernel's ARP table is shared by every namespace on the host and may be full.
        _ip("-n", node_ns, "neigh", "replace", ROUTER_IP, "lladdr", _mac(router_ns, "bgpt-r"), "dev", "bgpt-n",
            "nud", "permanent")
        _ip("-n", router_ns, "neigh", "replace", NODE_IP, "lladdr", _mac(node_ns, "bgpt-n"), "dev", "bgpt-r",
            "nud", "permanent")
        for frr, bgpd in ((pair.router, ROUTER_BGPD), (pair.node, "")):
            os.makedirs(frr.dir)
            frr.start("zebra")
            frr.start("bfdd")
            frr.start("bgpd", bgpd)
        yield pair
    finally:
        pair.node.stop()
        pair.router.stop()
        for ns in (node_ns, router_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def _link(netns: str, dev: str, address: str) -> None:
    _ip("-n", netns, "addr", "add", f"{address}/24", "dev", dev)
    _ip("-n", netns, "link", "set", dev, "up")


def _mac(netns: str, dev: str) -> str:
    return json.loads(_ip("-j", "-n", netns, "link", "show", dev))[0]["address"]
