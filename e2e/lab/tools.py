"""The Go-built tools the lab runs (kubectl, helm and Kubernetes' own binaries): where they are, and
kubectl against the lab. Below every module that calls kubectl, so none of them imports another for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from e2e.lab.config import KUBECONFIG, tools_bin
from e2e.lab.state import load_state


def bin_dir() -> Path:
    """The Go-built binaries this lab runs (recorded at `up`, else built/looked up now)."""
    return load_state().bin_dir or tools_bin()


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 60,
            bins: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The lab's kubectl (from BINS, else the lab's binaries) as admin; raise with its stderr if `check`
    and it fails."""
    res = subprocess.run([str((bins or bin_dir()) / "kubectl"), f"--kubeconfig={KUBECONFIG}", *args], input=input,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
    return res
