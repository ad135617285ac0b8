"""What crosses between the speaker's two processes, besides the message kinds named in `child` and `remote`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ironlb.speaker.fast.l2.responder import Stats
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S
from ironlb.speaker.fast.liveness.protocol import KeySet
from ironlb.speaker.fast.liveness.transport import Counters


@dataclass(frozen=True)
class Config:
    """How the fast plane's process starts: who we are, the heartbeat key and port, its timings."""

    me: str
    key: KeySet
    port: int
    host: str = "::"
    interval: float = INTERVAL_S
    timeout: float = TIMEOUT_S
    log_level: int = 20  # logging.INFO: records at this level and above are sent to the control plane
    kernel_arp: bool = True  # answer ARP requests in the kernel (a tcx program) where it can be loaded


@dataclass(frozen=True)
class FastStats:
    """The fast plane's counters, sent to the control plane every second (metrics read the last one)."""

    counters: Counters = field(default_factory=Counters)
    fenced: bool = False
    responders: dict[str, Stats] = field(default_factory=dict)  # interface -> its responder's counters
    kernel_drops: dict[str, int] = field(default_factory=dict)  # interface -> frames the kernel dropped
    rss_mb: float = 0.0  # the fast plane's process
    gc_max_ms: float = 0.0  # its longest collection so far (one holds the loop for all of its length)
