"""A body's volumes inside its running container: plug, unplug, and mount from its fstab.

A volume is a sparse file on a loop device (twin/loopdev.py), shown inside as the Nitro
names: /dev/nvmeNn1 and /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol... . The
container's /dev is new at every boot, so a rebooted body is plugged again, and then the
fstab entries of its volumes are mounted (twin/fstab.py says why the twin does it).
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from labcore.devices import nitro_by_id_name
from twin import container, loopdev
from twin.fstab import Mount, mounts_for
from twin.hostcmd import HostCommandError, sh
from twin.model import VolumeBody

log = logging.getLogger(__name__)


def device_name(volume: VolumeBody) -> str:
    return f"/dev/nvme{volume.nvme_index}n1"


def by_id_path(volume: VolumeBody) -> str:
    return f"/dev/disk/by-id/{nitro_by_id_name(volume.volume_id)}"


def plug(init: int, volume: VolumeBody, path: Path) -> str:
    """Attach: the volume's file on a loop device, shown inside under its Nitro names; the loop device."""
    loopdev.create_sparse(path, volume.size_gb)
    loop = loopdev.attach(path)
    major, minor = loopdev.device_numbers(loop)
    name = device_name(volume)
    container.run_inside(init, f"rm -f {name} && mknod {name} b {major} {minor} && chmod 660 {name} && "
                               f"mkdir -p /dev/disk/by-id && ln -sfn ../../{name.removeprefix('/dev/')} "
                               f"{by_id_path(volume)}")
    return loop


def unplug(init: int, volume: VolumeBody, path: Path) -> None:
    """Detach: the device disappears from the instance; the volume's data stays for a re-attach."""
    container.run_inside(init, f"rm -f {device_name(volume)} {by_id_path(volume)}")
    loopdev.detach(path)


def _uuid(loop: str) -> str | None:
    """The filesystem UUID on a loop device, None when it is blank (blkid exits 2)."""
    out = sh("blkid", "-o", "value", "-s", "UUID", loop, check=False).stdout.strip()
    return out or None


def _mounted(init: int) -> set[str]:
    """Mount points inside the container (mountinfo's fifth field, relative to its root)."""
    try:
        lines = Path(f"/proc/{init}/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[4] for line in lines if len(line.split()) > 4}


def mount_from_fstab(init: int, root: Path, plugged: dict[VolumeBody, str]) -> list[Mount]:
    """Mount the fstab entries of the plugged volumes (volume -> its loop device) that are not
    mounted yet; what was mounted. A mount that fails is logged and skipped, as `nofail` asks
    at boot: the body still comes up."""
    try:
        fstab = (root / "etc/fstab").read_text()
    except FileNotFoundError:
        return []
    names: dict[str, str] = {}
    for volume, loop in plugged.items():
        inside = device_name(volume)
        names[inside] = names[by_id_path(volume)] = inside
        uuid = _uuid(loop)
        if uuid:
            names[f"UUID={uuid}"] = inside
    done = []
    mounted = _mounted(init)
    for mount in mounts_for(fstab, names):
        if mount.mountpoint in mounted:
            continue
        try:
            container.run_inside(init, f"mkdir -p {shlex.quote(mount.mountpoint)} && mount -t {shlex.quote(mount.fstype)} "
                                       f"-o {shlex.quote(mount.options)} {mount.device} {shlex.quote(mount.mountpoint)}")
        except HostCommandError as exc:
            log.error("could not mount %s at %s from the body's fstab: %s", mount.device, mount.mountpoint, exc)
            continue
        done.append(mount)
    return done
