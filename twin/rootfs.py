"""The Debian 12 root filesystem every twin instance boots from: built once, then overlaid.

Built with debootstrap into a temporary folder and renamed when complete, under a lock,
so an interrupted build is never used and two `lab up` never build at once.

As far as packages go it is Debian's official bookworm EC2 image: the packages that image
adds to a minimal Debian for the cloud and for EC2 and that matter to a host of the lab,
so that what the lab meets at first boot (cloud-init reading the metadata service,
unattended-upgrades and apt's daily timers, sudo, OpenSSH) is what it meets on AWS.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from twin.hostcmd import sh

# A Debian cloud image's /etc/hosts before cloud-init writes the instance's names into it.
LOCALHOST_HOSTS = ("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                   "ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n")

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# Source: Debian's cloud image builder, https://salsa.debian.org/cloud-team/debian-cloud-images,
# config_space/bookworm/package_config/: class CLOUD (openssh-server, sudo, unattended-upgrades,
# dbus, chrony, cloud-initramfs-growroot, ...), class EC2 (cloud-init, cloud-guest-utils,
# amazon-ec2-utils, awscli), and the Priority important packages every Debian image has
# (iproute2, iputils-ping, procps, ...). Left out, because the twin boots no kernel, disk or
# DHCP of its own: the kernel, grub, initramfs and growroot, isc-dhcp-client, ifupdown and
# amazon-ec2-utils (udev rules for Nitro's NVMe names; the twin names its devices itself);
# chrony (the lab installs and configures it from the guide; a container may not set the
# clock); awscli (the lab does not use it). xfsprogs is not in the image: the lab installs it
# on the hosts that format Swift volumes, as it must on AWS. locales, with en_US.UTF-8
# generated in the image and set as its default: cloud-init's locale module sets that
# locale at the first boot and fails without it (cloud-init status: error); with no default
# set it ran locale-gen again at every first boot, 4.5 s before the host keys reached the
# console (cloud-init analyze blame: config-locale), to reach the same /etc/default/locale.
IMAGE_PACKAGES = ("cloud-init", "cloud-guest-utils", "openssh-server", "sudo", "unattended-upgrades", "dbus",
                  "systemd-sysv", "iproute2", "iputils-ping", "procps", "ca-certificates", "curl", "less",
                  "netbase", "logrotate", "util-linux", "locales")
# debootstrap resolves no virtual packages: python3-cryptography (under cloud-init) needs
# python3-cffi-backend's virtual python3-cffi-backend-api-*, so it is named here.
RESOLVER_PACKAGES = ("python3-cffi-backend",)
PACKAGES = IMAGE_PACKAGES + RESOLVER_PACKAGES
# In the cache folder's name: a change of the image's packages builds a new one.
IMAGE_VERSION = "ec2-3"


def rootfs_dir(cache_dir: Path) -> Path:
    return cache_dir / f"rootfs-{SUITE}-{IMAGE_VERSION}"


def ensure_rootfs(cache_dir: Path, progress=print) -> Path:
    target = rootfs_dir(cache_dir)
    if (target / ".complete").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        building = target.with_name(target.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        progress(f"building the twin's Debian 12 root filesystem (once; about two minutes) in {target}")
        started = time.monotonic()
        sh("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(building), MIRROR,
           timeout=1200)
        _prepare(building)
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
        (target / ".complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    return target


def _prepare(root: Path) -> None:
    """What a cloud image has and what it must not share between instances (cloud-init
    makes each instance's host keys and hostname at its first boot)."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")  # debootstrap copied this machine's name
    (root / "etc/hosts").write_text(LOCALHOST_HOSTS)
    (root / "etc/locale.gen").write_text("en_US.UTF-8 UTF-8\n")
    sh("chroot", str(root), "locale-gen", timeout=300)
    sh("chroot", str(root), "update-locale", "LANG=en_US.UTF-8", timeout=60)
    (root / "etc/apt/apt.conf.d/90lab-keep-debs").write_text('Binary::apt::APT::Keep-Downloaded-Packages "true";\n')
    (root / "etc/apt/apt.conf.d/docker-clean").unlink(missing_ok=True)
    # The instance's sshd must start without waiting for anything the container lacks.
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True, exist_ok=True)
