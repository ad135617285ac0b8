"""Each real node's own cgroup tree, `/ilb-NODE` in every cgroup v1 hierarchy.

The kubelet uses it as its cgroup root (pods go under `/ilb-NODE/kubepods`), and the node's
containerd, kubelet and shims start in `/ilb-NODE/runtime`. Everything a node runs is therefore
in its tree, so killing the node is killing the tree, and nothing of one node lands in another's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from e2e.lab.config import NS_PREFIX

CGROUP_FS = Path("/sys/fs/cgroup")
RUNTIME = "runtime"


def hierarchies(types: tuple[str, ...] = ("cgroup",)) -> list[Path]:
    """Mount points of the cgroup hierarchies of these filesystem types (v1: the kubelet needs its root in each)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] in types:
            found.append(Path(fields[4]))
    return sorted(set(found))


def root_name(node_name: str) -> str:
    """The node's cgroup root as the kubelet takes it (`cgroupRoot`)."""
    return f"/{NS_PREFIX}{node_name}"


def prepare(node_name: str) -> list[Path]:
    """Create the node's root and runtime cgroups in every hierarchy; return the runtime cgroup.procs files."""
    procs_files = []
    for h in hierarchies():
        root = h / root_name(node_name).lstrip("/")
        for d in (root, root / RUNTIME):
            d.mkdir(exist_ok=True)
            if (h / "cpuset.cpus").exists():  # a new cpuset is empty: no process could run in it
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((h / f).read_text())
        procs_files.append(root / RUNTIME / "cgroup.procs")
    return procs_files


def _tree(node_name: str, hierarchy: Path) -> list[Path]:
    """The node's cgroups in one hierarchy, deepest first."""
    root = hierarchy / root_name(node_name).lstrip("/")
    if not root.is_dir():
        return []
    dirs = [Path(d) for d, _, _ in os.walk(root)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def pids(node_name: str) -> set[int]:
    """Every process in the node's tree."""
    found: set[int] = set()
    for d in _tree(node_name, CGROUP_FS / "pids"):
        with contextlib.suppress(OSError):
            found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
    return found


def kill(node_name: str, timeout: float = 10) -> int:
    """SIGKILL every process in the node's tree (frozen first, so none forks away); return how many."""
    freezer = CGROUP_FS / "freezer" / root_name(node_name).lstrip("/")
    state = freezer / "freezer.state"
    if state.exists():
        state.write_text("FROZEN")
    victims = pids(node_name)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if state.exists():
        state.write_text("THAWED")
    deadline = time.monotonic() + timeout
    while pids(node_name) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = pids(node_name)
    if left:
        raise RuntimeError(f"{node_name}: processes survived SIGKILL: {sorted(left)}")
    return len(victims)


def remove(node_name: str) -> None:
    """Remove the node's (empty) cgroups from every hierarchy (runc also mirrors them in the v2 one)."""
    for h in hierarchies(("cgroup", "cgroup2")):
        for d in _tree(node_name, h):
            with contextlib.suppress(OSError):
                d.rmdir()


def lab_nodes() -> list[str]:
    """Names of the nodes that have a cgroup tree now (leftovers included)."""
    pids_root = CGROUP_FS / "pids"
    if not pids_root.is_dir():
        return []
    return sorted(p.name[len(NS_PREFIX):] for p in pids_root.iterdir() if p.name.startswith(f"{NS_PREFIX}node-"))
