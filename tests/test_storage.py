"""Storage preparation with a fake host that simulates its block devices: never format data."""

from __future__ import annotations

import re

import pytest
from fakes import FakeRemote
from plan_fixtures import inventory

from lab.hostsfile import render_hosts
from lab.storage import device_candidates, prepare_storage
from labcore.errors import RemoteError
from labcore.inventory import VolumeRecord
from labcore.remote import RunResult


class DiskHost(FakeRemote):
    """A host whose devices, filesystems, fstab and mounts answer like the real commands."""

    def __init__(self, name: str, links: dict[str, str], filesystems: dict[str, str | None]):
        super().__init__(name)
        self.links, self.fs, self.fstab, self.mounted = links, dict(filesystems), "# /etc/fstab\n", set()
        self.verify_ok = True
        self.answer(r"for d in", self._resolve)
        self.answer(r"^blkid -p -o export", self._probe)
        self.answer(r"^mkfs\.xfs", self._mkfs)
        self.answer(r"^blkid -p -s UUID", lambda c, s: RunResult(0, f"uuid-{c.split()[-1].split('/')[-1]}\n"))
        self.answer(r"^cat /etc/fstab", lambda c, s: RunResult(0, self.fstab))
        self.answer(r"^cat > /etc/fstab", self._write_fstab)
        self.answer(r"^mkdir -p", self._mount)
        self.answer(r"^findmnt --verify", lambda c, s: RunResult(0 if self.verify_ok else 1, "", "0 parse errors, 1 error"))
        self.answer(r"^command -v mkfs\.xfs", RunResult(0))  # xfsprogs is there
        self.answer(r"systemctl daemon-reload", RunResult(0))

    def _resolve(self, command, stdin):
        for path in re.findall(r"'?(/dev/\S+?)'?(?= |;)", command):
            if path in self.links:
                return RunResult(0, self.links[path] + "\n")
            if path in self.fs:
                return RunResult(0, path + "\n")
        return RunResult(1)

    def _probe(self, command, stdin):
        fs = self.fs[command.split()[-1]]
        if fs is None:
            return RunResult(2)
        key = "PTTYPE" if fs == "gpt" else "TYPE"
        return RunResult(0, f"DEVNAME={command.split()[-1]}\n{key}={fs}\n")

    def _mkfs(self, command, stdin):
        self.fs[command.split()[-1]] = "xfs"
        return RunResult(0)

    def _write_fstab(self, command, stdin):
        self.fstab = stdin
        return RunResult(0)

    def _mount(self, command, stdin):
        self.mounted.add(command.split()[2])
        return RunResult(0)

    def formats(self) -> list[str]:
        return self.ran(r"^mkfs")


NVME = {"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0aaa": "/dev/nvme1n1",
        "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0bbb": "/dev/nvme2n1"}
VOLUMES = [VolumeRecord(name="sdb", volume_id="vol-0aaa", size_gb=10, device="/dev/sdf"),
           VolumeRecord(name="sdc", volume_id="vol-0bbb", size_gb=10, device="/dev/sdg")]


def nitro(sdb=None, sdc=None) -> DiskHost:
    return DiskHost("object1", NVME, {"/dev/nvme1n1": sdb, "/dev/nvme2n1": sdc})


def test_blank_nvme_volumes_are_found_by_volume_id_formatted_once_and_mounted():
    host = nitro()
    reports = prepare_storage(host, VOLUMES)
    assert [(r.name, r.device, r.action) for r in reports] == [("sdb", "/dev/nvme1n1", "formatted"),
                                                               ("sdc", "/dev/nvme2n1", "formatted")]
    assert host.formats() == ["mkfs.xfs -q /dev/nvme1n1", "mkfs.xfs -q /dev/nvme2n1"]
    assert host.mounted == {"/srv/node/sdb", "/srv/node/sdc"}
    assert host.ran(r"^findmnt --verify")


def test_fstab_mounts_by_uuid_with_nofail_and_without_nobarrier():
    host = nitro()
    prepare_storage(host, VOLUMES)
    lines = [l for l in host.fstab.splitlines() if "/srv/node" in l]
    assert lines == ["UUID=uuid-nvme1n1 /srv/node/sdb xfs noatime,nodiratime,logbufs=8,nofail 0 2",
                     "UUID=uuid-nvme2n1 /srv/node/sdc xfs noatime,nodiratime,logbufs=8,nofail 0 2"]
    assert "nobarrier" not in host.fstab and host.fstab.startswith("# /etc/fstab\n")


