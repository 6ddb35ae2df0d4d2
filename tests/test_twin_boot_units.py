"""What the twin puts on a body's disk: cloud-init's settings (Debian's for EC2, and the twin's
datasource), the apt-daily stand-in when asked; the stand-in holds apt's and dpkg's locks
the way apt does; the hypervisor's identity cloud-init reads; fstab entries of volumes."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
from pathlib import Path

import pytest
import yaml

from labcore.errors import LabError
from twin import boot_units, image
from twin.fstab import Mount, mounts_for

HOLDER = Path(boot_units.GUEST / "apt.systemd.daily")
FLOCK = "hhqqi4x"  # struct flock on Linux x86_64


def _cloud_cfg(root: Path) -> dict:
    """cloud.cfg.d merged as cloud-init reads it: files in name order, a later key wins."""
    merged: dict = {}
    for path in sorted((root / boot_units.CLOUD_CFG_D).glob("*.cfg")):
        merged.update(yaml.safe_load(path.read_text()))
    return merged


def test_cloud_init_is_set_as_debian_sets_it_on_ec2_with_the_ec2_datasource_forced(tmp_path):
    assert boot_units.install(tmp_path, apt_daily=boot_units.apt_daily_seconds({})) == []
    cfg = _cloud_cfg(tmp_path)
    user = cfg["system_info"]["default_user"]
    assert user["name"] == "admin" and user["sudo"] == ["ALL=(ALL) NOPASSWD:ALL"] and "sudo" in user["groups"]
    assert cfg["manage_etc_hosts"] is True
    assert cfg["datasource_list"] == ["Ec2"]  # a container has no EC2 DMI data to be found by
    assert cfg["datasource"]["Ec2"]["strict_id"] is False
    assert cfg["network"] == {"config": "disabled"}  # the twin sets the address itself
    assert not (tmp_path / boot_units.WANTS).exists()  # no imitation of cloud-init's work is left


def test_the_labs_drop_in_is_read_after_the_twins_settings_and_keeps_etc_hosts(tmp_path):
    from bootstrap.components.base import CLOUD_INIT_DROP_IN, CLOUD_INIT_KEEPS_NAMES

    boot_units.install(tmp_path, apt_daily=0)
    (tmp_path / CLOUD_INIT_DROP_IN.lstrip("/")).write_text(CLOUD_INIT_KEEPS_NAMES)
    assert _cloud_cfg(tmp_path)["manage_etc_hosts"] is False


def test_lab_sim_apt_daily_seconds_puts_a_lock_holder_before_sshd_on_the_first_boot(tmp_path):
    seconds = boot_units.apt_daily_seconds({"LAB_SIM_APT_DAILY_SECONDS": "45"})
    assert boot_units.install(tmp_path, apt_daily=seconds) == [boot_units.APT_DAILY_UNIT]
    unit = (tmp_path / boot_units.UNITS / boot_units.APT_DAILY_UNIT).read_text()
    assert "apt.systemd.daily 45\n" in unit and "Before=ssh.service" in unit and "Type=notify" in unit
    assert "ConditionPathExists=!/var/lib/openstack-ec2-lab/apt-daily.done" in unit
    assert (tmp_path / boot_units.WANTS / boot_units.APT_DAILY_UNIT).is_symlink()


def test_the_hypervisor_shows_an_ec2_uuid_the_same_at_every_boot(tmp_path):
    folder = image.write_hypervisor(tmp_path / "hypervisor", "i-0123456789abcdef0")
    uuid = (folder / "uuid").read_text().strip()
    # cloud-init's identify_aws: a /sys/hypervisor/uuid starting with "ec2" is an EC2 instance.
    assert uuid.startswith("ec2") and len(uuid) == 36 and uuid.count("-") == 4
    assert image.hypervisor_uuid("i-0123456789abcdef0") == uuid != image.hypervisor_uuid("i-0fedcba9876543210")


@pytest.mark.parametrize("raw", ["soon", "-5", "1.5", "99999"])
def test_a_bad_apt_daily_setting_is_bad_input_naming_the_variable(raw):
    with pytest.raises(LabError, match="LAB_SIM_APT_DAILY_SECONDS.*whole number") as bad:
        boot_units.apt_daily_seconds({"LAB_SIM_APT_DAILY_SECONDS": raw})
    assert bad.value.exit_code == 2


def _holder_of(path: Path) -> int | None:
    """The pid holding an fcntl write lock on path, as apt (and the first-boot check) asks the kernel."""
    fd = os.open(path, os.O_RDONLY)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    finally:
        os.close(fd)
    l_type, _, _, _, pid = struct.unpack(FLOCK, answer)
    return None if l_type == fcntl.F_UNLCK else pid


def test_the_apt_daily_stand_in_holds_apts_locks_as_apt_does_then_lets_go(tmp_path):
    notify = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(10)
    holder = subprocess.Popen([str(HOLDER), "2"], env={**os.environ, "LOCK_ROOT": str(tmp_path),
                                                       "NOTIFY_SOCKET": str(notify)})
    try:
        assert listener.recv(200).startswith(b"READY=1")  # told systemd only once every lock is held
        locks = [tmp_path / p.lstrip("/") for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock",
                                                    "/var/lib/apt/lists/lock", "/var/cache/apt/archives/lock")]
        assert [_holder_of(p) for p in locks] == [holder.pid] * 4
        assert Path(f"/proc/{holder.pid}/comm").read_text().strip() == "apt.systemd.dai"  # as on EC2's ps
        with open(locks[0], "w") as handle, pytest.raises(OSError):  # what apt-get meets: the lock is taken
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert holder.wait(timeout=10) == 0
        assert [_holder_of(p) for p in locks] == [None] * 4
    finally:
        holder.kill()
        listener.close()


# ------------------------------------------------------------------ fstab entries of a body's volumes
FSTAB = """# /etc/fstab: static file system information.
proc /proc proc defaults 0 0
UUID=1111-aaaa /srv/node/sdb xfs noatime,nodiratime,logbufs=8,nofail 0 2
UUID="2222-bbbb" /srv/node/sdc xfs noatime,nofail 0 2
/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0ccc /srv/with\\040space ext4 defaults 0 2
UUID=3333-cccc /srv/node/sdd xfs noauto 0 2
UUID=9999-ffff /srv/node/elsewhere xfs defaults 0 2
/dev/nvme3n1 none swap sw 0 0
"""


def test_fstab_entries_of_plugged_volumes_are_the_ones_mounted_at_boot():
    devices = {"UUID=1111-aaaa": "/dev/nvme1n1", "UUID=2222-bbbb": "/dev/nvme2n1",
               "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0ccc": "/dev/nvme4n1",
               "UUID=3333-cccc": "/dev/nvme5n1", "/dev/nvme3n1": "/dev/nvme3n1"}
    assert mounts_for(FSTAB, devices) == [
        Mount("/dev/nvme1n1", "/srv/node/sdb", "xfs", "noatime,nodiratime,logbufs=8,nofail"),
        Mount("/dev/nvme2n1", "/srv/node/sdc", "xfs", "noatime,nofail"),
        Mount("/dev/nvme4n1", "/srv/with space", "ext4", "defaults"),
    ]
    assert mounts_for(FSTAB, {}) == []
