"""The images a conformant cluster has that the lab cannot pull (`up --kubelet --conformance`): CoreDNS for the
cluster DNS, and the upstream e2e specs' `agnhost` and `pause` under the names the e2e framework at the lab's pin
uses (test/utils/image/manifest.go), so its pods start on images the nodes already hold.

- CoreDNS: a from-scratch image holding the binary tools/coredns/build.sh built from its pinned module, as
  upstream's own image is.
- agnhost: the binary tools/e2e/build.sh built from k8s.io/kubernetes/test/images/agnhost at the lab's pin, on a
  Debian base (mmdebstrap, as IronLB's image) with what the specs run inside it: bash, curl, netcat-openbsd,
  iproute2 and GNU wget (busybox's wget crashes in the source-ranges spec). Laid out as upstream's Dockerfile
  lays it out: /agnhost, /agnhost-2, /uploads, the porter's test certificate; entrypoint /agnhost, command pause.
- pause: the lab's own pause image, tagged as the framework names it.

Each archive is cached outside the repo under the key of the binaries it holds (and the base's packages).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from e2e.lab import image
from e2e.lab.config import REPO

COREDNS_REPOSITORY = "lab.ironlb.io/coredns"
AGNHOST_REPOSITORY = "registry.k8s.io/e2e-test-images/agnhost"
PAUSE_REPOSITORY = "registry.k8s.io/pause"
AGNHOST_PACKAGES = ("bash", "curl", "netcat-openbsd", "iproute2", "wget", "ca-certificates")
# GNU wget retries a timed-out connection 20 times; busybox's wget, which upstream's image has, tries once. The
# specs time a blocked connection by `wget -T 5` and poll: with retries each probe of a dropped connection took
# minutes instead of seconds.
WGETRC = "tries = 1\n"


def _build_script(name: str) -> str:
    """The last line a tools/NAME/build.sh prints (the binary or bin dir it built or found)."""
    out = subprocess.run(["bash", str(REPO / "tools" / name / "build.sh")], check=True, capture_output=True,
                         text=True).stdout
    return out.strip().splitlines()[-1]


def coredns_binary() -> Path:
    """CoreDNS built from its pinned module (cached)."""
    return Path(_build_script("coredns"))


def e2e_bin_dir() -> Path:
    """The directory holding e2e.test, agnhost and image-tags, built from the lab's Kubernetes pin (cached)."""
    return Path(_build_script("e2e"))


def framework_tags(e2e_bins: Path) -> dict[str, str]:
    """NAME -> the tag the e2e framework at the lab's pin expects (agnhost, pause)."""
    pairs = (line.split() for line in (e2e_bins / "image-tags").read_text().splitlines() if line.strip())
    return {name: tag for name, tag in pairs}


def coredns_image(binary: Path) -> str:
    """CoreDNS's image name: the lab's repository, tagged with the build's key."""
    return f"{COREDNS_REPOSITORY}:{binary.parent.parent.name}"


def _cached(name: str, key: str) -> Path:
    return image.CACHE / key / f"{name}.oci.tar"


def build_coredns(binary: Path) -> Path:
    """A from-scratch image with CoreDNS as its entrypoint; cached."""
    out = _cached("coredns", binary.parent.parent.name)
    if out.exists():
        return out
    ctr = image.buildah("from", "scratch").stdout.strip()
    try:
        image.buildah("copy", ctr, str(binary), "/coredns")
        image.buildah("config", "--entrypoint", '["/coredns"]', ctr)
        image.buildah("commit", "--quiet", ctr, coredns_image(binary))
    finally:
        image.buildah("rm", ctr)
    image.push(coredns_image(binary), out)
    return out


def build_agnhost(e2e_bins: Path) -> Path:
    """agnhost on the Debian base with the specs' tools, named as the framework names it; cached."""
    name = f"{AGNHOST_REPOSITORY}:{framework_tags(e2e_bins)['agnhost']}"
    base = image.debian_image("ironlb-lab-agnhost", AGNHOST_PACKAGES)
    layout = hashlib.sha256(WGETRC.encode()).hexdigest()[:8]
    out = _cached("agnhost", f"{e2e_bins.parent.name}-{base.rsplit(':', 1)[1]}-{layout}")
    if out.exists():
        return out
    porter = _agnhost_source() / "porter"
    ctr = image.buildah("from", base).stdout.strip()
    try:
        image.buildah("copy", ctr, str(e2e_bins / "agnhost"), "/agnhost")
        image.buildah("copy", ctr, str(porter / "localhost.crt"), str(porter / "localhost.key"), "/")
        image.buildah("run", "--network", "none", ctr, "--", "sh", "-c",
                      f"ln -s agnhost /agnhost-2 && mkdir /uploads && printf '{WGETRC}' > /etc/wgetrc")
        image.buildah("config", "--entrypoint", '["/agnhost"]', "--cmd", "pause", "--workingdir", "/", ctr)
        image.buildah("commit", "--quiet", ctr, name)
    finally:
        image.buildah("rm", ctr)
    image.push(name, out)
    return out


def _agnhost_source() -> Path:
    """agnhost's source directory in the pinned Kubernetes module."""
    out = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"], check=True,
                         capture_output=True, text=True, cwd=REPO / "tools" / "e2e" / "module").stdout
    return Path(out.strip()) / "test" / "images" / "agnhost"


def build_pause(e2e_bins: Path, kube_bins: Path) -> Path:
    """The lab's pause image (built from KUBE_BINS' pause if the store lacks it) under the framework's name."""
    name = f"{PAUSE_REPOSITORY}:{framework_tags(e2e_bins)['pause']}"
    out = image.IMAGE_DIR / "pause-upstream.oci.tar"
    if not image.has_image(image.PAUSE_IMAGE):
        image.build_pause(kube_bins / "pause")
    image.buildah("tag", image.PAUSE_IMAGE, name)
    image.push(name, out)
    return out


def build_all(kube_bins: Path) -> list[Path]:
    """Every image `--conformance` imports into the nodes: CoreDNS, agnhost, pause; built if missing."""
    e2e_bins = e2e_bin_dir()
    return [build_coredns(coredns_binary()), build_agnhost(e2e_bins), build_pause(e2e_bins, kube_bins)]
