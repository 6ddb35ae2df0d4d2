"""What every component needs to build its steps: the inventory, the secrets, the profile.

Components receive one PlanContext and return Steps; they never look at the target or
the OS themselves (the profile and the time policy already did).
"""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap.profiles import Profile, TimePolicy, profile_for, time_policy_for
from bootstrap.render import STAMP_DIR, apt_install, commands_stamp, in_parallel  # noqa: F401 - re-exported
from labcore.front_door import FrontDoor, front_door
from labcore.inventory import Inventory, NodeRecord
from labcore.lab_ca import KeyAndCert
from labcore.secrets import Secrets

# Where the guide's openrc files live on the controller (root's home: steps run as root).
ADMIN_OPENRC = "/root/admin-openrc"
DEMO_OPENRC = "/root/demo-openrc"
KEYSTONE_URL = "http://controller:5000/v3"
REGION = "RegionOne"


@dataclass(frozen=True)
class PlanContext:
    inventory: Inventory
    secrets: Secrets
    profile: Profile
    time: TimePolicy
    # The front door's server key and certificate (labcore/front_door_cert.py), made at `lab install`
    # before the plan; None where none fits yet (`lab plan`, `--check` before the first install).
    door_cert: KeyAndCert | None = None
    lab_ca_pem: bytes | None = None  # the lab's CA certificate (public; its key is never in a plan)

    @classmethod
    def for_inventory(cls, inventory: Inventory, secrets: Secrets, door_cert: KeyAndCert | None = None,
                      lab_ca_pem: bytes | None = None) -> "PlanContext":
        return cls(inventory, secrets, profile_for(inventory.os, inventory.release),
                   time_policy_for(inventory.target), door_cert, lab_ca_pem)

    @property
    def door(self) -> FrontDoor:
        """Where the user's machine reaches the cloud (labcore/front_door.py)."""
        return front_door(self.inventory)

    @property
    def controller(self) -> NodeRecord:
        return self.inventory.controller

    @property
    def storage_nodes(self) -> list[NodeRecord]:
        return [n for n in self.inventory.nodes if n.role == "object"]

    def hosts(self, role: str | None = None) -> tuple[str, ...]:
        """Node names with this role (every node when role is None), in inventory order."""
        return tuple(n.name for n in self.inventory.nodes if role is None or n.role == role)
