"""Processes the lab starts: launched detached with a log file, recorded by PID, stopped by PID."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from e2e.lab.config import LAB_DIR, LOCK_FILE, LOG_DIR
from e2e.lab.state import Proc, load_state, save_state

# The Popen of every process this interpreter spawned and has not reaped. The children outlive the call
# that starts them by design, and a Popen collected while its child runs warns (ResourceWarning, an error
# under the test suite's filterwarnings): so each is kept until its child is reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@contextlib.contextmanager
def lab_lock() -> Iterator[None]:
    """Serialise lab-changing commands so two `up` calls never clash."""
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def netns_cmd(netns: str | None, argv: Sequence[str]) -> list[str]:
    """argv to run `argv` inside network namespace `netns` (or the host when None)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def spawn(name: str, argv: Sequence[str], netns: str | None = None, env: dict[str, str] | None = None,
          stop_s: float | None = None) -> int:
    """Start a detached process logging to logs/NAME.log; record and return its PID.

    One process per NAME: one already running under it is stopped first, never left unrecorded. STOP_S: the
    least time a SIGTERM must give it before SIGKILL, whatever its stopper's own timeout (a draining speaker)."""
    stop(name)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it open
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        netns_cmd(netns, argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env=full_env,
    )
    log.close()
    _forget_exited()
    _CHILDREN[proc.pid] = proc
    record = Proc(pid=proc.pid, argv=tuple(argv), netns=netns, start=_start_time(proc.pid), stop_s=stop_s)
    save_state(load_state().with_proc(name, record))
    return proc.pid


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, so a recycled PID is never mistaken for ours."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def is_running(entry: Proc) -> bool:
    """True if the recorded process is still the one we started and not a zombie."""
    if _start_time(entry.pid) != entry.start:
        return False
    try:
        status = Path(f"/proc/{entry.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return status != "Z"


def stop(name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
    """Stop the recorded process NAME (its whole session) by PID, SIGKILL after TIMEOUT (or its recorded
    stop_s, if longer); True if it was running."""
    state = load_state()
    entry = state.procs.get(name)
    save_state(state.without_proc(name))
    if not entry or not is_running(entry):
        return False
    if sig == signal.SIGKILL:
        _signal_group(entry.pid, sig)
    else:  # the process itself (a supervisor forwards it): a group signal would arrive twice
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(entry.pid, sig)
    deadline = time.monotonic() + stop_wait(entry, sig, timeout)
    while time.monotonic() < deadline and is_running(entry):
        time.sleep(0.05)
    if is_running(entry):
        _signal_group(entry.pid, signal.SIGKILL)
    _reap(entry.pid)
    return True


def stop_wait(entry: Proc, sig: int, timeout: float) -> float:
    """How long SIG may take to stop ENTRY before SIGKILL: TIMEOUT, or the time it recorded it needs if longer."""
    if sig == signal.SIGKILL or entry.stop_s is None:
        return timeout
    return max(timeout, entry.stop_s)


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group the lab created for `pid` (it was started as a session leader)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child (avoids zombies in long test runs)."""
    proc = _CHILDREN.pop(pid, None)
    if proc is None:  # started by another interpreter (`python -m e2e.lab up`), or already reaped
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return
    try:
        proc.wait(timeout=5.0)  # it was just stopped or killed: its exit is imminent
    except subprocess.TimeoutExpired:
        _CHILDREN[pid] = proc  # still exiting: reaped later, never collected unreaped


def _forget_exited() -> None:
    """Reap the children that exited on their own (a crash, `kill_node`), as subprocess does for its own."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def running(prefix: str = "") -> dict[str, Proc]:
    """Recorded processes whose name starts with `prefix` and that are still running."""
    return {n: e for n, e in load_state().procs.items() if n.startswith(prefix) and is_running(e)}


def signal_all(name: str, sig: int) -> bool:
    """Send SIG to the recorded process NAME and everything it started (its process group); True if running."""
    entry = running(name).get(name)
    if entry is None:
        return False
    _signal_group(entry.pid, sig)
    return True


def stop_all(prefix: str = "") -> list[str]:
    """Stop every recorded process whose name starts with `prefix`; return their names."""
    names = [n for n in load_state().procs if n.startswith(prefix)]
    # Reverse start order: dependants (speakers, proxies) go before the API server and etcd, and a BGP-mode
    # speaker before its node's FRR, which its drain drives (its recorded stop_s gives the drain its bound).
    for name in reversed(names):
        stop(name, timeout=5.0)
    return names
