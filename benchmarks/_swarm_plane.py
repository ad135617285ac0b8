"""The swarm's nodes: each a real fast-plane process (`python -m ironlb.speaker.fast`) in its own namespace, driven
over its channel as the speaker's control plane drives it (`FastProcess`), and what every one of them decided.

Nothing here knows how heartbeats are sent or whom to: a node's cost is what its process counts as sent and
what /proc says it used, and a failover is a peer leaving another's reported alive set.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from e2e.lab.swarm import SwarmNode
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.fast import messages

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Verdicts:
    """Every node's alive set as its fast plane last reported it, and each time a peer left one."""

    def __init__(self) -> None:
        self.alive: dict[str, frozenset[str]] = {}  # observer -> its alive set
        self.downs: list[tuple[float, str, str]] = []  # (monotonic time, observer, the peer it dropped)

    def report(self, observer: str, alive: frozenset[str]) -> None:
        """OBSERVER's fast plane reported ALIVE."""
        now = time.monotonic()
        for peer in self.alive.get(observer, frozenset()) - alive - {observer}:
            self.downs.append((now, observer, peer))
        self.alive[observer] = alive

    def forget(self, observer: str) -> None:
        """OBSERVER's process is gone: what it last said no longer stands."""
        self.alive.pop(observer, None)

    def agreed(self, members: set[str]) -> bool:
        """Every one of MEMBERS counts exactly MEMBERS alive."""
        return all(self.alive.get(name) == members for name in members)

    def downs_between(self, start: float, end: float) -> list[tuple[float, str, str]]:
        """Peers dropped from an alive set between START and END."""
        return [d for d in self.downs if start <= d[0] <= end]


@dataclasses.dataclass(frozen=True)
class Sample:
    """One node's counters at one moment."""

    at: float  # when its fast plane reported them (monotonic)
    sent: int
    received: int
    late: int
    unsent: int
    cpu_s: float  # its process's CPU time (user and system), read from /proc now
    rss_mb: float


class NodePlane(FastProcess):
    """A real fast-plane process in a swarm node's namespace."""

    def __init__(self, node: SwarmNode, key: bytes, port: int, verdicts: Verdicts, interval: float,
                 timeout: float, topology: str = "mesh") -> None:
        super().__init__(node.name, key, port, on_alive=lambda alive: verdicts.report(node.name, alive),
                         on_duplicate=lambda *_: None, interval=interval, timeout=timeout, topology=topology)
        self.node = node
        self.launcher = ("ip", "netns", "exec", node.netns)
        self.stats_at = 0.0  # when the last counters arrived

    def _on_stats(self, message: messages.StatsReport) -> None:
        super()._on_stats(message)
        self.stats_at = time.monotonic()

    def _on_logged(self, message: messages.Logged) -> None:
        logging.getLogger(message.logger).log(message.level, "%s", message.text, extra={"node": self.node.name})

    def sample(self) -> Sample:
        """Its counters as last reported, and its CPU time now."""
        counters = self.stats.counters
        return Sample(self.stats_at, counters.sent, counters.received, counters.late, counters.unsent,
                      self.cpu_s(), self.stats.rss_mb)

    def cpu_s(self) -> float:
        """CPU seconds its process has used (user and system); 0 once it is gone."""
        assert self.process is not None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def kill(self) -> None:
        """SIGKILL its process (no goodbye), as a node dies; it is reaped, and its end is not an error."""
        self._closing = True  # its channel closing is expected now
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._channel is not None:
            self._channel.close()
