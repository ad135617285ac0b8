"""Restart a command when it exits, as a kubelet restarts a container (restartPolicy: Always).

`python -m e2e.probes.supervise -- CMD...`: SIGTERM/SIGINT stop the child and the supervisor; the
lab stops both together anyway (they share a process group).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def main() -> int:
    """Run CMD forever, restarting it after it exits (1 s back-off)."""
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        child = subprocess.Popen(argv)
        code = child.wait()
        if stopping:
            break
        print(f"supervise: {argv[0]} exited with {code}; restarting in 1 s", file=sys.stderr, flush=True)
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
