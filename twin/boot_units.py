"""What a twin body runs at boot besides its own services, as a fresh EC2 instance does.

Installed into a new body's disk (twin/image.py) from the real files in twin/guest/:

- twin-keys-to-console.service: at every boot, once sshd runs, the host's SSH key
  fingerprints and keys go to the console, as cloud-init's final stage prints them on EC2, so that
  GetConsoleOutput shows them and `lab up` pins them from there (twin/console.py).
- twin-etc-hosts.service: at every boot, before sshd, /etc/hosts is written again from
  cloud-init's template with the host's name, as cloud-init does on a Debian cloud image
  (its 01_debian_cloud.cfg sets manage_etc_hosts: true, copied here too), unless a later
  cloud.cfg.d file says manage_etc_hosts: false. So a fresh body resolves its own name at
  once (sudo asks for it on every call), and a lab that did not turn this off loses its
  /etc/hosts block at a reboot, as it would on EC2.
- twin-apt-daily.service, only when LAB_SIM_APT_DAILY_SECONDS is more than 0 in the
  daemon's environment (`lab up` passes its own to the daemon it starts): for that many
  seconds after the first boot a process named as apt's daily job holds apt's and dpkg's
  locks, as apt-daily and unattended-upgrades do on a fresh EC2 host.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from string import Template

from labcore.errors import ConfigError

GUEST = Path(__file__).resolve().parent / "guest"
LIB = Path("usr/local/lib/openstack-ec2-lab")
UNITS = Path("etc/systemd/system")
WANTS = UNITS / "multi-user.target.wants"
KEYS_UNIT = "twin-keys-to-console.service"
HOSTS_UNIT = "twin-etc-hosts.service"
CLOUD_FILES = {"01_debian_cloud.cfg": Path("etc/cloud/cloud.cfg.d"), "hosts.debian.tmpl": Path("etc/cloud/templates")}
APT_DAILY_UNIT = "twin-apt-daily.service"
APT_DAILY_ENV = "LAB_SIM_APT_DAILY_SECONDS"
APT_DAILY_MAX_SECONDS = 3600


def apt_daily_seconds(environ: Mapping[str, str] = os.environ) -> int:
    """How long the apt-daily stand-in holds the locks after the first boot; 0 (off) unless set."""
    raw = environ.get(APT_DAILY_ENV, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > APT_DAILY_MAX_SECONDS:
        raise ConfigError("environment", APT_DAILY_ENV,
                          f"a whole number of seconds from 0 (off) to {APT_DAILY_MAX_SECONDS}, found {raw[:20]!r}")
    return int(raw)


def install(root: Path, *, apt_daily: int) -> list[str]:
    """Put the boot units into the disk mounted at root, enabled; the units installed."""
    _program(root, "write-ssh-key-fingerprints")
    installed = [_unit(root, KEYS_UNIT, (GUEST / KEYS_UNIT).read_text())]
    _program(root, "update-etc-hosts")
    for name, folder in CLOUD_FILES.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GUEST / name, root / folder / name)
    installed.append(_unit(root, HOSTS_UNIT, (GUEST / HOSTS_UNIT).read_text()))
    if apt_daily > 0:
        _program(root, "apt.systemd.daily")
        text = Template((GUEST / APT_DAILY_UNIT).read_text()).substitute(seconds=apt_daily)
        installed.append(_unit(root, APT_DAILY_UNIT, text))
    return installed


def _program(root: Path, name: str) -> None:
    target = root / LIB / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GUEST / name, target)
    target.chmod(0o755)


def _unit(root: Path, name: str, text: str) -> str:
    (root / UNITS).mkdir(parents=True, exist_ok=True)
    (root / UNITS / name).write_text(text)
    (root / WANTS).mkdir(parents=True, exist_ok=True)
    link = root / WANTS / name
    if not link.is_symlink():
        link.symlink_to(f"/{UNITS / name}")
    return name
