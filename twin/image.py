"""An instance's root filesystem: the cached Debian 12 tree overlaid, then made what a cloud image makes it.

On EC2, cloud-init gives a fresh instance its hostname, new SSH host keys and the login
user with the key pair's public key and passwordless sudo; here the same is written into
the overlay before the container boots. Each instance writes only to its own upper
layer, so the cached tree is shared read-only and a new instance costs no copy.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import uuid
from pathlib import Path

from twin import boot_units
from twin.hostcmd import sh

APT_ARCHIVES = Path("var/cache/apt/archives")
# What a Debian cloud image's /etc/hosts holds before cloud-init adds the instance's names.
LOCALHOST_HOSTS = ("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                   "ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n")
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


def customize(root: Path, *, hostname: str, user: str, public_key: str, apt_daily: int = 0) -> None:
    """Hostname, machine id, host keys, dpkg without fsync, the login user, the boot units
    (twin/boot_units.py): once per instance (each part idempotent)."""
    (root / "etc/hostname").write_text(hostname + "\n")
    if not (root / "etc/hosts").exists():  # debootstrap writes none; services resolve localhost
        (root / "etc/hosts").write_text(LOCALHOST_HOSTS)
    if not (root / "etc/machine-id").read_text().strip():
        (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    if not list((root / "etc/ssh").glob("ssh_host_*_key")):
        sh("ssh-keygen", "-A", "-f", str(root))
        _name_host_keys(root, hostname)
    (root / DPKG_UNSAFE_IO).write_text("# the twin's disks do not outlive a host crash: no fsync per file\nforce-unsafe-io\n")
    _login_user(root, user, public_key)
    boot_units.install(root, apt_daily=apt_daily)


def _name_host_keys(root: Path, hostname: str) -> None:
    """root@<hostname> as the keys' comment, as keys made on the host itself say (the console shows it)."""
    for pub in (root / "etc/ssh").glob("ssh_host_*_key.pub"):
        words = pub.read_text().split()
        pub.write_text(f"{words[0]} {words[1]} root@{hostname}\n")


def _login_user(root: Path, user: str, public_key: str) -> None:
    q = shlex.quote(user)
    if f"\n{user}:" not in "\n" + (root / "etc/passwd").read_text():
        sh("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", user)
    sudoers = root / "etc/sudoers.d/90-lab-cloud-user"
    sudoers.write_text(f"{user} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    home = f"/home/{user}"
    ssh_dir = root / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public_key.strip() + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    sh("chroot", str(root), "chown", "-R", f"{q}:{q}", f"{home}/.ssh")


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
