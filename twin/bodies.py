"""The twin's body layer on this host: containers, volumes and firewall for the reconciler.

Everything a body is lives on disk, so any process can find it and take it away:

    STATE/bodies/<instance id>/body.json     the body as last applied (written last: "started")
                              /upper /work   the overlay's layers; /root its mount point
                              /nspawn.pid    the systemd-nspawn process; /console.log its output
    STATE/volumes/<volume id>.img            sparse file; its loop device is found by `losetup -j`
    network namespace lab-<id>, veth lv<id>, bridge labbr0, nftables tables ip lab_sim{,_nat}
    cpu cgroup .../openstack-ec2-lab/lab-<id> in the cgroup filesystem (twin/cpu.py)

The root filesystem and the apt download cache are shared by every lab of this machine
under $LAB_SIM_CACHE (default /var/cache/openstack-ec2-lab): they are caches, not state.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

from labcore.devices import nitro_by_id_name
from twin import container, image, loopdev, netns
from twin.cpu import CpuCgroups
from twin.firewall import FAMILY, TABLE, apply_text, render_ruleset
from twin.hostcmd import HostCommandError, sh
from twin.model import InstanceBody, VolumeBody, body_from_dict
from twin.rootfs import ensure_rootfs

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("/var/cache/openstack-ec2-lab")


def cache_dir() -> Path:
    return Path(os.environ.get("LAB_SIM_CACHE", DEFAULT_CACHE))


class HostBodies:
    def __init__(self, state_dir: Path, cache: Path | None = None, cpu: CpuCgroups | None = None):
        self.state = Path(state_dir).absolute()
        self.cache = cache or cache_dir()
        self.cpu = cpu or CpuCgroups()
        self._processes: dict[str, object] = {}  # nspawn Popen objects this process started, to reap them

    # ------------------------------------------------------------ where things are
    @property
    def _bodies_dir(self) -> Path:
        return self.state / "bodies"

    def _dir(self, instance_id: str) -> Path:
        return self._bodies_dir / instance_id

    def _volume_file(self, volume_id: str) -> Path:
        return self.state / "volumes" / f"{volume_id}.img"

    def _nspawn_pid(self, instance_id: str) -> int | None:
        try:
            pid = int((self._dir(instance_id) / "nspawn.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if container.is_nspawn(pid) else None

    def _save(self, body: InstanceBody) -> None:
        tmp = self._dir(body.instance_id) / "body.json.tmp"
        tmp.write_text(json.dumps(dataclasses.asdict(body), indent=1, sort_keys=True))
        tmp.replace(self._dir(body.instance_id) / "body.json")

    # ------------------------------------------------------------ the BodyLayer protocol
    def ensure_network(self, subnet_cidr: str) -> None:
        netns.ensure_bridge(subnet_cidr)

    def bodies(self) -> dict[str, InstanceBody]:
        found = {}
        for path in sorted(self._bodies_dir.glob("*/body.json")):
            found[path.parent.name] = body_from_dict(json.loads(path.read_text()))
        return found

    def start(self, body: InstanceBody) -> None:
        folder = self._dir(body.instance_id)
        folder.mkdir(parents=True, exist_ok=True)
        rootfs = ensure_rootfs(self.cache, progress=log.info)
        root = folder / "root"
        if not os.path.ismount(root):
            image.seed_apt_cache(self.cache / "apt-archives", folder / "upper")
        image.mount_root(rootfs, folder / "upper", folder / "work", root)
        image.customize(root, hostname=body.hostname, user=body.ssh_user, public_key=body.public_key)
        netns.ensure_instance_net(body.instance_id, body.private_ip, body.subnet_cidr)
        init = self._running_init(body, root)
        for volume in body.volumes:
            self._plug(init, volume)
        self._save(body)

    def _running_init(self, body: InstanceBody, root: Path) -> int:
        pid = self._nspawn_pid(body.instance_id)
        process = self._processes.get(body.instance_id)
        if pid is None:
            machine = container.machine_name(body.instance_id)
            self.cpu.ensure(machine, body.instance_type)
            process = container.boot(root, machine=machine, hostname=body.hostname,
                                     netns=netns.netns_name(body.instance_id),
                                     console_log=self._dir(body.instance_id) / "console.log",
                                     exec_prefix=self.cpu.exec_prefix(machine))
            self._processes[body.instance_id] = process
            pid = process.pid
            (self._dir(body.instance_id) / "nspawn.pid").write_text(f"{pid}\n")
        ours = process is not None and process.pid == pid
        return container.wait_for_init(pid, alive=(lambda: process.poll() is None) if ours else None)

    def _plug(self, init: int, volume: VolumeBody) -> None:
        """Attach: the volume's file on a loop device, shown inside as /dev/nvmeNn1 with its by-id link."""
        path = self._volume_file(volume.volume_id)
        loopdev.create_sparse(path, volume.size_gb)
        major, minor = loopdev.device_numbers(loopdev.attach(path))
        name = f"nvme{volume.nvme_index}n1"
        container.run_inside(init, f"rm -f /dev/{name} && mknod /dev/{name} b {major} {minor} && "
                                   f"chmod 660 /dev/{name} && "
                                   f"mkdir -p /dev/disk/by-id && ln -sfn ../../{name} "
                                   f"/dev/disk/by-id/{nitro_by_id_name(volume.volume_id)}")

    def _unplug(self, init: int, volume: VolumeBody) -> None:
        """Detach: the device disappears from the instance; the volume's data stays for a re-attach."""
        container.run_inside(init, f"rm -f /dev/nvme{volume.nvme_index}n1 "
                                   f"/dev/disk/by-id/{nitro_by_id_name(volume.volume_id)}")
        loopdev.detach(self._volume_file(volume.volume_id))

    def sync_volumes(self, body: InstanceBody) -> None:
        have = self.bodies().get(body.instance_id)
        pid = self._nspawn_pid(body.instance_id)
        if have is None or pid is None:
            raise HostCommandError(f"twin: {body.instance_id} has no running container to attach volumes to")
        init = container.wait_for_init(pid)
        for volume in set(have.volumes) - set(body.volumes):
            self._unplug(init, volume)
        for volume in body.volumes:
            self._plug(init, volume)
        self._save(body)

    def apply_firewall(self, bodies: list[InstanceBody]) -> None:
        exists = sh("nft", "list", "table", FAMILY, TABLE, check=False).returncode == 0
        sh("nft", "-f", "-", input=apply_text(render_ruleset(bodies), exists))

    def host_public_keys(self, instance_id: str) -> list[str]:
        folder = self._dir(instance_id)
        if not (folder / "body.json").exists():
            return []
        return image.host_public_keys(folder / "root")

    def stop(self, instance_id: str) -> None:
        self._remove(instance_id)

    def _remove(self, instance_id: str) -> list[str]:
        folder = self._dir(instance_id)
        gone = []
        body = self.bodies().get(instance_id)
        image.harvest_apt_cache(folder / "upper", self.cache / "apt-archives")
        pid = self._nspawn_pid(instance_id)
        if pid is not None and container.kill(pid):
            gone.append(f"container {container.machine_name(instance_id)} (pid {pid})")
        process = self._processes.pop(instance_id, None)
        if process is not None:
            process.wait(timeout=container.KILL_TIMEOUT_SECONDS)
        if self.cpu.remove(container.machine_name(instance_id)):
            gone.append(f"cpu cgroup {container.machine_name(instance_id)}")
        for volume in body.volumes if body else ():
            path = self._volume_file(volume.volume_id)
            device = loopdev.detach(path)
            path.unlink(missing_ok=True)
            gone.append(f"volume {volume.volume_id}" + (f" ({device})" if device else ""))
        image.unmount_root(folder / "root")
        gone += netns.remove_instance_net(instance_id)
        shutil.rmtree(folder, ignore_errors=False)
        gone.append(f"files of {instance_id}")
        return gone

    def teardown_all(self) -> list[str]:
        gone = []
        for folder in sorted(p for p in self._bodies_dir.glob("*") if p.is_dir()):
            gone += self._remove(folder.name)
        for device, path in loopdev.backed_under(self.state):
            sh("losetup", "-d", device, check=False)
            gone.append(f"loop device {device} ({path})")
        for folder in (self._bodies_dir, self.state / "volumes"):
            if folder.exists():
                shutil.rmtree(folder)
                gone.append(f"removed {folder}")
        return gone + self.cpu.remove_all() + netns.remove_all_nets()
