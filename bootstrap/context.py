"""What every component needs to build its steps: the inventory, the secrets, the profile.

Components receive one PlanContext and return Steps; they never look at the target or
the OS themselves (the profile and the time policy already did).
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass

from bootstrap.profiles import Profile, TimePolicy, profile_for, time_policy_for
from labcore.inventory import Inventory, NodeRecord
from labcore.secrets import Secrets

# Where the guide's openrc files live on the controller (root's home: steps run as root).
ADMIN_OPENRC = "/root/admin-openrc"
DEMO_OPENRC = "/root/demo-openrc"
KEYSTONE_URL = "http://controller:5000/v3"
# The lab's state on a host: stamps that say which commands last ran, checksums of inputs.
STAMP_DIR = "/var/lib/lab"
REGION = "RegionOne"


@dataclass(frozen=True)
class PlanContext:
    inventory: Inventory
    secrets: Secrets
    profile: Profile
    time: TimePolicy

    @classmethod
    def for_inventory(cls, inventory: Inventory, secrets: Secrets) -> "PlanContext":
        return cls(inventory, secrets, profile_for(inventory.os, inventory.release),
                   time_policy_for(inventory.target))

    @property
    def controller(self) -> NodeRecord:
        return self.inventory.controller

    @property
    def storage_nodes(self) -> list[NodeRecord]:
        return [n for n in self.inventory.nodes if n.role == "object"]

    def hosts(self, role: str | None = None) -> tuple[str, ...]:
        """Node names with this role (every node when role is None), in inventory order."""
        return tuple(n.name for n in self.inventory.nodes if role is None or n.role == role)


def apt_install(packages: tuple[str, ...] | list[str]) -> str:
    """Non-interactive install that keeps existing config files (the guide's answers to dpkg)."""
    return ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            "-o Dpkg::Options::=--force-confold " + " ".join(shlex.quote(p) for p in packages))


def packages_installed(packages: tuple[str, ...] | list[str]) -> str:
    """Check text: exit 0 only when every package is installed (cheap: no network, no apt lock)."""
    names = " ".join(shlex.quote(p) for p in packages)
    return f"! dpkg-query -W -f='${{Status}}\\n' {names} 2>&1 | grep -qv '^install ok installed$'"


def as_admin(command: str) -> str:
    """An OpenStack CLI command with the admin credentials of admin-openrc."""
    return f". {ADMIN_OPENRC} && {command}"


def in_parallel(*commands: str) -> str:
    """Shell text running commands at the same time; true only when every one succeeded.

    For the guide's independent steps that each spend seconds loading Python
    (keystone-manage, swift-ring-builder): on a host with two or more cores they overlap.
    """
    if len(commands) == 1:
        return commands[0]
    jobs = " ".join(f"( {command} ) & p{i}=$!;" for i, command in enumerate(commands))
    waits = " ".join(f"wait $p{i} || s=1;" for i in range(len(commands)))
    return f"s=0; {jobs} {waits} [ $s = 0 ]"


def enable_units(*units: str) -> str:
    """`systemctl enable` for those of the units not enabled yet.

    Debian's packages enable their services when installed, and enabling an enabled unit
    still costs ~1 s (systemd-sysv-install runs for units with an init script): 10 s for
    a storage node's twelve. Asking first costs a few milliseconds.
    """
    names = " ".join(shlex.quote(u) for u in units)
    return (f'set -- $(for u in {names}; do systemctl is-enabled --quiet "$u" || echo "$u"; done);'
            ' [ $# = 0 ] || systemctl enable "$@"')


def commands_stamp(stamp: str, commands: tuple[str, ...]) -> tuple[str, str]:
    """(command recording that these very commands ran, check text true while the record names them).

    For steps whose outcome a check cannot see in full (a password set, an archive added):
    changed commands run the step again. The record is a sha256, never the commands' text,
    which may hold secrets.
    """
    digest = hashlib.sha256("\n".join(commands).encode("utf-8")).hexdigest()
    return f"mkdir -p -m 0700 {STAMP_DIR} && echo {digest} > {stamp}", f"grep -qsx {digest} {stamp}"
