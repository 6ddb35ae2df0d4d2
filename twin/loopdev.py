"""EBS volumes of the twin: sparse files on loop devices, found again by their backing file.

The loop device is never written down anywhere: `losetup -j FILE` finds it again, so
a new process (or `lab down` after the daemon died) frees exactly the devices whose
files live under the twin's state folder and no other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from twin.hostcmd import sh


def create_sparse(path: Path, size_gb: int) -> None:
    """A file of size_gb GiB that takes no space until written (a fresh EBS volume reads as zeros)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size_gb * 1024**3)


def attached(path: Path) -> str | None:
    """The loop device backed by path, if any."""
    out = sh("losetup", "-j", str(path), "-O", "NAME", "-n", check=False).stdout.split()
    return out[0] if out else None


def attach(path: Path) -> str:
    return attached(path) or sh("losetup", "--find", "--show", str(path)).stdout.strip()


def device_numbers(device: str) -> tuple[int, int]:
    rdev = os.stat(device).st_rdev
    return os.major(rdev), os.minor(rdev)


def detach(path: Path) -> str | None:
    """Free the loop device of path (lazily, if a mount still holds it); the device freed, if any."""
    device = attached(path)
    if device:
        sh("losetup", "-d", device, check=False)
    return device


def backed_under(folder: Path) -> list[tuple[str, str]]:
    """(device, backing file) of every loop device whose file lies under folder."""
    out = sh("losetup", "--list", "--json", "-O", "NAME,BACK-FILE", check=False).stdout
    devices = json.loads(out).get("loopdevices", []) if out.strip() else []
    prefix = str(folder.absolute()) + "/"
    return [(d["name"], d["back-file"]) for d in devices
            if (d.get("back-file") or "").removesuffix(" (deleted)").startswith(prefix)]
