"""Network namespaces, veth pairs and the lab bridge, through iproute2."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from e2e.lab.config import NS_PREFIX


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS` (in `netns` if given)."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def run_in(netns: str, argv: Sequence[str], check: bool = True, timeout: float | None = 30,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command inside `netns` and capture its output."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], check=check, capture_output=True,
                          text=True, timeout=timeout, input=input)


def sysctl(netns: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl."""
    run_in(netns, ["sysctl", "-qw", f"{key}={value}"])


def list_netns(prefix: str) -> list[str]:
    """Every named network namespace whose name starts with `prefix`."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix)]


def list_lab_netns() -> list[str]:
    """Every network namespace with the lab's prefix."""
    return list_netns(NS_PREFIX)


def add_netns(name: str) -> None:
    """Create a namespace with loopback up (replacing a leftover of the same name)."""
    if name in list_lab_netns():
        delete_netns(name)
    subprocess.run(["ip", "netns", "add", name], check=True)
    ip("link", "set", "lo", "up", netns=name)


def delete_netns(name: str) -> None:
    """Delete a namespace if it exists (its interfaces go with it)."""
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def veth(a: str, a_ns: str | None, b: str, b_ns: str | None) -> None:
    """Create a veth pair with end `a` in `a_ns` and end `b` in `b_ns` (None = host)."""
    tmp_a, tmp_b = f"t{abs(hash((a, a_ns))) % 10**9}", f"t{abs(hash((b, b_ns))) % 10**9}"
    ip("link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
    for tmp, name, ns in ((tmp_a, a, a_ns), (tmp_b, b, b_ns)):
        if ns:
            ip("link", "set", tmp, "netns", ns)
        ip("link", "set", tmp, "name", name, netns=ns)


def link_mac(netns: str | None, dev: str) -> str:
    """MAC address of `dev`."""
    out = ip("-o", "link", "show", "dev", dev, netns=netns).stdout
    return out.split("link/ether", 1)[1].split()[0]
