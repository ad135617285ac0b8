"""The lab's images, built offline: IronLB from the repo's Dockerfile, and the pod sandbox's pause.

No registry is reachable, so the Dockerfile is built (buildah) on a Debian base made by mmdebstrap
from Debian's packages, with every Python dependency downloaded on the host as wheels for the
image's Python and platform and installed with no index. The base and the wheels are cached
outside the repo, keyed by what they are made from; the images go to oci-archives that each
node's containerd imports.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from e2e.lab.config import LAB_DIR, REPO

IMAGE = "lab.ironlb.io/ironlb:lab"
PAUSE_IMAGE = "lab.ironlb.io/pause:lab"
CACHE = Path(os.environ.get("IRONLB_IMAGE_CACHE", Path.home() / ".cache" / "ironlb" / "images"))
IMAGE_DIR = LAB_DIR / "images"
IRONLB_ARCHIVE = IMAGE_DIR / "ironlb.oci.tar"
PAUSE_ARCHIVE = IMAGE_DIR / "pause.oci.tar"
# FRR for the speaker's frr container (`up --bgp` on real nodes): the tag the chart is given as
# speaker.bgp.frrImage. Users pull the FRR project's image; the lab cannot, so it builds one from Debian's.
FRR_IMAGE = "lab.ironlb.io/frr:lab"
FRR_ARCHIVE = IMAGE_DIR / "frr.oci.tar"
FRR_PACKAGES = ("frr",)

# The base: what the Dockerfile's stages need (python3 with venv) and what the speaker runs (nft).
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "nftables", "conntrack")
# Debian bookworm's python3 is CPython 3.11 on glibc 2.36; pip picks wheels for exactly that.
WHEEL_TARGET = ("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3",
                "--abi", "none", "--platform", "manylinux_2_36_x86_64", "--platform", "manylinux2014_x86_64")
# The files the image is made from: an archive older than any of them is rebuilt.
TREE = ("Dockerfile", "pyproject.toml", "README.md", "src", "wheelhouse")


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a build step; raise with its output if it fails."""
    res = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed ({res.returncode}):\n{res.stdout[-2000:]}\n"
                           f"{res.stderr[-3000:]}")
    return res


def buildah(*args: str) -> subprocess.CompletedProcess[str]:
    """buildah on the lab's own image store (in the cache, not the machine's default store)."""
    store = CACHE / "buildah"
    return _run(["buildah", "--root", str(store / "root"), "--runroot", str(store / "run"),
                 "--storage-driver", "overlay", *args])


def base_image() -> str:
    """The Debian base as a local buildah image (mmdebstrap, cached by suite and packages)."""
    return debian_image("ironlb-lab-base", BASE_PACKAGES)


def has_image(tag: str) -> bool:
    """True if the lab's buildah store holds an image named TAG."""
    return subprocess.run(["buildah", "--root", str(CACHE / "buildah" / "root"), "--runroot",
                           str(CACHE / "buildah" / "run"), "inspect", "--type", "image", tag],
                          capture_output=True).returncode == 0


def debian_image(name: str, packages: tuple[str, ...]) -> str:
    """A Debian minbase with PACKAGES as a local buildah image `localhost/NAME:KEY` (mmdebstrap, cached by
    suite and packages)."""
    key = _key(SUITE, "minbase", *packages)
    tag = f"localhost/{name}:{key}"
    if has_image(tag):
        return tag
    tar = CACHE / f"base-{key}.tar"
    if not tar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = tar.with_suffix(".tmp.tar")
        _run(["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(packages)}", SUITE, str(tmp)])
        tmp.replace(tar)
    ctr = buildah("from", "scratch").stdout.strip()
    try:
        buildah("add", ctr, str(tar), "/")
        buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ctr)
        buildah("commit", "--quiet", ctr, tag)
    finally:
        buildah("rm", ctr)
    return tag


def requirements() -> list[str]:
    """What the image installs: the project's dependencies and its build backend."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["build-system"]["requires"]]


def wheels() -> Path:
    """Wheels of every requirement for the image's Python and platform (cached by the list)."""
    reqs = requirements()
    out = CACHE / f"wheels-{_key(*WHEEL_TARGET, *reqs)}"
    if not out.exists():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *WHEEL_TARGET,
              "--dest", str(tmp), *reqs])
        tmp.replace(out)
    return out


