"""The Debian 12 root filesystem every twin instance boots from: built once, then overlaid.

Built with debootstrap into a temporary folder and renamed when complete, under a lock,
so an interrupted build is never used and two `lab up` never build at once.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from twin.hostcmd import sh

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("openssh-server", "systemd", "systemd-sysv", "dbus", "iproute2", "python3", "sudo",
            "ca-certificates", "iputils-ping", "xfsprogs", "util-linux", "procps", "curl")


def rootfs_dir(cache_dir: Path) -> Path:
    return cache_dir / f"rootfs-{SUITE}"


def ensure_rootfs(cache_dir: Path, progress=print) -> Path:
    target = rootfs_dir(cache_dir)
    if (target / ".complete").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        building = cache_dir / f"rootfs-{SUITE}.building"
        shutil.rmtree(building, ignore_errors=True)
        progress(f"building the twin's Debian 12 root filesystem (once; about a minute) in {target}")
        started = time.monotonic()
        sh("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(building), MIRROR,
           timeout=1200)
        _prepare(building)
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
        (target / ".complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    return target


def _prepare(root: Path) -> None:
    """What a cloud image has and what it must not share between instances."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/apt/apt.conf.d/90lab-keep-debs").write_text('Binary::apt::APT::Keep-Downloaded-Packages "true";\n')
    (root / "etc/apt/apt.conf.d/docker-clean").unlink(missing_ok=True)
    # The instance's sshd must start without waiting for anything the container lacks.
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True, exist_ok=True)
