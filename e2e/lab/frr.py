"""FRR in a lab namespace: zebra, bgpd and bfdd, their sockets in one directory, as the FRR contract says.

The daemons run in the foreground as lab processes (started and stopped by PID, logs in `.lab/logs/`), never
in the host's network namespace. They are driven through their vty sockets, with `vtysh --vty_socket DIR`.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from e2e.lab import procs

DAEMONS = ("zebra", "bgpd", "bfdd")
FRR_BIN = Path("/usr/lib/frr")
# Debian's FRR refuses to start unless its user belongs to the vty group (frrvty); root does not, so the
# lab's daemons run as root with frrvty as their group.
USER_ARGS = ("-u", "root", "-g", "frrvty")
EMPTY_CONFIG = "empty.conf"


def proc_name(owner: str, daemon: str) -> str:
    """The lab's name for OWNER's DAEMON (e.g. frr-node-1-bgpd)."""
    return f"frr-{owner}-{daemon}"


def daemon_argv(daemon: str, socket_dir: Path, config: Path) -> list[str]:
    """The contract's command line of one daemon, its sockets and pid file in SOCKET_DIR."""
    argv = [str(FRR_BIN / daemon), "--vty_socket", str(socket_dir), "-i", str(socket_dir / f"{daemon}.pid"),
            # bfdd too: bgpd's BFD sessions reach it through zebra, and without -z it would look for zebra at
            # the default /var/run/frr/zserv.api, someone else's zebra or none.
            "-z", str(socket_dir / "zserv.api")]
    if daemon == "bfdd":
        argv += ["--bfdctl", str(socket_dir / "bfdd.sock")]
    return [*argv, "-f", str(config), *USER_ARGS]


def start(owner: str, netns: str, socket_dir: Path, config_text: str = "", timeout: float = 20) -> None:
    """Start OWNER's zebra, bgpd and bfdd in NETNS with CONFIG_TEXT (empty: whoever drives it owns the config);
    return when every vty socket answers."""
    socket_dir.mkdir(parents=True, exist_ok=True)
    for leftover in socket_dir.iterdir():  # a killed predecessor's sockets and pid files
        if leftover.name.endswith((".vty", ".api", ".sock", ".pid")):
            leftover.unlink()
    config = socket_dir / ("frr.conf" if config_text else EMPTY_CONFIG)
    config.write_text(config_text)
    for daemon in DAEMONS:
        procs.spawn(proc_name(owner, daemon), daemon_argv(daemon, socket_dir, config), netns=netns)
        if daemon == "zebra":  # bgpd connects to zebra at start
            _wait(lambda: (socket_dir / "zserv.api").exists(), timeout, f"{owner}: zebra's zserv.api")
    _wait(lambda: _answers(socket_dir), timeout, f"{owner}: FRR's vty sockets in {socket_dir}")


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll DONE until true; raise naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout} s (see .lab/logs/frr-*.log)")


def _answers(socket_dir: Path) -> bool:
    """True if every daemon's vty socket exists and vtysh gets an answer through them."""
    if not all((socket_dir / f"{d}.vty").exists() for d in DAEMONS):
        return False
    return vtysh(socket_dir, "show version", check=False).returncode == 0


def stop(owner: str, sig: int = signal.SIGTERM) -> None:
    """Stop OWNER's daemons by PID (SIGKILL: as a node dies, no goodbye to its peers)."""
    for daemon in reversed(DAEMONS):
        procs.stop(proc_name(owner, daemon), sig=sig, timeout=5)


def running(owner: str) -> bool:
    """True if any of OWNER's daemons runs."""
    return bool(procs.running(f"frr-{owner}-"))


def vtysh(socket_dir: Path, *commands: str, check: bool = True,
          timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run vtysh commands against the daemons whose sockets are in SOCKET_DIR."""
    argv = ["vtysh", "--vty_socket", str(socket_dir)]
    for command in commands:
        argv += ["-c", command]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and (res.returncode != 0 or "% " in res.stdout):
        raise RuntimeError(f"vtysh {commands!r} in {socket_dir}: {res.returncode} {res.stdout.strip()} "
                           f"{res.stderr.strip()}")
    return res


def configure(socket_dir: Path, lines: list[str]) -> None:
    """Apply configuration LINES (as typed after `configure terminal`) to the daemons in SOCKET_DIR."""
    vtysh(socket_dir, "configure terminal", *lines)
