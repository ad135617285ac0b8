"""Heartbeats over UDP (asyncio): send to every peer (or the ring neighbours) each interval, feed what arrives
to Membership.

Each peer is sent the format its run was heard in (liveness/upgrade.py): version 3 once it was heard in
version 3, version 2 until then; a run heard in version 2 is told at once (one version-3 heartbeat), and every
probe period each peer not known to speak version 3 is sent one besides, so that new speakers find each other.
With the topology `ring`, the ring's Watch reads this one table (ringmode.py), and once no peer up speaks
version 2 only, heartbeats go to the ring neighbours only, every peer probed each probe cycle; the view says
who else is alive. What is sent, and to whom, is sends.py's; this module holds the loop and what is received."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable

from ironlb.common.throttle import Throttle
from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.liveness import sourcefilter, udpsocket
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S, Membership, plain
from ironlb.speaker.fast.liveness.probes import Rotation
from ironlb.speaker.fast.liveness.protocol import Decoded, KeySet, Kind, decode, new_incarnation
from ironlb.speaker.fast.liveness.ringmode import RingWatch, Topology
from ironlb.speaker.fast.liveness.rounds import Counters, next_due
from ironlb.speaker.fast.liveness.sends import Sends
from ironlb.speaker.fast.liveness.upgrade import Formats, Mode, join_wait
from ironlb.speaker.fast.liveness.watch import Verdict

log = logging.getLogger(__name__)
SO_DETACH_FILTER = 27
AliveCallback = Callable[[frozenset[str]], None]
# Datagrams read per round, at most: the full mesh of a large cluster sends one per peer a round, the ring's
# notices come on top, and a stalled loop finds a few rounds' worth queued.
READ_BATCH = 4096
LATE_S = 0.05  # a heartbeat round this late is counted: two default intervals, a third of the default timeout


class Liveness(Sends):
    """Runs the heartbeat exchange for one node; calls `on_change(alive)` when the alive set or the holds
    (`membership.held()`, `membership.covers()`) change.

    Until `join()` it only listens: peers do not count it, and it does not count itself."""

    def __init__(self, me: str, key: bytes | KeySet, port: int, on_change: AliveCallback,
                 interval: float = INTERVAL_S, timeout: float = TIMEOUT_S, grace: float = 2.0,
                 topology: Topology = Topology.MESH) -> None:
        self.me, self.port, self.on_change, self.interval = me, port, on_change, interval
        self.key = KeySet.of(key)
        self.incarnation = new_incarnation()
        self.membership = Membership(me=me, started=time.monotonic(), timeout=timeout, grace=grace,
                                     incarnation=self.incarnation, counts_self=False)
        self.speaking = False
        self.fenced = False  # self-fenced: still heartbeating (as FENCED) so peers know, answering nothing
        self.sequence = 0
        self.peers: dict[str, str] = {}
        self.formats = Formats()  # the format each peer's run was heard in: the one it is sent
        self.mode = Mode.FULL_MESH  # whom heartbeats go to: every peer, or (topology ring) the ring neighbours
        self.topology = topology
        self.ring: RingWatch | None = None  # topology ring: the Watch and its view, kept in both modes
        self.sources: frozenset[str] = frozenset()  # every peer's node addresses: nothing else is read
        self.counters = Counters()
        # The socket module's own calls, not held ones (fast/held.py): the fast plane's process has one thread, so
        # letting the GIL go around a system call waits for nobody, and a held call's ctypes cost is per datagram
        self._sock: socket.socket | None = None
        self._clock: asyncio.AbstractEventLoop | None = None  # the loop the rounds run on
        self._timer: asyncio.Handle | None = None  # the next round, while rounds run
        self._due = 0.0  # when the current (or next) round was due, on the loop's clock
        self._alive = self.membership.alive()
        self._alive_version = self.membership.alive_version()
        self._wrong_source_log = Throttle(30.0)
        self._late_log = Throttle(10.0)
        self._send_error_log = Throttle(30.0)
        self._next_probe = 0.0  # when the next round goes to every peer (the ring: neighbour), silent ones included
        self._rotation = Rotation(me)  # the ring's probes of the other peers, a few each round
        self._rotated_at: float | None = None  # when the rotation last ran
        self._restart: tuple[int, list[tuple[tuple[str, bytes], ...]]] | None = None  # hold_ms, cover chunks
        self._restart_rounds = 0
        self._holds_version = 0
        self._filter_warned = False
        self._ring_alive_until = 0.0  # the alive set is the ring's until then (on the ring, and a while after)
        self._speaking_since = float("inf")  # when join() began heartbeating
        self.on_round: list[Callable[[], None]] = []  # called at the end of every round (the loop's one wake-up)

    def _set_ring_nodes(self) -> None:
        now = time.monotonic()
        if self.ring is None:
            self.ring = RingWatch(self.membership, self.peers, now, self._verdict)
            if self.speaking:
                self._route(self.ring.begin(now))
        else:
            self.ring.set_nodes(self.peers, now)

    def _verdict(self, subject: str, verdict: Verdict, now: float) -> None:
        """The view's verdict on SUBJECT changed (ring mode's deaths are counted here, the full mesh's by ticks)."""
        if verdict is not Verdict.ALIVE and self.mode is Mode.RING:
            self.counters.deaths += 1
            log.warning("peer %s is %s (its watchers agreed)", subject, verdict.name.lower())
        elif verdict is Verdict.ALIVE:
            log.info("peer %s is alive again in the view", subject)

    def _choose_mode(self, now: float) -> None:
        """The ring once every peer up speaks version 3 (topology ring); the full mesh else."""
        if self.ring is None:
            return
        mode = self.ring.mode(self.formats, now)
        if mode is self.mode:
            return
        log.info("heartbeat mode: %s", mode.value)
        if mode is Mode.RING:
            if now - self._speaking_since > self.membership.grace:  # else a peer not heard yet is no death
                self.ring.seed(now)
            self._ring_alive_until = float("inf")
        else:  # the full mesh's table has the peers heard at probe rate dead until their heartbeats come back
            self._ring_alive_until = now + self.membership.timeout + self._probe_period(Mode.RING) + self.interval
        self.mode = mode
        self._alive_version = (-1, False)

    def set_peers(self, peers: dict[str, str], addresses: dict[str, set[str]] | None = None) -> None:
        """Node name -> address to send to, of every speaker (from the Node list); ADDRESSES: every
        address a node's heartbeats may come from (its InternalIPs; default: the one sent to)."""
        before = set(self.peers)
        self.peers = {n: a for n, a in peers.items() if n != self.me}
        self.formats.forget(before - set(self.peers))
        self._rotation.set_names(self.peers)
        if set(self.peers) != before:
            log.info("heartbeat peers: %d (%d added, %d removed)", len(self.peers), len(set(self.peers) - before),
                     len(before - set(self.peers)))
        self.membership.set_expected(set(self.peers), {n: {a, *(addresses or {}).get(n, ())}
                                                       for n, a in self.peers.items()})
        if self.topology is Topology.RING:
            self._set_ring_nodes()
        sources = frozenset().union(*(p.addresses for p in self.membership.peers.values()))
        if sources != self.sources:
            self.sources = sources
            self._filter()
        self._publish()

    def set_key(self, key: bytes | KeySet) -> None:
        """Sign with KEY's send key from now on, and accept all of its keys (one atomic swap)."""
        self.key = KeySet.of(key)

    async def start(self, host: str = "::") -> None:
        """Bind the UDP port and start sending."""
        self._sock = udpsocket.bind(host, self.port)
        self._filter()
        self._begin_rounds()

    async def join(self) -> None:
        """Start heartbeating; count ourselves once peers must have heard us (one detection period),
        so the current owners let go as we take over rather than after."""
        self.speak()
        await asyncio.sleep(join_wait(self.mode, self.membership.timeout, self.interval))
        self.membership.counts_self = True
        self._publish()

    def speak(self) -> None:
        """Start heartbeating (not counting ourselves yet: `join()` does, once peers must have heard us)."""
        if not self.speaking:
            self._speaking_since = time.monotonic()
        self.speaking, self.fenced = True, False
        if self.ring is not None:
            self._route(self.ring.begin(self._speaking_since))

    def fence(self) -> None:
        """Stop counting ourselves and tell peers (FENCED heartbeats) to stop counting us; `join()` undoes it."""
        self.fenced = True
        self.membership.counts_self = False
        self._publish()

    def _begin_rounds(self) -> None:
        """A round now, then one an interval: each a timer callback on the running loop, so a round costs one
        turn of the loop (a task asleep between rounds costs a second turn, and a future, to wake it)."""
        self._clock = asyncio.get_running_loop()
        self._due = self._clock.time()
        self._timer = self._clock.call_soon(self._round)

    def _end_rounds(self) -> None:
        """No further round."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _round(self) -> None:
        """One heartbeat round, then the next one scheduled (a round that raises schedules none: its peers see a
        stopped loop)."""
        clock = self._clock
        assert clock is not None
        woke = clock.time()
        self._lateness(woke - self._due)
        self._readable()  # what came in since the last round: the loop wakes once a round, not per datagram
        self._choose_mode(time.monotonic())
        if self._restart is not None:
            self._send_restart()
        elif self.speaking:
            self._send_all(Kind.FENCED if self.fenced else Kind.ALIVE)
        now = time.monotonic()
        for name, why in self.membership.tick(now):
            if now >= self._ring_alive_until:  # on the ring, the non-neighbours are heard at probe rate only
                self.counters.deaths += 1
                log.warning("peer %s is dead (%s)", name, why.value)
        if self.ring is not None:
            self._route(self.ring.tick(now))
        self._publish()
        self._hooks()
        self._due = next_due(self._due, woke, self.interval)
        if self._timer is not None:  # not ended meanwhile (a hook that closed us)
            self._timer = clock.call_at(self._due, self._round)

    def _hooks(self) -> None:
        """The fast plane's other periodic work, on this round's wake-up; one that fails stops no heartbeat."""
        for hook in self.on_round:
            try:
                hook()
            except Exception:
                log.exception("periodic work on the heartbeat round failed")

    def _lateness(self, late_s: float) -> None:
        if late_s > LATE_S:
            self.counters.late += 1
            if late_s > self.membership.timeout / 4 and (n := self._late_log.allow("late")) is not None:
                log.warning("a heartbeat round went out %.0f ms late (%d more late rounds since the last "
                            "warning): this node's peers may count it dead", late_s * 1000, n)
        late_ms = late_s * 1000
        if late_ms > self.counters.worst_late_ms:  # rounded only when it is a new worst: rounding a float is slow
            self.counters.worst_late_ms = max(self.counters.worst_late_ms, round(late_ms, 1))

    def _readable(self) -> None:
        """Read every datagram queued (up to READ_BATCH), then tell `on_change` once of what they changed."""
        if self._sock is None:
            return
        read = 0
        for _ in range(READ_BATCH):
            try:
                data, addr = self._sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error for an unreachable peer: expected while a node is down
                continue
            read += 1
            self.datagram_received(data, addr)
        if read:
            self._publish()

    def _filter(self) -> None:
        """Make the kernel drop datagrams from anyone but the peers (one atomic swap of the socket's filter)."""
        if self._sock is None:
            return
        try:
            prog = sourcefilter.program(self.sources, self.port)
            if prog is None:
                raise OSError(errno.E2BIG, "too many peer addresses for a socket filter")
            bpf.attach(self._sock, prog)
            self.counters.source_filter = True
        except (OSError, ValueError) as exc:
            self.counters.filter_failures += 1
            if self.counters.source_filter:  # an older filter would refuse the new peers: user space alone now
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
            self.counters.source_filter = False
            if not self._filter_warned:
                self._filter_warned = True
                log.warning("heartbeats from non-peers are dropped in user space only: the kernel refused the "
                            "heartbeat socket's filter (%s)", exc)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        """Feed one datagram to the membership table: a peer's only, checked before any crypto. What it changed
        is told to `on_change` once the round's reads are done (`_readable`), once for all of them."""
        self.counters.datagrams_received += 1
        if addr[1] != self.port or plain(addr[0]) not in self.sources:  # peers send from the port they listen on
            self._reject(Decoded.NOT_A_PEER)
            return
        verdict, msg = decode(data, self.key)
        now = time.monotonic()  # one reading for the table, the formats and the Watch: the same arrival
        if msg is not None:
            verdict, change = self.membership.on_message(msg, now, addr[0])
            if change is not None:
                log.info("peer %s: %s", msg.node, change.value)
            if verdict is Decoded.UNECHOED:  # a run rolled back to version 2 must be sent version 2 again
                self.formats.unproven(msg)
            if verdict is Decoded.WRONG_SOURCE and self._wrong_source_log.allow(msg.node) is not None:
                log.warning("a heartbeat naming %s came from %s, not one of its node addresses: refused",
                            msg.node, addr[0])
        if verdict is Decoded.ACCEPTED:
            assert msg is not None
            if self.formats.heard(msg, now) and self.speaking and msg.node in self.peers:
                self._tell(msg.node, self.peers[msg.node], Kind.FENCED if self.fenced else Kind.ALIVE)
            self.counters.received += 1
            if self.ring is not None:
                self.counters.notices_received += msg.notice is not None
                self._route(self.ring.take(msg, change, now))
        else:
            self._reject(verdict)

    def _reject(self, verdict: Decoded) -> None:
        self.counters.rejected[verdict.value] = self.counters.rejected.get(verdict.value, 0) + 1

    def release(self, name: str) -> None:
        """End NAME's hold: its node no longer answers (the control plane's check)."""
        if (change := self.membership.release(name)) is not None:
            self.counters.deaths += 1
            log.warning("peer %s is dead (%s)", name, change.value)
            self._publish()

    def _publish(self) -> None:
        """Tell `on_change` of a new alive set or new holds: versions are compared, no set is rebuilt."""
        if self.ring is not None and time.monotonic() < self._ring_alive_until:
            alive = self.ring.alive(self.membership.counts_self)  # the same set until it moved
            if alive is self._alive and self.membership.holds_version == self._holds_version:
                return
            changed = alive != self._alive or self.membership.holds_version != self._holds_version
            self._alive, self._holds_version = alive, self.membership.holds_version
            if changed:
                self.on_change(alive)
            return
        version = self.membership.alive_version()
        if version == self._alive_version and self.membership.holds_version == self._holds_version:
            return
        alive = self.membership.alive()
        self._alive_version = version
        if alive != self._alive or self.membership.holds_version != self._holds_version:
            self._alive, self._holds_version = alive, self.membership.holds_version
            self.on_change(alive)

    @property
    def alive(self) -> frozenset[str]:
        """Alive nodes, this one included."""
        return self._alive

    async def close(self) -> None:
        """Say goodbye (LEAVE) to every peer, unless a restart was said, and stop."""
        # Nothing is read after the goodbye (the loop is cancelled before it runs again): the LEFT it brings back
        # is not to be refuted.
        if self.speaking and self._restart is None:
            self._send_all(Kind.LEAVE, everyone=True)
        self._end_rounds()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
