"""Read and validate a lab description (configs/*.yaml) into a typed LabSpec.

Validation happens entirely before any cloud call so that a typo costs nothing:
every problem is reported as one line naming the file, the key and what is expected.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from labcore.errors import ConfigError
from labcore.tags import RESERVED_PREFIXES

ROLES = ("controller", "object")
OPERATING_SYSTEMS = ("ubuntu-18.04", "debian-12")
RELEASES = ("rocky",)
# A node name becomes a hostname, a tag value and an /etc/hosts entry.
_HOSTNAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# A volume's logical name becomes a Swift device name and a mount point /srv/node/<name>.
_DEVICE_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
# EC2 attaches extra volumes as /dev/sdf ... /dev/sdp: eleven per instance.
MAX_VOLUMES_PER_NODE = 11


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenStackSpec(_Strict):
    release: Literal["rocky"] = "rocky"
    os: Literal["ubuntu-18.04", "debian-12"] = "ubuntu-18.04"


# The login user of each OS's official EC2 image (Canonical's and Debian's).
DEFAULT_SSH_USERS = {"ubuntu-18.04": "ubuntu", "debian-12": "admin"}


class SshSpec(_Strict):
    user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$")  # None: the OS image's user
    allow_from: list[str] = Field(default_factory=lambda: ["auto"], min_length=1)

    @field_validator("allow_from")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            if value == "auto":
                continue
            try:
                net = ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"expected 'auto' or an IPv4 CIDR such as 203.0.113.7/32, got {value!r}") from exc
            if net.prefixlen == 0:
                raise ValueError("0.0.0.0/0 would open SSH to the whole internet; name your own address instead")
        return values


class NodeSpec(_Strict):
    role: Literal["controller", "object"]
    type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    volumes: dict[str, object] = Field(default_factory=dict)  # {logical name: GiB}, checked below
    root_volume_gb: int | None = Field(default=None, gt=0, le=16384)

    @model_validator(mode="after")
    def _volumes_on_object_nodes(self) -> "NodeSpec":
        if self.volumes and self.role != "object":
            raise ValueError("volumes are Swift devices and belong on role object nodes")
        return self

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, volumes: dict[str, object]) -> dict[str, object]:
        if len(volumes) > MAX_VOLUMES_PER_NODE:
            raise ValueError(f"expected at most {MAX_VOLUMES_PER_NODE} volumes per node")
        for name, size in volumes.items():
            if not _DEVICE_NAME.match(str(name)):
                raise ValueError(f"expected a device name such as sdb (lowercase letters and digits), got {name!r}")
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size > 16384:
                raise ValueError(f"{name}: expected a size in GiB from 1 to 16384, got {size!r}")
        return volumes


class LabSpec(_Strict):
    """The whole lab: what `lab up` creates and what `lab install` configures."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    openstack: OpenStackSpec = Field(default_factory=OpenStackSpec)
    ssh: SshSpec = Field(default_factory=SshSpec)
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    ami: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]{8,17}$")
    root_volume_gb: int = Field(default=20, gt=0, le=16384)
    volume_type: Literal["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"] = "gp3"
    subnet: str | None = Field(default=None, pattern=r"^subnet-[0-9a-f]{8,17}$")
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == "sim":
            raise ValueError("the name sim is reserved for the twin's own state folder (.lab/sim); pick another")
        return name

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, nodes: dict[str, NodeSpec]) -> dict[str, NodeSpec]:
        for name in nodes:
            if not _HOSTNAME.match(str(name)):
                raise ValueError(f"expected node names that are hostnames (a-z, 0-9, -), got {name!r}")
        controllers = [n for n, spec in nodes.items() if spec.role == "controller"]
        if len(controllers) != 1:
            raise ValueError(f"expected exactly one node with role controller, found {len(controllers)}")
        return nodes

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if str(key).startswith(RESERVED_PREFIXES) or key == "Name":
                raise ValueError(f"tag {key!r} is reserved: the lab sets lab:*, Name, and AWS sets aws:*")
        return tags

    @property
    def ssh_user(self) -> str:
        """ssh.user, else the login user of the OS's image (ubuntu on Ubuntu, admin on Debian)."""
        return self.ssh.user or DEFAULT_SSH_USERS[self.openstack.os]

    @property
    def controller(self) -> str:
        return next(n for n, spec in self.nodes.items() if spec.role == "controller")

    def nodes_with_role(self, role: str) -> list[str]:
        return [n for n, spec in self.nodes.items() if spec.role == role]


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses duplicate keys: PyYAML would silently keep the last one."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError("", f"line {key_node.start_mark.line + 1}", f"duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _key_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith(("function-after", "literal[")))


def _expected(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling against configs/lab.yaml)"
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "string_pattern_mismatch":
        return f"expected text matching {error['ctx']['pattern']}, got {error['input']!r}"
    if error["type"] == "literal_error":
        return message.replace("Input should be", "expected")
    if "input" in error and error["type"] not in ("value_error", "assertion_error"):
        return f"{message.replace('Input should', 'expected to')}, got {error['input']!r}"
    return message


def parse_config(text: str, path: str = "<config>") -> LabSpec:
    """Validate YAML text; raise ConfigError naming path and key of the first problem."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(path, exc.key, exc.expected) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(path, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "", "expected a mapping with at least the keys name, region and nodes")
    try:
        return LabSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(path, _key_path(first["loc"]) or "(top level)", _expected(first)) from None


def load_config(path: str | Path) -> LabSpec:
    """Read and validate the lab description at path."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found (pass --config or CONFIG=path/to/lab.yaml)") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    return parse_config(text, str(path))
