"""The fast plane's process: `python -m ironlb.speaker.fast FD`, started by `control.fastproc.FastProcess`.

One thread, one loop: the heartbeat socket, the packet sockets and the channel to the control plane.
Commands come in over the channel (`messages.TO_FAST`: node bits, claims, interfaces, peers, keys, fence,
join, close), each to its handler in `Child.handlers`; what the control plane needs goes back
(`messages.FROM_FAST`: alive set, ownership, who is heard, duplicates, counters, log records).
When the control plane goes away (its end closes), this process says goodbye to its peers and ends.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from ironlb.speaker.fast import messages
from ironlb.speaker.fast.announcer import Diff, Interface, ResponderFactory
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.io import DropCounter, RawPacketIO
from ironlb.speaker.fast.l2.kernel_arp import KernelArp, NodeMaps
from ironlb.speaker.fast.l2.responder import MacSet, Responder
from ironlb.speaker.fast.liveness.membership import TIMEOUT_S
from ironlb.speaker.fast.liveness.ringmode import Topology
from ironlb.speaker.fast.messages import Config, FastStats
from ironlb.speaker.fast.plane import FastPlane
from ironlb.speaker.fast.wire import Channel, Handlers

log = logging.getLogger(__name__)
REPORT_S = 0.1  # who is heard, and duplicates seen, at most this stale on the control plane
STATS_EVERY = 10  # counters every tenth report (1 s)


class GcWatch:
    """The longest collection so far, in ms (the loop stands still for all of it)."""

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, _: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
        else:
            self.longest_ms = max(self.longest_ms, round((now - self._started) * 1000, 2))


class ChannelLog(logging.Handler):
    """Log records go to the control plane, which writes them with its own format (one log stream)."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record's level, logger name and text."""
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self.channel.send(messages.Logged(record.levelno, record.name, text))
        except Exception:  # a record that cannot be sent must not break the loop that logged it
            self.handleError(record)


