"""An instance's root filesystem: the cached Debian 12 tree overlaid, and what the machine shows it.

On EC2, cloud-init gives a fresh instance its hostname, new SSH host keys and the login
user with the key pair's public key; on the twin the real cloud-init does it too, from the
twin's metadata service, so nothing of the kind is written here. What is written is what
belongs to the machine rather than the OS: a machine id, the hypervisor's identity
(/sys/hypervisor/uuid, which cloud-init reads to know it runs on EC2), dpkg without fsync,
and the twin's cloud-init settings and apt-daily stand-in (twin/boot_units.py). Each
instance writes only to its own upper layer, so the cached tree is shared read-only and a
new instance costs no copy.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from twin import boot_units
from twin.hostcmd import sh

APT_ARCHIVES = Path("var/cache/apt/archives")
# An instance's disk here is an overlay on the host's, thrown away with the instance and
# never meant to outlive a crash of the host: dpkg's fsync of every file it unpacks buys
# nothing, and with three instances installing at once on one disk it made the
# controller's packages take 175 s instead of ~145 s. Container image builds skip it too.
DPKG_UNSAFE_IO = Path("etc/dpkg/dpkg.cfg.d/openstack-ec2-lab-twin")


def mount_root(rootfs: Path, upper: Path, work: Path, root: Path) -> None:
    for folder in (upper, work, root):
        folder.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(root):
        sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={rootfs},upperdir={upper},workdir={work}", str(root))


def unmount_root(root: Path) -> None:
    if os.path.ismount(root):
        if sh("umount", str(root), check=False).returncode != 0:
            sh("umount", "-l", str(root))


def customize(root: Path, *, apt_daily: int = 0) -> None:
    """Machine id, dpkg without fsync, the twin's boot files: once per instance (each part idempotent)."""
    if not (root / "etc/machine-id").read_text().strip():
        (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (root / DPKG_UNSAFE_IO).write_text("# the twin's disks do not outlive a host crash: no fsync per file\nforce-unsafe-io\n")
    boot_units.install(root, apt_daily=apt_daily)


def hypervisor_uuid(instance_id: str) -> str:
    """What a Xen-based EC2 instance reads in /sys/hypervisor/uuid: a UUID starting with "ec2",
    here derived from the instance id (the same at every boot)."""
    digest = hashlib.sha256(instance_id.encode()).hexdigest()
    text = "ec2" + digest[3:32]
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def write_hypervisor(folder: Path, instance_id: str) -> Path:
    """The folder the container sees as /sys/hypervisor (bound read-only by twin/container.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "uuid").write_text(hypervisor_uuid(instance_id) + "\n")
    (folder / "type").write_text("xen\n")
    return folder


def host_public_keys(root: Path) -> list[str]:
    """"type base64" of each SSH host key, without the comment: what known_hosts pins."""
    keys = []
    for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        keys.append(" ".join(pub.read_text().split()[:2]))
    return keys


# ------------------------------------------------------------------ the shared apt download cache
def seed_apt_cache(shared: Path, upper: Path) -> int:
    """Hard-link the shared .debs into a new instance's upper layer, before it is mounted.

    apt reuses a .deb in its archives whose size and hash match the index, so a second
    lab downloads nothing it already has; each instance still owns its folder (apt's
    lock is per container, so three installs run in parallel).
    """
    if not shared.is_dir():
        return 0
    target = upper / APT_ARCHIVES
    target.mkdir(parents=True, exist_ok=True)
    return sum(_link_or_copy(deb, target / deb.name) for deb in shared.glob("*.deb"))


def harvest_apt_cache(upper: Path, shared: Path) -> int:
    """Keep what an instance downloaded for the next lab (only complete .debs, never whiteouts)."""
    source = upper / APT_ARCHIVES
    if not source.is_dir():
        return 0
    shared.mkdir(parents=True, exist_ok=True)
    return sum(_link_or_copy(deb, shared / deb.name) for deb in source.glob("*.deb") if deb.is_file())


def _link_or_copy(source: Path, target: Path) -> bool:
    if target.exists():
        return False
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copy2(source, target)
    return True
