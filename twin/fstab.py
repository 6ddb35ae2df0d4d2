"""Which fstab entries name a body's volumes: pure, fstab text in, mounts out.

systemd in a container ignores fstab's device entries ("Running in a container, ignoring
fstab device entry"), so after plugging a body's volumes at boot the twin mounts their
entries itself (twin/plug.py), as systemd does on an EC2 host at boot: a rebooted storage
node finds /srv/node/* mounted again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Mount:
    device: str  # the device inside the body, e.g. /dev/nvme1n1
    mountpoint: str
    fstype: str
    options: str


def _unescape(field: str) -> str:
    """fstab writes a space in a path as \\040 (octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _spec(field: str) -> str:
    """UUID="abc" and UUID=abc name the same device."""
    key, sep, value = field.partition("=")
    return f"{key}={value.strip(chr(34) + chr(39))}" if sep and key in ("UUID", "LABEL", "PARTUUID") else field


def mounts_for(fstab: str, devices: dict[str, str]) -> list[Mount]:
    """The entries whose device is one of devices (how fstab may name a volume -> its device
    inside: "UUID=...", "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol...", "/dev/nvme1n1"),
    in fstab's order; `noauto` and swap entries are left alone, as at boot."""
    found = []
    for line in fstab.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        device = devices.get(_spec(fields[0]))
        options = fields[3] if len(fields) > 3 else "defaults"
        if device is None or fields[2] == "swap" or "noauto" in options.split(","):
            continue
        found.append(Mount(device, _unescape(fields[1]), fields[2], options))
    return found
