"""One run of the specs in one forwarding mode: a fresh real-node lab (`up --kubelet --conformance`), IronLB
installed by its chart for that mode with one auto-assigned pool, then e2e.test from the e2e client's namespace
(e2e.lab.testclient) with JUnit written. The caller holds the machine's lab lock."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from e2e.conformance.specs import Mode, Spec, focus
from e2e.lab import lab, reallab, testclient, tools
from e2e.lab.config import KUBECONFIG, LAB_DIR
from e2e.lab.state import update_state

RESULTS_DIR = LAB_DIR / "conformance"
POOL = "conformance"
POOL_ADDRESSES = ["203.0.113.10-203.0.113.250"]
NODES = 3
CHART_VALUES = {Mode.KUBEPROXY: (), Mode.NODEPORT: ("speaker.nodePortForwarding=true",)}
POOL_FORWARDING = {Mode.KUBEPROXY: "KubeProxy", Mode.NODEPORT: "NodePort"}


@dataclass(frozen=True)
class Run:
    """Where one run wrote its JUnit and log, and how long its parts took."""

    mode: Mode
    junit: Path
    log: Path
    lab_seconds: float
    specs_seconds: float
    exit_code: int


def junit_path(mode: Mode, results_dir: Path = RESULTS_DIR, part: int = 0) -> Path:
    """Where a run in MODE writes its JUnit report (PART > 0: a resumed run's)."""
    return results_dir / (f"junit-{mode.value}.xml" if part == 0 else f"junit-{mode.value}-{part}.xml")


def reports(mode: Mode, results_dir: Path = RESULTS_DIR) -> list[Path]:
    """MODE's reports in the order they were written: the first run's, then each resumed run's."""
    found = [p for p in (junit_path(mode, results_dir, i) for i in range(0, 100)) if p.exists()]
    return found


def record_path(junit: Path) -> Path:
    """The run record written beside a JUnit report."""
    return junit.with_name(junit.name.replace("junit-", "run-").replace(".xml", ".json"))


def pool_manifests(mode: Mode) -> list[dict[str, object]]:
    """One auto-assigned pool over part of the lab's first pool range, announced from every node."""
    return [
        {"apiVersion": "ironlb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": POOL},
         "spec": {"addresses": POOL_ADDRESSES, "forwarding": POOL_FORWARDING[mode]}},
        {"apiVersion": "ironlb.io/v1beta1", "kind": "L2Advertisement", "metadata": {"name": POOL},
         "spec": {"ipAddressPools": [POOL]}},
    ]


def bring_up(mode: Mode) -> float:
    """A fresh conformance lab with IronLB installed for MODE; return the seconds it took."""
    started = time.monotonic()
    state = lab.up(NODES, kubelet=True, conformance=True, with_ironlb=False)
    assert state.bin_dir is not None
    update_state(helm_install_seconds=reallab.helm_install(state.bin_dir, *CHART_VALUES[mode]), ironlb=True)
    tools.kubectl("apply", "-f", "-", input="\n".join(json.dumps(d) for d in pool_manifests(mode)),
                  bins=state.bin_dir)
    return round(time.monotonic() - started, 1)


def e2e_argv(binary: Path, kube_bins: Path, specs: tuple[Spec, ...], junit: Path, timeout_s: int) -> list[str]:
    """e2e.test's command line, run in the e2e client's namespace."""
    return ["ip", "netns", "exec", testclient.NAMESPACE, str(binary),
            "--provider=skeleton", "--minStartupPods=-1", f"--kubeconfig={KUBECONFIG}",
            f"--kubectl-path={kube_bins / 'kubectl'}", "--dump-logs-on-failure=false",
            f"--ginkgo.focus={focus(specs)}", f"--ginkgo.junit-report={junit}", f"--ginkgo.timeout={timeout_s}s",
            "--ginkgo.no-color", "--ginkgo.v"]


def run_specs(mode: Mode, binary: Path, specs: tuple[Spec, ...], results_dir: Path = RESULTS_DIR,
              timeout_s: int = 3 * 3600, part: int = 0) -> Run:
    """Bring the lab up for MODE, run SPECS against it, write JUnit (PART > 0: a resumed run's, beside the
    earlier ones); the lab is left up for the caller."""
    results_dir.mkdir(parents=True, exist_ok=True)
    junit = junit_path(mode, results_dir, part)
    junit.unlink(missing_ok=True)
    log = junit.with_name(junit.name.replace("junit-", "e2e-").replace(".xml", ".log"))
    lab_seconds = bring_up(mode)
    kube_bins = tools.bin_dir()
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(e2e_argv(binary, kube_bins, specs, junit, timeout_s), stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout_s + 300).returncode
    return Run(mode, junit, log, lab_seconds, round(time.monotonic() - started, 1), code)
