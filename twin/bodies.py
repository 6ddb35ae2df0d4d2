"""The twin's body layer on this host: containers, volumes and firewall for the reconciler.

Everything a body is lives on disk, so any process can find it and take it away:

    STATE/bodies/<instance id>/body.json     the body as last applied (written last: "started")
                              /upper /work   the overlay's layers; /root its mount point
                              /nspawn.pid    the systemd-nspawn process; /console.log its console
    STATE/volumes/<volume id>.img            sparse file; its loop device is found by `losetup -j`
    network namespace lab-<id>, veth lv<id>, bridge labbr0, nftables tables ip lab_sim{,_nat}
    cpu cgroup .../openstack-ec2-lab/lab-<id> in the cgroup filesystem (twin/cpu.py)

A body outlives its container: a reboot boots a new container on the same overlay, loop
devices and address; a stopped instance keeps its overlay and volume files with no
container at all. A volume's file lives as long as the volume does in the API (the
reconciler prunes the others), so a volume that outlives its instance keeps its data.

The root filesystem and the apt download cache are shared by every lab of this machine
under $LAB_SIM_CACHE (default /var/cache/openstack-ec2-lab): they are caches, not state.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

from twin import boot_units, console, container, dhcp, image, loopdev, netns, plug
from twin.cpu import CpuCgroups
from twin.errors import TwinStateError
from twin.firewall import FAMILY, TABLE, apply_text, render_ruleset
from twin.hostcmd import HostCommandError, sh
from twin.model import InstanceBody, VolumeBody, read_body
from twin.rootfs import ensure_rootfs
from twin.watch import ExitWatcher

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("/var/cache/openstack-ec2-lab")
# How long a body may take to shut down cleanly before the twin pulls the plug (EC2 waits
# four minutes for a reboot; a lab host's services stop in seconds).
REBOOT_GRACE_SECONDS = 120.0
POWEROFF_GRACE_SECONDS = 60.0


def cache_dir() -> Path:
    return Path(os.environ.get("LAB_SIM_CACHE", DEFAULT_CACHE))


class HostBodies:
    def __init__(self, state_dir: Path, cache: Path | None = None, cpu: CpuCgroups | None = None, notify=None):
        self.state = Path(state_dir).absolute()
        self.cache = cache or cache_dir()
        self.cpu = cpu or CpuCgroups()
        self.watcher = ExitWatcher(notify)
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

    def _saved(self, instance_id: str) -> InstanceBody | None:
        """The saved body, or None when there is none or it is damaged (for taking it away)."""
        try:
            return read_body(self._dir(instance_id) / "body.json")
        except TwinStateError as exc:
            if (self._dir(instance_id) / "body.json").exists():
                log.warning("%s", exc)
            return None

    # ------------------------------------------------------------ the BodyLayer protocol
    def ensure_network(self, subnet_cidr: str) -> None:
        netns.ensure_bridge(subnet_cidr)

    def bodies(self) -> dict[str, InstanceBody]:
        return {path.parent.name: read_body(path) for path in sorted(self._bodies_dir.glob("*/body.json"))}

    def start(self, body: InstanceBody) -> None:
        folder = self._dir(body.instance_id)
        fresh = not (folder / "body.json").exists()
        folder.mkdir(parents=True, exist_ok=True)
        rootfs = ensure_rootfs(self.cache, progress=log.info)
        root = folder / "root"
        if fresh and not os.path.ismount(root):
            image.seed_apt_cache(self.cache / "apt-archives", folder / "upper")
        image.mount_root(rootfs, folder / "upper", folder / "work", root)
        if fresh:  # the machine's part; cloud-init does the rest at boot, from the metadata service
            image.customize(root, apt_daily=boot_units.apt_daily_seconds())
        image.write_hypervisor(folder / "hypervisor", body.instance_id)
        netns.ensure_instance_net(body.instance_id, body.private_ip, body.subnet_cidr, body.mac)
        init = self._running_init(body, root)
        plugged = {volume: plug.plug(init, volume, self._volume_file(volume.volume_id)) for volume in body.volumes}
        for mount in plug.mount_from_fstab(init, root, plugged):
            log.info("%s: mounted %s at %s from its fstab", body.instance_id, mount.device, mount.mountpoint)
        self._save(dataclasses.replace(body, running=True))

    def _running_init(self, body: InstanceBody, root: Path) -> int:
        pid = self._nspawn_pid(body.instance_id)
        process = self._processes.get(body.instance_id)
        if pid is None:
            machine = container.machine_name(body.instance_id)
            self.cpu.ensure(machine, body.instance_type)
            process = container.boot(root, machine=machine, netns=netns.netns_name(body.instance_id),
                                     console_log=self._dir(body.instance_id) / "console.log",
                                     hypervisor=self._dir(body.instance_id) / "hypervisor",
                                     exec_prefix=self.cpu.exec_prefix(machine))
            self._processes[body.instance_id] = process
            self.watcher.watch(body.instance_id, process)
            pid = process.pid
            (self._dir(body.instance_id) / "nspawn.pid").write_text(f"{pid}\n")
        ours = process is not None and process.pid == pid
        return container.wait_for_init(pid, alive=(lambda: process.poll() is None) if ours else None)

    def reboot(self, instance_id: str) -> None:
        """As EC2 does: the OS is asked to reboot (SIGINT makes systemd start ctrl-alt-del.target,
        a reboot); if it has not within REBOOT_GRACE_SECONDS, the container is reset."""
        pid = self._nspawn_pid(instance_id)
        init = container.find_init(pid) if pid else None
        if init is None:
            raise HostCommandError(f"twin: {instance_id} has no running container to reboot")
        if not self.watcher.watched(instance_id):  # not booted by this process: its end goes unheard
            container.kill(pid)
            self.watcher.add(instance_id, "reboot")
            return
        self.watcher.expect_reboot(instance_id)
        os.kill(init, signal.SIGINT)
        timer = threading.Timer(REBOOT_GRACE_SECONDS, self._reset_if_still_up, args=(instance_id, pid))
        timer.daemon = True
        timer.start()

    def _reset_if_still_up(self, instance_id: str, pid: int) -> None:
        if container.is_nspawn(pid) and self._nspawn_pid(instance_id) == pid:
            log.warning("%s did not reboot within %.0f s: resetting it", instance_id, REBOOT_GRACE_SECONDS)
            container.kill(pid)

    def ended(self) -> dict[str, str]:
        return self.watcher.take()

    def power_off(self, body: InstanceBody) -> None:
        """Stopped: a clean poweroff (nspawn turns SIGTERM into one), the plug pulled after
        POWEROFF_GRACE_SECONDS; the overlay and volume files stay, nothing else runs."""
        pid = self._nspawn_pid(body.instance_id)
        if pid is not None:
            self.watcher.expect_end(body.instance_id)
            os.kill(pid, signal.SIGTERM)
            if not container.wait_gone(pid, POWEROFF_GRACE_SECONDS):
                container.kill(pid)
        self._release(body.instance_id, (self._saved(body.instance_id) or body).volumes)
        self._save(dataclasses.replace(body, running=False))

    def _release(self, instance_id: str, volumes: tuple[VolumeBody, ...]) -> list[str]:
        """What only a running container holds: its process, cgroup, loop devices, disk mount, network."""
        gone = []
        process = self._processes.pop(instance_id, None)
        if process is not None:
            process.wait(timeout=container.KILL_TIMEOUT_SECONDS)
        machine = container.machine_name(instance_id)
        if self.cpu.remove(machine):
            gone.append(f"cpu cgroup {machine}")
        container.forget(machine)
        for volume in volumes:
            device = loopdev.detach(self._volume_file(volume.volume_id))
            if device:
                gone.append(f"loop device {device} of {volume.volume_id}")
        image.unmount_root(self._dir(instance_id) / "root")
        return gone + netns.remove_instance_net(instance_id)

    def sync_volumes(self, body: InstanceBody) -> None:
        have = self.bodies().get(body.instance_id)
        if have is not None and not have.running:  # a stopped instance: plugged when it starts
            self._save(dataclasses.replace(body, running=False))
            return
        pid = self._nspawn_pid(body.instance_id)
        if have is None or pid is None:
            raise HostCommandError(f"twin: {body.instance_id} has no running container to attach volumes to")
        init = container.wait_for_init(pid)
        for volume in set(have.volumes) - set(body.volumes):
            plug.unplug(init, volume, self._volume_file(volume.volume_id))
        for volume in body.volumes:
            plug.plug(init, volume, self._volume_file(volume.volume_id))
        self._save(body)

    def prune_volumes(self, existing: set[str]) -> list[str]:
        gone = []
        for path in sorted((self.state / "volumes").glob("*.img")):
            if path.stem not in existing and loopdev.attached(path) is None:
                path.unlink()
                gone.append(f"volume file {path.stem}")
        return gone

    def apply_firewall(self, bodies: list[InstanceBody]) -> None:
        exists = sh("nft", "list", "table", FAMILY, TABLE, check=False).returncode == 0
        sh("nft", "-f", "-", input=apply_text(render_ruleset(bodies), exists))

    def host_public_keys(self, instance_id: str) -> list[str]:
        folder = self._dir(instance_id)
        if not (folder / "body.json").exists():
            return []
        return image.host_public_keys(folder / "root")

    def console_output(self, instance_id: str) -> str | None:
        folder = self._dir(instance_id)
        if not folder.is_dir():
            return None
        return console.tail(folder / "console.log") or ""

    def stop(self, instance_id: str) -> None:
        self._remove(instance_id)

    def _remove(self, instance_id: str) -> list[str]:
        folder = self._dir(instance_id)
        gone = []
        body = self._saved(instance_id)
        image.harvest_apt_cache(folder / "upper", self.cache / "apt-archives")
        pid = self._nspawn_pid(instance_id)
        self.watcher.expect_end(instance_id)
        if pid is not None and container.kill(pid):
            gone.append(f"container {container.machine_name(instance_id)} (pid {pid})")
        gone += self._release(instance_id, body.volumes if body else ())
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
        gone += dhcp.stop_leftover(self.state)
        return gone + self.cpu.remove_all() + netns.remove_all_nets() + container.forget_all()
