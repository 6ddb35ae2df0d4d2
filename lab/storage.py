"""The Swift volumes on a host: find each one's real device, format only blank ones, mount, fstab.

Never destroys data: a device holding any filesystem or partition table is never
formatted; XFS is reused as it is, anything else stops with an error naming it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bootstrap.apt_lock import AptLock, guarded
from labcore.devices import nitro_by_id_name
from labcore.errors import RemoteError
from labcore.inventory import VolumeRecord
from labcore.remote import Remote

# Before the profile's install: the lab's lock wait (any apt version) before each apt command.
_LOCK = AptLock(option=False)
INSTALL_XFSPROGS = (f"{guarded(_LOCK, 'apt-get update -q')} && "
                    f"{guarded(_LOCK, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q xfsprogs')}")

MOUNT_ROOT = "/srv/node"
# The guide's options without nobarrier (refused by kernels 4.19 and newer), and nofail so
# that a missing volume cannot stop the host from booting.
FSTAB_OPTIONS = "noatime,nodiratime,logbufs=8,nofail"
DEVICE_WAIT_SECONDS = 30


@dataclass(frozen=True)
class VolumeReport:
    name: str
    device: str
    action: str  # "formatted" or "reused"
    uuid: str

    def __str__(self) -> str:
        return f"{self.name}: {self.device} {self.action} xfs, mounted {MOUNT_ROOT}/{self.name}"


def device_candidates(volume: VolumeRecord) -> list[str]:
    """Nitro: the volume id is the NVMe serial; Xen: /dev/sdf shows up as /dev/xvdf; else as asked."""
    nitro = f"/dev/disk/by-id/{nitro_by_id_name(volume.volume_id)}"
    xen = volume.device.replace("/dev/sd", "/dev/xvd", 1)
    return [nitro, xen, volume.device]


def resolve_command(volume: VolumeRecord, wait_seconds: int = DEVICE_WAIT_SECONDS) -> str:
    """The device's path, once one of its names exists: an attached volume's block device can
    appear a moment after EC2 (or the twin) reports the attachment."""
    paths = " ".join(shlex.quote(p) for p in device_candidates(volume))
    return (f'i=0; while :; do for d in {paths}; do if [ -b "$d" ]; then readlink -f "$d"; exit 0; fi; done; '
            f'i=$((i+1)); [ $i -ge {wait_seconds} ] && exit 1; sleep 1; done')


def parse_blkid(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def fstab_line(uuid: str, name: str) -> str:
    return f"UUID={uuid} {MOUNT_ROOT}/{name} xfs {FSTAB_OPTIONS} 0 2"


def render_fstab(existing: str, lines: dict[str, str]) -> str:
    """existing with one line per mount point in lines (older lines for those mount points dropped)."""
    kept = [line for line in existing.splitlines()
            if not (len(line.split()) > 1 and not line.lstrip().startswith("#") and line.split()[1] in lines)]
    return "\n".join(kept + list(lines.values())) + "\n"


def _must(remote: Remote, command: str, what: str, stdin: str | None = None) -> str:
    result = remote.run(command, stdin=stdin)
    if not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RemoteError(f"{remote.name}: {what} failed (exit {result.exited}): {detail[0]}")
    return result.stdout


def prepare_volume(remote: Remote, volume: VolumeRecord) -> VolumeReport:
    resolved = remote.run(resolve_command(volume))
    if not resolved.ok or not resolved.stdout.strip():
        raise RemoteError(f"{remote.name}: volume {volume.name} ({volume.volume_id}, attached as {volume.device}) "
                          f"has no device after {DEVICE_WAIT_SECONDS} s: looked for {', '.join(device_candidates(volume))}")
    device = resolved.stdout.strip()
    probe = remote.run(f"blkid -p -o export {shlex.quote(device)}")
    found = parse_blkid(probe.stdout) if probe.ok else {}
    if probe.exited not in (0, 2):
        raise RemoteError(f"{remote.name}: cannot probe {device} for {volume.name}: {probe.stderr.strip()}")
    if found.get("TYPE") == "xfs":
        action = "reused"
    elif found:
        what = found.get("TYPE") or (f"a {found['PTTYPE']} partition table" if "PTTYPE" in found else "data")
        raise RemoteError(f"{remote.name}: {device} (volume {volume.name}, {volume.volume_id}) holds {what}; "
                          f"refusing to format it. Attach a blank volume, or wipe it yourself if its data is not needed")
    else:
        _must(remote, f"mkfs.xfs -q {shlex.quote(device)}", f"mkfs.xfs {device}")
        action = "formatted"
    uuid = _must(remote, f"blkid -p -s UUID -o value {shlex.quote(device)}", f"reading the UUID of {device}").strip()
    return VolumeReport(volume.name, device, action, uuid)


def prepare_storage(remote: Remote, volumes: list[VolumeRecord]) -> list[VolumeReport]:
    """Every volume of one host: devices, filesystems, one fstab write, mounts, findmnt --verify."""
    if not volumes:
        return []
    _must(remote, f"command -v mkfs.xfs >/dev/null || ({INSTALL_XFSPROGS})", "installing xfsprogs")
    reports = [prepare_volume(remote, v) for v in volumes]
    existing = _must(remote, "cat /etc/fstab 2>/dev/null || true", "reading /etc/fstab")
    wanted = render_fstab(existing, {f"{MOUNT_ROOT}/{r.name}": fstab_line(r.uuid, r.name) for r in reports})
    if wanted != existing:
        _must(remote, "cat > /etc/fstab.lab-new && mv -f /etc/fstab.lab-new /etc/fstab", "writing /etc/fstab",
              stdin=wanted)
        # systemd makes mount units from fstab: reload, or findmnt --verify warns it is stale.
        _must(remote, "if command -v systemctl >/dev/null; then systemctl daemon-reload; fi", "systemctl daemon-reload")
    for r in reports:
        point = shlex.quote(f"{MOUNT_ROOT}/{r.name}")
        _must(remote, f"mkdir -p {point} && (mountpoint -q {point} || mount {point})", f"mounting {point}")
    _must(remote, "findmnt --verify", "findmnt --verify")
    return reports
