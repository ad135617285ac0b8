"""Every message between the speaker's two processes: one type per kind, and the values they carry.

TO_FAST are sent by the control plane (`control.fastproc`) and handled by the fast plane (`fast.child`);
FROM_FAST go the other way. `fast.wire` encodes and decodes them. Each end dispatches with a table keyed
by these types, and a message of a type its table lacks is refused at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ironlb.speaker.fast.announcer import Diff, Interface
from ironlb.speaker.fast.claims import Claim, Claims
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
    restart_hold_s: float = 0.0  # on the way out, ask peers to answer for this node's IPs this long (0: leave)
    topology: str = "mesh"  # whom heartbeats go to (liveness/ringmode.Topology's value)


class Refusal(Enum):
    """Why a frame was refused."""

    GARBLED = "garbled"              # not a pickle, or cut short
    FOREIGN_CLASS = "foreign-class"  # names a class that is neither a message nor a value one carries
    UNHANDLED = "unhandled"          # a value, but not a message of a type this end handles
    OVERSIZED = "oversized"          # longer than the receive buffer (the kernel cut it)


@dataclass(frozen=True)
class FastStats:
    """The fast plane's counters, sent to the control plane every second (metrics read the last one)."""

    counters: Counters = field(default_factory=Counters)
    fenced: bool = False
    responders: dict[str, Stats] = field(default_factory=dict)  # interface -> its responder's counters
    kernel_drops: dict[str, int] = field(default_factory=dict)  # interface -> frames the kernel dropped
    rss_mb: float = 0.0  # the fast plane's process
    gc_max_ms: float = 0.0  # its longest collection so far (one holds the loop for all of its length)
    channel_refused: dict[Refusal, int] = field(default_factory=dict)  # frames it refused from the control plane


# -- to the fast plane ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Start:
    """Start the fast plane with CONFIG: bind the heartbeat port, then answer Started or Failed."""

    config: Config


@dataclass(frozen=True, slots=True)
class LearnNodes:
    """The names of node bits START onwards (sent before the first claims that use them)."""

    start: int
    names: list[str]


@dataclass(frozen=True, slots=True)
class PutClaims:
    """This node's claims for the IPs that changed (one chunk of them; () drops an IP's claims)."""

    changes: dict[str, Claims]


@dataclass(frozen=True, slots=True)
class SetInterfaces:
    """The usable interfaces, and every MAC of this node (its own frames are never a duplicate)."""

    interfaces: dict[str, Interface]
    own_macs: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class SetPeers:
    """Whom to heartbeat (node -> address), and the addresses each node may speak from."""

    peers: dict[str, str]
    addresses: dict[str, set[str]]


@dataclass(frozen=True, slots=True)
class SetKey:
    """Sign and check heartbeats with KEYS from now on (a rotation)."""

    keys: KeySet


@dataclass(frozen=True, slots=True)
class Fence:
    """Stop counting ourselves and send FENCED heartbeats (self-fencing); Join undoes it."""


@dataclass(frozen=True, slots=True)
class Join:
    """Join the election; answered by Joined with the same TOKEN."""

    token: int


@dataclass(frozen=True, slots=True)
class Reannounce:
    """One more gratuitous burst for everything owned."""


@dataclass(frozen=True, slots=True)
class Release:
    """End NODE's hold now: its node no longer answers (it counts as dead from here on)."""

    node: str


@dataclass(frozen=True, slots=True)
class Close:
    """Stop answering, say goodbye to peers (a restart's hold for every owned IP but EXCLUDED, when the Config
    asks for one), answer Closed and end."""

    excluded: frozenset[str] = frozenset()


# -- from the fast plane --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Started:
    """The heartbeat port is bound: the fast plane runs."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The fast plane could not start (ERROR says why; the process then ends)."""

    error: str


@dataclass(frozen=True, slots=True)
class Alive:
    """The nodes alive now, ourselves included once joined."""

    alive: frozenset[str]


@dataclass(frozen=True, slots=True)
class Owned:
    """What changed in ownership (IP -> its interfaces, None when no longer owned), and in what is answered."""

    changes: dict[str, frozenset[str] | None]
    diff: Diff


@dataclass(frozen=True, slots=True)
class Members:
    """Peers expected (from the Node list), peers heard within the timeout, and peers held for a restart."""

    known: frozenset[str]
    heard: frozenset[str]
    held: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Duplicates:
    """Frames from another MAC for our IPs since the last report: (ip, foreign MAC, interface) -> frames."""

    frames: dict[tuple[str, str, str], int]


@dataclass(frozen=True, slots=True)
class StatsReport:
    """The fast plane's counters now (every second)."""

    stats: FastStats


@dataclass(frozen=True, slots=True)
class Logged:
    """One log record of the fast plane's, for the control plane to write: level, logger name, text."""

    level: int
    logger: str
    text: str


@dataclass(frozen=True, slots=True)
class Joined:
    """The Join with this TOKEN is done: heartbeats out, ourselves counted."""

    token: int


@dataclass(frozen=True, slots=True)
class Closed:
    """Goodbyes said: the fast plane ends."""


ToFast = (Start | LearnNodes | PutClaims | SetInterfaces | SetPeers | SetKey | Fence | Join | Reannounce | Release
          | Close)
FromFast = Started | Failed | Alive | Owned | Members | Duplicates | StatsReport | Logged | Joined | Closed
Message = ToFast | FromFast
TO_FAST: tuple[type[ToFast], ...] = (Start, LearnNodes, PutClaims, SetInterfaces, SetPeers, SetKey, Fence, Join,
                                     Reannounce, Release, Close)
FROM_FAST: tuple[type[FromFast], ...] = (Started, Failed, Alive, Owned, Members, Duplicates, StatsReport, Logged,
                                         Joined, Closed)
# The classes of the values messages carry (besides the builtins): the only others a frame may name.
CARRIED: tuple[type, ...] = (Config, FastStats, KeySet, Claim, Interface, Diff, Counters, Stats, Refusal)