class Child:
    """Runs one FastPlane for the control plane at the other end of SOCK."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.handlers: Handlers = {
            messages.Start: self._on_start,
            messages.LearnNodes: self._on_nodes,
            messages.PutClaims: self._on_claims,
            messages.SetInterfaces: self._on_interfaces,
            messages.SetPeers: self._on_peers,
            messages.SetKey: self._on_key,
            messages.Fence: self._on_fence,
            messages.Join: self._on_join,
            messages.Reannounce: self._on_reannounce,
            messages.Release: self._on_release,
            messages.Close: self._on_close,
        }
        self.channel = Channel(sock, loop, self.handlers, self._parent_gone)
        self.plane: FastPlane | None = None
        self.own_macs = MacSet()
        self.kernel_arp = False  # answer ARP in the kernel where it can (config.kernel_arp)
        self.kernel_maps: NodeMaps | None = None  # this node's MACs and the lease the in-kernel responders read
        self.lease_s = TIMEOUT_S / 2  # how long they may answer past this loop's last turn (half the timeout)
        self.restart_hold_s = 0.0  # how long peers are asked to answer for this node when it closes
        self.drops = DropCounter()
        self.done = asyncio.Event()
        self._duplicates: dict[tuple[str, str, str], int] = {}
        self._heard: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.gc = GcWatch()
        self._rounds = self._reports = 0
        self._report_every = 1  # rounds between reports (REPORT_S, in the configured interval)

    # -- commands from the control plane ---------------------------------------------------------------

    def _started(self, message: messages.ToFast) -> FastPlane | None:
        """The plane, or None (said) for MESSAGE before Start."""
        if self.plane is None:
            log.warning("fast plane: %s before start, ignored", type(message).__name__)
        return self.plane

    def _on_start(self, message: messages.Start) -> None:
        self._spawn(self._start(message.config))

    def _on_nodes(self, message: messages.LearnNodes) -> None:
        if (plane := self._started(message)) is not None:
            plane.learn(message.start, message.names)

    def _on_claims(self, message: messages.PutClaims) -> None:
        if (plane := self._started(message)) is not None:
            plane.put(message.changes)

    def _on_interfaces(self, message: messages.SetInterfaces) -> None:
        if (plane := self._started(message)) is not None:
            self.own_macs.macs = message.own_macs
            if self.kernel_maps is not None:
                self._kernel_macs(message.own_macs)
            plane.set_interfaces(message.interfaces)

    def _on_peers(self, message: messages.SetPeers) -> None:
        if (plane := self._started(message)) is not None:
            plane.liveness.set_peers(message.peers, message.addresses)

    def _on_key(self, message: messages.SetKey) -> None:
        if (plane := self._started(message)) is not None:
            plane.liveness.set_key(message.keys)

    def _on_fence(self, message: messages.Fence) -> None:
        if (plane := self._started(message)) is not None:
            plane.liveness.fence()

    def _on_join(self, message: messages.Join) -> None:
        if (plane := self._started(message)) is not None:
            self._spawn(self._join(plane, message.token))

    def _on_reannounce(self, message: messages.Reannounce) -> None:
        if (plane := self._started(message)) is not None:
            plane.announcer.reannounce()

    def _on_release(self, message: messages.Release) -> None:
        if (plane := self._started(message)) is not None:
            plane.liveness.release(message.node)

    def _on_close(self, message: messages.Close) -> None:
        if self._started(message) is not None:
            self._spawn(self.close(message.excluded))

    # -- what runs here -----------------------------------------------------------------------------------

    async def _start(self, config: Config) -> None:
        logging.getLogger().setLevel(config.log_level)
        self.kernel_arp = config.kernel_arp
        self.restart_hold_s = config.restart_hold_s
        self.lease_s = config.timeout / 2  # peers take our IPs over a timeout after our loop stops
        self.plane = FastPlane(config.me, config.key, config.port, self._responders(), self._alive, self._owned,
                               interval=config.interval, timeout=config.timeout,
                               topology=Topology(config.topology))
        try:
            await self.plane.start(config.host)
        except OSError as exc:
            self.channel.send(messages.Failed(f"cannot bind the heartbeat port {config.port}: {exc}"))
            self.plane = None
            self.done.set()
            return
        gc.collect()
        gc.freeze()  # what start-up made is never scanned again
        self.channel.send(messages.Started())
        self._report_every = max(1, round(REPORT_S / config.interval))
        self.plane.liveness.on_round.append(self._on_round)  # everything periodic wakes the loop once a round

    def _on_round(self) -> None:
        """Each heartbeat round: the lease, and every few rounds the report."""
        self._keep_lease()
        self._rounds += 1
        if self._rounds % self._report_every == 0:
            self._report()

    def _keep_lease(self) -> None:
        """Move the in-kernel responders' deadline on every heartbeat round, from this loop: if the loop
        stops, so do their answers, about when the peers' timeout gives our IPs to another node."""
        if self.kernel_maps is not None:
            try:
                self.kernel_maps.renew(self.lease_s)
            except OSError as exc:  # the responders then pass everything to user space: nothing wrong is said
                log.warning("could not renew the in-kernel responders' lease (%s)", exc)

    async def _join(self, plane: FastPlane, token: int) -> None:
        await plane.liveness.join()
        self.channel.send(messages.Joined(token))

    async def close(self, excluded: frozenset[str] = frozenset()) -> None:
        """Stop answering (after asking peers to hold this node's IPs but EXCLUDED, if so configured), say
        goodbye to peers, tell the control plane, end."""
        if self._closing:
            return
        self._closing = True
        if self.plane is not None:
            await self.plane.close(self.restart_hold_s, excluded)
        if self.kernel_maps is not None:
            self.kernel_maps.close()
        self.channel.send(messages.Closed())
        self.done.set()

    def _parent_gone(self) -> None:
        log.warning("the control plane is gone: leaving")
        self._spawn(self.close())

    def _responders(self) -> ResponderFactory:
        def make(iface: Interface) -> Responder:
            arp = RawPacketIO(iface.name, iface.index, "arp", self.loop, self.drops)
            try:
                ndp = RawPacketIO(iface.name, iface.index, "ndp", self.loop, self.drops)
            except OSError:  # the interface vanished in between: release the first socket too
                arp.close()
                raise
            return Responder(iface.name, iface.mac, arp, ndp, iface.link_local, own_macs=self.own_macs,
                             on_duplicate=self._duplicate, kernel=self._kernel_responder(iface))
        return make

    def _kernel_responder(self, iface: Interface) -> KernelArp | None:
        """IFACE's in-kernel ARP responder, or None (off, or the kernel or our capabilities refuse it)."""
        if not self.kernel_arp:
            return None
        try:
            if self.kernel_maps is None:
                self.kernel_maps = NodeMaps()
                self._kernel_macs(self.own_macs.macs)
                self.kernel_maps.renew(self.lease_s)
            kernel = KernelArp(iface.index, pk.mac_bytes(iface.mac), self.kernel_maps)
        except OSError as exc:
            # e.g. EPERM without CAP_BPF and CAP_NET_ADMIN, EINVAL before Linux 6.6 (no tcx): said once
            reason = (exc.strerror or str(exc)).splitlines()[0]  # the verifier's log, if any, is for a developer
            hint = "; it needs the BPF and NET_ADMIN capabilities" if exc.errno == errno.EPERM else ""
            log.warning("ARP is answered from user space: the in-kernel responder cannot be loaded on %s (%s)%s",
                        iface.name, reason, hint)
            self.kernel_arp = False
            return None
        log.info("ARP requests on %s are answered in the kernel (tcx)", iface.name)
        return kernel

    def _kernel_macs(self, macs: frozenset[bytes]) -> None:
        assert self.kernel_maps is not None
        try:
            self.kernel_maps.set_macs(macs)
        except OSError as exc:
            log.warning("could not update the in-kernel responder's list of this node's MACs (%s)", exc)

    # -- reports to the control plane ---------------------------------------------------------------------

    def _alive(self, alive: frozenset[str]) -> None:
        self.channel.send(messages.Alive(alive))

    def _owned(self, changes: Mapping[str, frozenset[str] | None], diff: Diff) -> None:
        self.channel.send(messages.Owned(dict(changes), diff))

    def _duplicate(self, ip: str, mac: str, ifname: str) -> None:
        # A flood is counted here and sent as one message per report, not one per frame.
        key = (ip, mac, ifname)
        self._duplicates[key] = self._duplicates.get(key, 0) + 1

    def _report(self) -> None:
        """Who is heard and the duplicates seen, when they changed; the counters every STATS_EVERY reports."""
        if self.plane is None:
            return
        members = self.plane.liveness.membership
        heard = (members.known(), members.heard(), members.held())
        if heard != self._heard:
            self._heard = heard
            self.channel.send(messages.Members(*heard))
        if self._duplicates:
            self.channel.send(messages.Duplicates(self._duplicates))
            self._duplicates = {}
        if self._reports % STATS_EVERY == 0:
            self.channel.send(messages.StatsReport(self.stats()))
        self._reports += 1

    def stats(self) -> FastStats:
        """The counters now."""
        assert self.plane is not None
        return FastStats(counters=self.plane.liveness.counters, fenced=self.plane.liveness.fenced,
                         responders={n: r.counters() for n, r in self.plane.announcer.responders.items()},
                         kernel_drops=self.drops.totals(), rss_mb=rss_mb(),
                         gc_max_ms=self.gc.longest_ms, channel_refused=dict(self.channel.refused))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def rss_mb() -> float:
    """This process's resident set, in MB."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


async def serve(sock: socket.socket) -> None:
    """Run until the control plane says close, or goes away."""
    loop = asyncio.get_running_loop()
    child = Child(sock, loop)
    logging.getLogger().handlers[:] = [ChannelLog(child.channel)]
    loop.add_signal_handler(signal.SIGTERM, lambda: child._spawn(child.close()))
    await child.done.wait()
    for _ in range(100):  # the last messages (Closed among them) out, for up to a second
        if not child.channel.backlog:
            break
        await asyncio.sleep(0.01)
    child.channel.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: the socket's file descriptor is the only argument."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the control plane's to handle
    asyncio.run(serve(socket.socket(fileno=int(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
