"""The inventory: what exists for a lab, as plain typed data, saved to .lab/<name>/inventory.yaml.

It is produced from the cloud's tags (never the other way round) and is everything the
SSH stage, the bootstrap and verify need to know about the hosts.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labcore import safeyaml
from labcore.errors import LabError
from labcore.paths import Progress, StateFileError, read_bounded, tighten, write_atomic


class VolumeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # logical name from the config, e.g. sdb: the Swift device and /srv/node/<name>
    volume_id: str
    size_gb: int
    device: str  # the device name requested at attach time, e.g. /dev/sdf
    # Attached to its node but no longer in the config: `lab install` drains it out of the
    # rings, unmounts it and tags it lab:drained; the next `lab up` deletes it.
    leaving: bool = False


class NodeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    role: str
    instance_id: str
    instance_type: str
    az: str
    private_ip: str
    public_ip: str | None = None
    # EC2's PublicDnsName: the name the front door's certificate and URLs carry on AWS (labcore/front_door.py);
    # None on the twin and in an inventory written before the key existed.
    public_dns: str | None = None
    ssh_host: str  # the address SSH uses: public IP on AWS, private IP on the twin
    ssh_user: str
    volumes: list[VolumeRecord] = Field(default_factory=list)
    # Running but no longer in the config: it still serves its Swift devices until `lab install`
    # drains them (then stops its services and tags it lab:drained); the next `lab up` terminates it.
    leaving: bool = False


class Inventory(BaseModel):
    model_config = ConfigDict(frozen=True)

    lab: str
    target: str  # "aws" or "sim"
    region: str
    os: str  # the operating system the hosts run: ubuntu-18.04 on AWS, debian-12 on the twin
    release: str
    # keystone or tempauth (the config's auth: when `lab up` made the lab); an inventory written before
    # the key existed is a keystone lab.
    auth: str = "keystone"
    # full (the lab's: Swift's sample pipeline, all of the API Tempest tests) or guide (the install
    # guide's exact pipeline); an inventory written before the key existed takes the default.
    swift_pipeline: str = "full"
    subnet_cidr: str  # the management network, e.g. 172.31.0.0/20
    key_file: str
    known_hosts: str
    nodes: list[NodeRecord]
    expires_at: str | None = None  # lab:expires-at (UTC, ISO 8601): the hosts' timers power them off then

    @property
    def controller(self) -> NodeRecord:
        return next(n for n in self.nodes if n.role == "controller")

    def node(self, name: str) -> NodeRecord:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"no node named {name!r} in lab {self.lab} (nodes: {', '.join(n.name for n in self.nodes)})")


# The last line of every inventory.yaml: a file cut short at a node's boundary is still valid
# YAML (a lab with fewer nodes), so only this line tells that it is whole.
END_LINE = "# end of inventory (written whole by `lab up`)\n"


def save_inventory(inventory: Inventory, path: Path) -> None:
    """Written whole or not at all, 0600: it decides where `lab install` sends the passwords."""
    write_atomic(path, yaml.safe_dump(inventory.model_dump(), sort_keys=False) + END_LINE)


def load_inventory(path: Path, progress: Progress | None = None) -> Inventory:
    """The saved inventory; a damaged one is a StateFileError saying that `lab up` writes it again.

    progress: where to say that a file others could change was put back to 0600.
    """
    if not path.exists():
        raise LabError(f"{path}: no inventory yet; run `make lab-up` (lab up) first")
    if progress is not None:
        tighten(path, progress)
    raw = read_bounded(path, safeyaml.MAX_BYTES)
    try:
        data = safeyaml.load(raw)
    except safeyaml.YamlError as exc:
        raise _damaged(path, str(exc)) from None
    if not raw.endswith(END_LINE.encode()):
        raise _damaged(path, "its last line is not the end mark: cut short, or written by hand")
    if not isinstance(data, dict):
        raise _damaged(path, f"expected a mapping, found {type(data).__name__}")
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise _damaged(path, f"{where}: {first['msg']}"[:160]) from None


def _damaged(path: Path, detail: str) -> StateFileError:
    return StateFileError(f"{path} is damaged ({detail}); `lab up` writes it again from the lab's tags: "
                          f"run `lab up --no-ssh`")