def test_systemd_rereads_fstab_before_the_mounts_so_findmnt_verify_is_clean():
    host = nitro()
    prepare_storage(host, VOLUMES)
    at = {what: next(i for i, c in enumerate(host.commands) if c.startswith(prefix))
          for what, prefix in (("write", "cat > /etc/fstab"), ("reload", "if command -v systemctl"), ("mount", "mkdir -p"))}
    assert at["write"] < at["reload"] < at["mount"]


def test_a_volume_that_already_holds_xfs_is_never_formatted():
    host = nitro(sdb="xfs", sdc=None)
    reports = prepare_storage(host, VOLUMES)
    assert [r.action for r in reports] == ["reused", "formatted"]
    assert host.formats() == ["mkfs.xfs -q /dev/nvme2n1"]


@pytest.mark.parametrize("content", ["ext4", "gpt"])
def test_a_volume_with_other_data_is_refused_and_nothing_is_formatted(content):
    host = nitro(sdb=None, sdc=content)
    with pytest.raises(RemoteError, match=r"nvme2n1.*refusing to format"):
        prepare_storage(host, VOLUMES)
    assert host.formats() == ["mkfs.xfs -q /dev/nvme1n1"]  # the blank one only
    assert host.fs["/dev/nvme2n1"] == content


def test_xen_instances_see_sdf_as_xvdf():
    host = DiskHost("object1", {}, {"/dev/xvdf": None, "/dev/xvdg": "xfs"})
    reports = prepare_storage(host, VOLUMES)
    assert [(r.device, r.action) for r in reports] == [("/dev/xvdf", "formatted"), ("/dev/xvdg", "reused")]
    assert device_candidates(VOLUMES[0]) == ["/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0aaa",
                                             "/dev/xvdf", "/dev/sdf"]


def test_a_missing_device_names_the_volume():
    host = DiskHost("object1", {}, {})
    with pytest.raises(RemoteError, match=r"object1: volume sdb \(vol-0aaa, attached as /dev/sdf\) has no device"):
        prepare_storage(host, VOLUMES)


def test_a_second_run_changes_nothing():
    host = nitro()
    prepare_storage(host, VOLUMES)
    fstab, formats = host.fstab, len(host.formats())
    host.commands.clear()
    reports = prepare_storage(host, VOLUMES)
    assert [r.action for r in reports] == ["reused", "reused"]
    assert not host.formats() and not host.ran(r"^cat > /etc/fstab") and host.fstab == fstab and formats == 2


def test_findmnt_verify_failure_stops_with_the_host_named():
    host = nitro()
    host.verify_ok = False
    with pytest.raises(RemoteError, match="object1: findmnt --verify failed"):
        prepare_storage(host, VOLUMES)


def test_hosts_file_lists_every_node_and_comments_out_127_0_1_1():
    inv = inventory()
    text = render_hosts("127.0.0.1 localhost\n127.0.1.1 ip-172-31-0-5\n", inv)
    assert "# 127.0.1.1 ip-172-31-0-5" in text and "127.0.0.1 localhost" in text
    for line in ("10.0.0.11 controller", "10.0.0.51 object1", "10.0.0.52 object2"):
        assert line in text.splitlines()
    assert render_hosts(text, inv) == text


class Fleet:
    def __init__(self, hosts):
        self.hosts = hosts

    def __call__(self, node):
        return self.hosts[node.name]


def test_the_device_lookup_waits_for_a_device_that_is_not_there_yet():
    """EC2 (and the twin) can report a volume attached a moment before its block device
    appears: the lookup keeps looking for a while instead of failing at once."""
    import subprocess
    import time as clock

    from lab.storage import resolve_command

    started = clock.monotonic()
    result = subprocess.run(["sh", "-c", resolve_command(VOLUMES[0], wait_seconds=2)], capture_output=True)
    assert result.returncode == 1 and clock.monotonic() - started >= 1.0
