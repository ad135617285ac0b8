"""The control plane's handle on the fast plane's process (`fast.child`).

It starts the process, turns each published ranking table into this node's claims for the IPs that
changed (only those cross, after the names of any node bits they are the first to use), and keeps
what the fast plane reports: the alive set, what is owned and announced, who is heard, and the
counters. Everything here is read on the control plane's loop (or by a metrics scrape) from plain
snapshots that the fast plane replaces whole, never from shared state.
What crosses is the messages of `fast.messages`: TO_FAST sent from here, FROM_FAST each to its handler
in `FastProcess.handlers`.
If the fast plane's process ends without being asked to, `exited` says so and the speaker stops:
without heartbeats and responders it is not a speaker, and the pod's restart is the remedy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import subprocess
import sys
from collections.abc import Callable, Collection, Mapping

from ironlb.speaker.fast import messages
from ironlb.speaker.fast.announcer import Interface
from ironlb.speaker.fast.claims import Claims, claims_of
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S
from ironlb.speaker.fast.liveness.protocol import KeySet
from ironlb.speaker.fast.messages import Config, FastStats, Refusal
from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.fast.wire import Channel, Handlers, pair
from ironlb.speaker.state.ranking import Ranked, Table

log = logging.getLogger(__name__)
# IPs per claims message: a relist's changes go as many small messages, each quick for the fast plane to
# take in between its heartbeats, never one huge one (docs/design.md, "Measurements behind the code").
CHUNK = 64
START_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 5.0
AliveHook = Callable[[frozenset[str]], None]
DuplicateHook = Callable[[str, str, str, int], None]  # (ip, foreign MAC, interface, frames seen)


class Heard:
    """Who the fast plane knows of and hears (the Fencer's view of the membership table)."""

    def __init__(self) -> None:
        self._known: frozenset[str] = frozenset()
        self._heard: frozenset[str] = frozenset()
        self._held: frozenset[str] = frozenset()

    def known(self) -> frozenset[str]:
        """Peers expected (from the Node list)."""
        return self._known

    def heard(self) -> frozenset[str]:
        """Peers heard within the timeout."""
        return self._heard

    def held(self) -> frozenset[str]:
        """Peers held for a restart (their IPs answered for them)."""
        return self._held

    def update(self, known: frozenset[str], heard: frozenset[str], held: frozenset[str] = frozenset()) -> None:
        """What the fast plane last reported."""
        self._known, self._heard, self._held = known, heard, held


class FastProcess:
    """Starts, feeds and follows the fast plane's process."""

    def __init__(self, me: str, key: bytes | KeySet, port: int, on_alive: AliveHook, on_duplicate: DuplicateHook,
                 interval: float = INTERVAL_S, timeout: float = TIMEOUT_S, kernel_arp: bool = True,
                 restart_hold_s: float = 0.0, topology: str = "mesh") -> None:
        self.me, self.on_alive, self.on_duplicate = me, on_alive, on_duplicate
        self.config = Config(me, KeySet.of(key), port, interval=interval, timeout=timeout, kernel_arp=kernel_arp,
                             restart_hold_s=restart_hold_s, topology=topology)
        self.alive: frozenset[str] = frozenset()  # as the fast plane last reported it
        self.owned: dict[str, frozenset[str]] = {}  # IP -> interfaces, as decided there (copy to iterate)
        self._announced: dict[str, set[str]] = {}  # interface -> IPs its responder answers for
        self.membership = Heard()
        self.on_held: Callable[[frozenset[str]], None] = lambda _: None  # the held peers changed (HoldWatch)
        self.stats = FastStats()
        self.exited: asyncio.Future[None] | None = None  # fails if the process ends unasked
        self.process: subprocess.Popen[bytes] | None = None
        self.launcher: tuple[str, ...] = ()  # argv the process is started under (a benchmark's node namespace)
        self._channel: Channel | None = None
        self._published = Table(me=me)
        self._sent: dict[str, Claims] = {}  # IP -> the claims the fast plane holds
        self.nodes = NodeIndex()  # the bits claims are written in; the fast plane has every name sent so far
        self._replies: dict[messages.FromFast, asyncio.Future[None]] = {}  # the reply awaited -> who awaits it
        self._tokens = itertools.count()
        self._closing = False
        self._gone = False  # the process's end of the channel closed
        self.handlers: Handlers = {
            messages.Started: self._reply,
            messages.Failed: self._on_failed,
            messages.Alive: self._on_alive,
            messages.Owned: self._on_owned,
            messages.Members: self._on_members,
            messages.Duplicates: self._on_duplicates,
            messages.StatsReport: self._on_stats,
            messages.Logged: self._on_logged,
            messages.Joined: self._reply,
            messages.Closed: self._reply,
        }

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self, host: str = "::") -> None:
        """Start the process and bind the heartbeat port there (raises OSError if it cannot be bound)."""
        loop = asyncio.get_running_loop()
        ours, theirs = pair()
        try:
            self.process = subprocess.Popen([*self.launcher, sys.executable, "-m", "ironlb.speaker.fast",
                                             str(theirs.fileno())], pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self.exited = loop.create_future()
        self._channel = Channel(ours, loop, self.handlers, self._on_gone)
        level = logging.getLogger().getEffectiveLevel()
        started = self._expect(messages.Started())
        self._send(messages.Start(dataclasses.replace(self.config, host=host, log_level=level)))
        try:
            await asyncio.wait_for(started, START_TIMEOUT_S)
        except BaseException:
            await self._stop_process()
            raise
        log.info("fast plane started (pid %d)", self.process.pid)

    async def close(self, excluded: frozenset[str] = frozenset()) -> None:
        """Stop answering and say goodbye to peers (there; a restart's hold for every owned IP but EXCLUDED when
        configured), then end the process."""
        if self._channel is None or self._closing:
            return
        self._closing = True
        closed = self._expect(messages.Closed())
        self._send(messages.Close(excluded))
        try:
            await asyncio.wait_for(closed, CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("the fast plane did not close in %.0f s: stopping it", CLOSE_TIMEOUT_S)
        except ConnectionError:  # it ended first (its parent's SIGTERM reached it too): nothing to wait for
            pass
        await self._stop_process()

    async def _stop_process(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self.process is not None and self.process.poll() is None:
            try:
                await asyncio.to_thread(self.process.wait, CLOSE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)

    # -- commands -------------------------------------------------------------------------------------------

    def publish(self, table: Table, may_claim: Callable[[str, tuple[Ranked, ...]], bool] | None = None,
                again: Collection[str] = ()) -> None:
        """Send this node's claims for the IPs whose entries changed since the last table, and for the IPs AGAIN
        (held earlier); a first claim on an IP is sent only if MAY_CLAIM(ip, entries) lets it (else held)."""
        if table is self._published and not again:
            return
        changes: dict[str, Claims] = {}
        known = len(self.nodes)
        for ip in table.by_ip.changed_keys(self._published.by_ip) | set(again):
            entries = table.by_ip.get(ip) or ()
            claims = claims_of(entries, self.me, self.nodes)
            if claims and ip not in self._sent and may_claim is not None and not may_claim(ip, entries):
                continue  # a new announcement held: asked again once released (withdrawals never wait)
            if self._sent.get(ip, ()) != claims:
                changes[ip] = claims
                if claims:
                    self._sent[ip] = claims
                else:
                    self._sent.pop(ip, None)
        self._published = table
        if len(self.nodes) > known:  # the new bits' names first: the channel keeps order
            self._send(messages.LearnNodes(known, self.nodes.names_from(known)))
        ips = list(changes)
        for start in range(0, len(ips), CHUNK):
            self._send(messages.PutClaims({ip: changes[ip] for ip in ips[start:start + CHUNK]}))

    def set_interfaces(self, interfaces: Mapping[str, Interface], own_macs: frozenset[bytes]) -> None:
        """The usable interfaces, and every MAC of this node (its own frames are never a duplicate)."""
        self._send(messages.SetInterfaces(dict(interfaces), own_macs))

    def set_peers(self, peers: dict[str, str], addresses: dict[str, set[str]]) -> None:
        """The Node list changed: whom to heartbeat, and from where each may speak."""
        self._send(messages.SetPeers(peers, addresses))

    def set_key(self, keys: KeySet) -> None:
        """Sign and check heartbeats with KEYS from now on (a rotation)."""
        self._send(messages.SetKey(keys))

    def fence(self) -> None:
        """Stop counting ourselves and send FENCED heartbeats (self-fencing); `join()` undoes it."""
        self._send(messages.Fence())

    def reannounce(self) -> None:
        """One more gratuitous burst for everything owned."""
        self._send(messages.Reannounce())

    def release(self, node: str) -> None:
        """End NODE's hold: its node no longer answers."""
        self._send(messages.Release(node))

    async def join(self) -> None:
        """Join the election: heartbeats out, ourselves counted after one detection period."""
        token = next(self._tokens)
        joined = self._expect(messages.Joined(token))
        self._send(messages.Join(token))
        await joined

    # -- the channel ------------------------------------------------------------------------------------------

    def _send(self, message: messages.ToFast) -> None:
        if self._channel is None:
            raise RuntimeError("the fast plane is not started")
        self._channel.send(message)

    def _expect(self, reply: messages.FromFast) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        if self._gone:  # nobody there to answer
            future.set_exception(ConnectionError("the fast plane's process ended"))
        else:
            self._replies[reply] = future
        return future

    def _reply(self, reply: messages.Started | messages.Joined | messages.Closed) -> None:
        future = self._replies.pop(reply, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_failed(self, message: messages.Failed) -> None:
        self._fail_all(OSError(message.error))

    def _on_alive(self, message: messages.Alive) -> None:
        self.alive = message.alive
        self.on_alive(self.alive)

    def _on_members(self, message: messages.Members) -> None:
        changed = message.held != self.membership.held()
        self.membership.update(message.known, message.heard, message.held)
        if changed:
            self.on_held(message.held)

    def _on_duplicates(self, message: messages.Duplicates) -> None:
        for (ip, mac, ifname), frames in message.frames.items():
            self.on_duplicate(ip, mac, ifname, frames)

    def _on_stats(self, message: messages.StatsReport) -> None:
        self.stats = message.stats

    def _on_logged(self, message: messages.Logged) -> None:
        logging.getLogger(message.logger).log(message.level, "%s", message.text)

    def _on_owned(self, message: messages.Owned) -> None:
        # Changed in place (O(what changed)); readers on other threads take copies (`announcements`).
        for ip, ifaces in message.changes.items():
            if ifaces is None:
                self.owned.pop(ip, None)
            else:
                self.owned[ip] = ifaces
        for ip, name in message.diff.removed:
            self._announced.get(name, set()).discard(ip)
        for ip, name in message.diff.added:
            self._announced.setdefault(name, set()).add(ip)
        for name in [n for n, ips in self._announced.items() if not ips]:
            del self._announced[name]

    def announcements(self) -> dict[str, frozenset[str]]:
        """Interface -> IPs its responder answers for now (a copy)."""
        return {name: frozenset(ips) for name, ips in list(self._announced.items())}

    def refused(self) -> dict[Refusal, int]:
        """Frames the control plane refused from the fast plane, by reason."""
        return dict(self._channel.refused) if self._channel is not None else {}

    def announced_pairs(self) -> int:
        """How many (IP, interface) pairs are answered for now, without copying them."""
        return sum(len(ips) for ips in list(self._announced.values()))

    def _fail_all(self, exc: BaseException) -> None:
        for future in self._replies.values():
            if not future.done():
                future.set_exception(exc)
        self._replies.clear()

    def _on_gone(self) -> None:
        self._gone = True
        self._fail_all(ConnectionError("the fast plane's process ended"))
        if self._closing or self.exited is None or self.exited.done():
            return
        code = self.process.poll() if self.process else None
        log.error("the fast plane's process ended unasked (exit code %s): the speaker stops", code)
        self.exited.set_exception(RuntimeError(f"the fast plane's process ended (exit code {code})"))
