"""The inventory: what exists for a lab, as plain typed data, saved to .lab/<name>/inventory.yaml.

It is produced from the cloud's tags (never the other way round) and is everything the
SSH stage, the bootstrap and verify need to know about the hosts.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from labcore.errors import LabError


class VolumeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # logical name from the config, e.g. sdb: the Swift device and /srv/node/<name>
    volume_id: str
    size_gb: int
    device: str  # the device name requested at attach time, e.g. /dev/sdf


class NodeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    role: str
    instance_id: str
    instance_type: str
    az: str
    private_ip: str
    public_ip: str | None = None
    ssh_host: str  # the address SSH uses: public IP on AWS, private IP on the twin
    ssh_user: str
    volumes: list[VolumeRecord] = Field(default_factory=list)


class Inventory(BaseModel):
    model_config = ConfigDict(frozen=True)

    lab: str
    target: str  # "aws" or "sim"
    region: str
    os: str  # the operating system the hosts run: ubuntu-18.04 on AWS, debian-12 on the twin
    release: str
    subnet_cidr: str  # the management network, e.g. 172.31.0.0/20
    key_file: str
    known_hosts: str
    nodes: list[NodeRecord]

    @property
    def controller(self) -> NodeRecord:
        return next(n for n in self.nodes if n.role == "controller")

    def with_role(self, role: str) -> list[NodeRecord]:
        return [n for n in self.nodes if n.role == role]

    def node(self, name: str) -> NodeRecord:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"no node named {name!r} in lab {self.lab} (nodes: {', '.join(n.name for n in self.nodes)})")


def save_inventory(inventory: Inventory, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(yaml.safe_dump(inventory.model_dump(), sort_keys=False))


def load_inventory(path: Path) -> Inventory:
    if not path.exists():
        raise LabError(f"{path}: no inventory yet; run `make lab-up` (lab up) first")
    return Inventory.model_validate(yaml.safe_load(path.read_text()))
