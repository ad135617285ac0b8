"""The chart's FRR start script, run as the frr container runs it: its /var/run/frr is the directory shared with
the speaker (here a private mount in a network namespace), the driver owns the daemons' config, and on SIGTERM
the daemons stay up until the speaker says it has drained."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from ironlb.core.bgp.model import Announcement, Desired, Peer
from ironlb.speaker.bgp.component import DRAINED_FILE
from ironlb.speaker.bgp.driver import FrrDriver
from tests.chart.helm import CHART, find_helm

pytestmark = pytest.mark.privileged

DESIRED = Desired.of([Peer("rtr", 64513, 64512, address="198.18.39.1", connect_time_s=1)], [],
                     [Announcement("198.18.39.200/32", frozenset({"rtr"}))])


def start_script() -> str:
    found = find_helm()
    if found.path is None:
        pytest.fail(f"no helm to render the chart: {found.reason}")
    out = subprocess.run([str(found.path), "template", "ironlb", str(CHART), "--set", "speaker.bgp.enabled=true"],
                         check=True, capture_output=True, text=True).stdout
    [cm] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ConfigMap"
            and d["metadata"]["name"].endswith("-speaker-frr")]
    return cm["data"]["start.sh"]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_start_script_daemons_are_driven_and_outlive_sigterm_until_drained() -> None:
    netns = f"ilb-bgpt-start-{os.getpid()}"
    top = Path(tempfile.mkdtemp(prefix="ilb-bgpt-"))
    sockets = top / "frr"
    sockets.mkdir()
    (top / "start.sh").write_text(start_script())
    subprocess.run(["ip", "netns", "add", netns], check=True)
    # The container's view: a /run of its own whose frr directory is the shared one.
    inner = f"mount -t tmpfs none /run && mkdir /run/frr && mount --bind {sockets} /run/frr && exec sh {top}/start.sh"
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "unshare", "-m", "sh", "-c", inner],
                            env={**os.environ, "DRAIN_LIMIT": "20"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    driver = FrrDriver(str(sockets))
    try:
        assert wait_until(lambda: all((sockets / f"{d}.vty").exists() for d in ("zebra", "bgpd", "bfdd")))
        time.sleep(0.3)
        await driver.apply(DESIRED)
        assert await driver.read_back() == DESIRED
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert proc.poll() is None, "FRR stopped before the speaker drained"
        (sockets / DRAINED_FILE).touch()
        assert proc.wait(timeout=10) == 0
        assert not any((sockets / f"{d}.pid").exists() and _alive(sockets / f"{d}.pid")
                       for d in ("zebra", "bgpd", "bfdd"))
    finally:
        driver.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def _alive(pidfile: Path) -> bool:
    try:
        state = Path(f"/proc/{int(pidfile.read_text())}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError):
        return False
    return state != "Z"
