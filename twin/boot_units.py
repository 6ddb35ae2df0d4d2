"""What the twin adds to a body's disk: cloud-init's settings for the twin, and the apt-daily stand-in.

Installed into a new body's disk (twin/image.py) from the real files in twin/guest/:

- /etc/cloud/cloud.cfg.d/01_debian_cloud.cfg: what Debian's EC2 images set (the admin
  user, manage_etc_hosts: true), and 90_twin_ec2.cfg: the Ec2 datasource forced, only
  169.254.169.254 asked, cloud-init's network configuration off (the twin sets the
  address). cloud-init's Ec2Local datasource asks for a DHCP lease before anything else,
  as on EC2, and the twin's DHCP server answers it in milliseconds (twin/dhcp.py);
  /etc/dhcp/dhclient.conf gives up after 5 s instead of dhclient's 60, which would hold
  every boot that long on a machine where that server could not start (another DHCP
  server holding port 67 for all of the machine's interfaces; the daemon's log says so).
  cloud-init itself then does at boot what it does on EC2: the login user with
  the key pair's key, the hostname, new host keys printed to the console, /etc/hosts
  from its template at every boot, and the user data.
- twin-apt-daily.service, only when LAB_SIM_APT_DAILY_SECONDS is more than 0 in the
  daemon's environment (`lab up` passes its own to the daemon it starts): for that many
  seconds after the first boot a process named as apt's daily job holds apt's and dpkg's
  locks, as apt-daily and unattended-upgrades do on a fresh EC2 host, at a moment a test
  can count on (the real timers fire at random hours).
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
CLOUD_CFG_D = Path("etc/cloud/cloud.cfg.d")
CLOUD_FILES = ("01_debian_cloud.cfg", "90_twin_ec2.cfg")
DHCLIENT_CONF = Path("etc/dhcp/dhclient.conf")
DHCLIENT_TIMEOUT = ("\n# openstack-ec2-lab twin: the twin's DHCP server answers at once; without it, give up soon\n"
                    "timeout 5;\n")
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
    """cloud-init's settings and the units into the disk mounted at root; the units installed, enabled."""
    (root / CLOUD_CFG_D).mkdir(parents=True, exist_ok=True)
    for name in CLOUD_FILES:
        shutil.copyfile(GUEST / name, root / CLOUD_CFG_D / name)
    dhclient = root / DHCLIENT_CONF
    if dhclient.exists() and DHCLIENT_TIMEOUT not in dhclient.read_text():
        with dhclient.open("a") as handle:
            handle.write(DHCLIENT_TIMEOUT)
    installed: list[str] = []
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
