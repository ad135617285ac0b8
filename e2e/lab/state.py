"""The lab's recorded state: what runs, where and how it was brought up, as one typed record.

It lives in `.lab/state.json` so that every command (`python -m e2e.lab ...`, a test session, a
benchmark) sees the lab the others brought up. The file keeps the keys and shapes it always had, so a
lab recorded by an earlier version of this code still loads; a file this code cannot read is an error
that names the file and the way out (`python -m e2e.lab down`), never a silently empty lab.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from e2e.lab.config import LAB_DIR, STATE_FILE, NodeAddr, node


class Status(StrEnum):
    """Where the lab is in its life."""

    DOWN = "down"
    STARTING = "starting"
    READY = "ready"


class StateFileError(RuntimeError):
    """The state file exists but does not hold a lab state this code can read."""


@dataclass(frozen=True)
class Proc:
    """One process the lab started, recorded so that it is stopped by PID and never mistaken for another."""

    pid: int
    argv: tuple[str, ...]
    netns: str | None
    start: str | None  # the kernel's start time of PID: a recycled PID has another
    stop_s: float | None = None  # the least time SIGTERM must be given (a speaker's drain); None: the caller's

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Proc:
        """Read one entry of the file's `procs`."""
        return cls(pid=int(raw["pid"]), argv=tuple(raw["argv"]), netns=raw["netns"], start=raw["start"],
                   stop_s=raw.get("stop_s"))


@dataclass(frozen=True)
class Pod:
    """One lightweight workload pod: a process in its own namespace on a node, and its Pod object."""

    app: str
    namespace: str
    node: str
    ips: tuple[str, ...]
    port: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Pod:
        """Read one entry of the file's `pods`."""
        return cls(app=raw["app"], namespace=raw["namespace"], node=raw["node"], ips=tuple(raw["ips"]),
                   port=int(raw["port"]))


@dataclass(frozen=True)
class LabState:
    """The whole lab as recorded; DOWN with nothing in it when no lab is recorded."""

    status: Status = Status.DOWN
    bin_dir: Path | None = None  # the Go-built binaries the lab runs
    nodes: int = 0
    ipv6: bool = False
    kubelet: bool = False  # real nodes (`up --kubelet`): containerd and a kubelet per node
    ironlb: bool = False
    metallb: bool = False
    bgp: bool = False  # `up --bgp`: the router, bgpclient and (lightweight) an FRR per node
    conformance: bool = False  # `up --kubelet --conformance`: cluster DNS, the e2e images, the e2e client
    killed: tuple[str, ...] = ()
    procs: Mapping[str, Proc] = field(default_factory=dict)
    pods: Mapping[str, Pod] = field(default_factory=dict)
    pod_ip_counter: Mapping[str, int] = field(default_factory=dict)  # per node: the last pod address used
    up_seconds: float | None = None
    nodes_seconds: float | None = None
    helm_install_seconds: float | None = None
    image_build_seconds: Mapping[str, float] = field(default_factory=dict)

    @property
    def node_names(self) -> list[str]:
        """Names of every node of the lab, killed or not."""
        return [f"node-{i}" for i in range(1, self.nodes + 1)]

    @property
    def all_nodes(self) -> list[NodeAddr]:
        """Every node of the lab, killed or not."""
        return [node(i) for i in range(1, self.nodes + 1)]

    @property
    def live_nodes(self) -> list[NodeAddr]:
        """The nodes that are not killed."""
        return [n for n in self.all_nodes if n.name not in self.killed]

    def with_proc(self, name: str, proc: Proc) -> LabState:
        """This state with process NAME recorded as PROC."""
        return dataclasses.replace(self, procs={**self.procs, name: proc})

    def without_proc(self, name: str) -> LabState:
        """This state with no record of process NAME."""
        return dataclasses.replace(self, procs={n: p for n, p in self.procs.items() if n != name})

    def with_pod(self, name: str, pod: Pod) -> LabState:
        """This state with workload pod NAME recorded as POD."""
        return dataclasses.replace(self, pods={**self.pods, name: pod})

    def without_pods(self, names: Collection[str]) -> LabState:
        """This state with no record of the workload pods NAMES."""
        return dataclasses.replace(self, pods={n: p for n, p in self.pods.items() if n not in names})

    def with_killed(self, node_name: str, killed: bool) -> LabState:
        """This state with NODE_NAME recorded as killed (or alive again)."""
        others = set(self.killed) - {node_name}
        return dataclasses.replace(self, killed=tuple(sorted(others | ({node_name} if killed else set()))))

    def to_json(self) -> dict[str, Any]:
        """The record as the file holds it."""
        raw = dataclasses.asdict(self)
        for proc in raw["procs"].values():  # written only where it was given: most processes stop at once
            if proc["stop_s"] is None:
                del proc["stop_s"]
        raw["status"] = self.status.value
        raw["bin_dir"] = str(self.bin_dir) if self.bin_dir else None
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LabState:
        """Read the file's object; keys absent from it (an older lab's, or a lab still starting) take defaults."""
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        return cls(
            status=Status(raw.get("status", Status.DOWN)),
            bin_dir=Path(raw["bin_dir"]) if raw.get("bin_dir") else None,
            nodes=int(raw.get("nodes", 0)),
            ipv6=bool(raw.get("ipv6", False)),
            kubelet=bool(raw.get("kubelet", False)),
            ironlb=bool(raw.get("ironlb", False)),
            metallb=bool(raw.get("metallb", False)),
            bgp=bool(raw.get("bgp", False)),
            conformance=bool(raw.get("conformance", False)),
            killed=tuple(raw.get("killed", ())),
            procs={name: Proc.from_json(p) for name, p in raw.get("procs", {}).items()},
            pods={name: Pod.from_json(p) for name, p in raw.get("pods", {}).items()},
            pod_ip_counter={n: int(c) for n, c in raw.get("pod_ip_counter", {}).items()},
            up_seconds=raw.get("up_seconds"),
            nodes_seconds=raw.get("nodes_seconds"),
            helm_install_seconds=raw.get("helm_install_seconds"),
            image_build_seconds=dict(raw.get("image_build_seconds", {})),
        )


def load_state() -> LabState:
    """The lab's recorded state (DOWN and empty when no lab is recorded)."""
    try:
        text = STATE_FILE.read_text()
    except FileNotFoundError:
        return LabState()
    try:
        return LabState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"{STATE_FILE} does not hold a lab state this code can read ({exc!r}); "
                             "`python -m e2e.lab down` removes the lab it describes") from exc


def save_state(state: LabState) -> None:
    """Write the lab's state atomically."""
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True))
    tmp.replace(STATE_FILE)


def update_state(**changes: Any) -> LabState:
    """Record CHANGES (field=value) in the lab's state; return the new state."""
    state = dataclasses.replace(load_state(), **changes)
    save_state(state)
    return state