def _context() -> Path:
    """A build context with only what the Dockerfile copies, and the wheels in wheelhouse/."""
    ctx = IMAGE_DIR / "context"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    for name in ("Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, ctx / name)
    shutil.copytree(REPO / "src", ctx / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(wheels(), ctx / "wheelhouse")
    return ctx


def tree_mtime() -> float:
    """Newest modification time among the files the image is made from."""
    newest = 0.0
    for name in TREE:
        path = REPO / name
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if "__pycache__" not in p.parts]
        newest = max([newest, *(p.stat().st_mtime for p in paths if p.is_file())])
    return newest


def up_to_date() -> bool:
    """True if both archives exist and the IronLB one is newer than the tree."""
    return PAUSE_ARCHIVE.exists() and IRONLB_ARCHIVE.exists() and IRONLB_ARCHIVE.stat().st_mtime > tree_mtime()


def build_ironlb() -> Path:
    """Build the repo's Dockerfile on the Debian base, offline, into an oci-archive."""
    base = base_image()
    ctx = _context()
    buildah("bud", "--quiet", "--layers=false", "--network", "none", "--build-arg", f"BASE={base}",
            "--build-arg", "PIP_ARGS=--no-index", "-t", IMAGE, "-f", str(ctx / "Dockerfile"), str(ctx))
    push(IMAGE, IRONLB_ARCHIVE)
    buildah("rmi", "--prune")  # the image this one replaced: the store would grow by one per build
    shutil.rmtree(ctx, ignore_errors=True)
    return IRONLB_ARCHIVE


def build_pause(pause_binary: Path) -> Path:
    """A from-scratch image holding only the pause binary built from the pinned Kubernetes module."""
    ctr = buildah("from", "scratch").stdout.strip()
    try:
        buildah("copy", ctr, str(pause_binary), "/pause")
        buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr)
        buildah("commit", "--quiet", ctr, PAUSE_IMAGE)
    finally:
        buildah("rm", ctr)
    push(PAUSE_IMAGE, PAUSE_ARCHIVE)
    return PAUSE_ARCHIVE


def push(image: str, archive: Path) -> None:
    """Write `image` to an oci-archive named after it (containerd imports the name with it)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    buildah("push", "--quiet", image, f"oci-archive:{tmp}:{image}")
    tmp.replace(archive)


def _frr_key() -> str:
    """What the FRR image is made from."""
    return _key(SUITE, "minbase", *FRR_PACKAGES)


def frr_up_to_date() -> bool:
    """True if the FRR archive exists and was made from today's inputs."""
    marker = FRR_ARCHIVE.with_suffix(".key")
    return FRR_ARCHIVE.exists() and marker.exists() and marker.read_text() == _frr_key()


def build_frr() -> Path:
    """Debian's FRR on a minbase (cached by its inputs), into an oci-archive tagged FRR_IMAGE."""
    buildah("tag", debian_image("ironlb-lab-frr", FRR_PACKAGES), FRR_IMAGE)
    push(FRR_IMAGE, FRR_ARCHIVE)
    FRR_ARCHIVE.with_suffix(".key").write_text(_frr_key())
    return FRR_ARCHIVE


def ensure(bin_dir: Path, force: bool = False, frr: bool = False) -> dict[str, float]:
    """Build what is missing or older than the tree (and the FRR image if FRR); return the seconds each
    step took."""
    took: dict[str, float] = {}
    if frr and (force or not frr_up_to_date()):
        started = time.monotonic()
        build_frr()
        took["frr"] = round(time.monotonic() - started, 1)
    if force or not PAUSE_ARCHIVE.exists():
        started = time.monotonic()
        build_pause(bin_dir / "pause")
        took["pause"] = round(time.monotonic() - started, 1)
    if force or not up_to_date():
        started = time.monotonic()
        build_ironlb()
        took["ironlb"] = round(time.monotonic() - started, 1)
    return took


def archives() -> list[Path]:
    """The image archives a real node imports."""
    return [PAUSE_ARCHIVE, IRONLB_ARCHIVE]


def import_into(ctr_address: str, archive: Path) -> None:
    """Import an oci-archive into a containerd's Kubernetes namespace."""
    _run(["ctr", "--address", ctr_address, "--namespace", "k8s.io", "images", "import", str(archive)])
