"""Read and validate a lab description (configs/*.yaml) into a typed LabSpec.

Validation happens entirely before any cloud call so that a typo costs nothing:
every problem is reported as one line naming the file, the key and what is expected.
No input breaks that: the file is read through labcore.safeyaml (UTF-8 only, bounded in
size, depth and alias expansion) and every value an error quotes is cut to ~80 characters.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lab import config_errors
from lab.config_values import (
    check_https_sources,
    check_region,
    check_rule_count,
    check_ssh_sources,
    expires_after_text,
    parse_expiry,
)
from labcore import safeyaml
from labcore.errors import ConfigError
from labcore.safeyaml import quote
from labcore.tags import RESERVED_PREFIXES

# A node name becomes a hostname, a tag value and an /etc/hosts entry.
_HOSTNAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# A volume's logical name becomes a Swift device name and a mount point /srv/node/<name>.
_DEVICE_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
# EC2 attaches extra volumes as /dev/sdf ... /dev/sdp: eleven per instance.
MAX_VOLUMES_PER_NODE = 11
# EC2 allows 50 tags per resource (the lab sets up to 10 of its own), keys of 128 and values of 256 characters.
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 40, 128, 256


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenStackSpec(_Strict):
    release: Literal["rocky"] = "rocky"
    os: Literal["ubuntu-18.04", "debian-12"] = "ubuntu-18.04"


class SwiftSpec(_Strict):
    # full: Swift's sample pipeline with keystone, versioned writes and container sync on (the whole
    # API Tempest tests; README "Swift's pipeline"); guide: the install guide's exact pipeline and files.
    pipeline: Literal["full", "guide"] = "full"


# The login user of each OS's official EC2 image (Canonical's and Debian's).
DEFAULT_SSH_USERS = {"ubuntu-18.04": "ubuntu", "debian-12": "admin"}


class SshSpec(_Strict):
    user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$")  # None: the OS image's user
    # Declared before allow_from, whose check reads it. A YAML true/false only: opening SSH wide is never implied.
    allow_wide: bool = Field(default=False, strict=True)
    allow_from: list[str] = Field(default_factory=lambda: ["auto"], min_length=1)

    @field_validator("allow_from")
    @classmethod
    def _cidrs(cls, values: list[str], info: ValidationInfo) -> list[str]:
        return check_ssh_sources(values, allow_wide=info.data.get("allow_wide", False))


class HttpsSpec(_Strict):
    """Who may reach the controller's TLS front door (tcp 443: dashboard, identity, object store).

    Unset, allow_from is ssh.allow_from: the addresses that may SSH may also use the cloud.
    """

    allow_wide: bool = Field(default=False, strict=True)  # before allow_from, whose check reads it
    allow_from: list[str] | None = Field(default=None, min_length=1)

    @field_validator("allow_from")
    @classmethod
    def _cidrs(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if values is None else check_https_sources(values, allow_wide=info.data.get("allow_wide", False))


# The burstable instance families: CPU credits, launched `standard` unless a node says `unlimited: true`.
BURSTABLE_FAMILIES = ("t2", "t3", "t3a", "t4g")


class NodeSpec(_Strict):
    role: Literal["controller", "object"]
    type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    volumes: dict[str, object] = Field(default_factory=dict)  # {logical name: GiB}, checked below
    root_volume_gb: int | None = Field(default=None, gt=0, le=16384)
    # A YAML true/false only: CPU credits past the baseline are billed, so they are never implied.
    unlimited: bool = Field(default=False, strict=True)

    @property
    def burstable(self) -> bool:
        """A T instance: it earns and spends CPU credits (standard: throttled to the baseline when out)."""
        return self.type.split(".")[0] in BURSTABLE_FAMILIES

    @model_validator(mode="after")
    def _volumes_on_object_nodes(self) -> NodeSpec:
        if self.volumes and self.role != "object":
            raise ValueError("volumes are Swift devices and belong on role object nodes")
        if self.unlimited and not self.burstable:
            raise ValueError(f"unlimited is for burstable types ({', '.join(BURSTABLE_FAMILIES)}), not {self.type}")
        return self

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, volumes: dict[str, object]) -> dict[str, object]:
        if len(volumes) > MAX_VOLUMES_PER_NODE:
            raise ValueError(f"expected at most {MAX_VOLUMES_PER_NODE} volumes per node")
        for name, size in volumes.items():
            if not _DEVICE_NAME.match(str(name)):
                raise ValueError(f"expected a device name such as sdb (lowercase letters and digits), got {quote(name)}")
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size > 16384:
                raise ValueError(f"{name}: expected a size in GiB from 1 to 16384, got {quote(size)}")
        return volumes


class LabSpec(_Strict):
    """The whole lab: what `lab up` creates and what `lab install` configures."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    region: str  # one EC2 has, by botocore's endpoint data (checked below)
    openstack: OpenStackSpec = Field(default_factory=OpenStackSpec)
    ssh: SshSpec = Field(default_factory=SshSpec)
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    ami: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]{8,17}$")
    root_volume_gb: int = Field(default=20, gt=0, le=16384)
    volume_type: Literal["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"] = "gp3"
    subnet: str | None = Field(default=None, pattern=r"^subnet-[0-9a-f]{8,17}$")
    tags: dict[str, str] = Field(default_factory=dict)
    # How long the lab lives after `up` before its hosts power themselves off: 45m, 8h, 2d, 1h30m; 0 or never.
    expires_after: str = "8h"
    # keystone: the guide's whole cloud; tempauth: Swift alone, its own TempAuth accounts (no Keystone,
    # MariaDB, RabbitMQ or etcd). A lab keeps the mode it was made with (lab/drift.py).
    auth: Literal["keystone", "tempauth"] = "keystone"
    swift: SwiftSpec = Field(default_factory=SwiftSpec)
    # The front door's sources (a Keystone lab's only opening besides SSH); unset: ssh.allow_from's.
    https: HttpsSpec = Field(default_factory=HttpsSpec)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == "sim":
            raise ValueError("the name sim is reserved for the twin's own state folder (.lab/sim); pick another")
        return name

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        return check_region(region)

    @field_validator("expires_after", mode="before")
    @classmethod
    def _expiry(cls, value: object) -> str:
        return expires_after_text(value)

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, nodes: dict[str, NodeSpec]) -> dict[str, NodeSpec]:
        for name in nodes:
            if not _HOSTNAME.match(str(name)):
                raise ValueError(f"expected node names that are hostnames (a-z, 0-9, -), got {quote(name)}")
        controllers = [n for n, spec in nodes.items() if spec.role == "controller"]
        if len(controllers) != 1:
            raise ValueError(f"expected exactly one node with role controller, found {len(controllers)}")
        return nodes

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise ValueError(f"expected at most {MAX_TAGS} tags (EC2 allows 50 and the lab sets its own), got {len(tags)}")
        for key, value in tags.items():
            if key.startswith(RESERVED_PREFIXES) or key == "Name":
                raise ValueError(f"tag {quote(key)} is reserved: the lab sets lab:*, Name, and AWS sets aws:*")
            if not 0 < len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
                raise ValueError(f"tag {quote(key)}: EC2 takes keys of 1 to {MAX_TAG_KEY} characters and values "
                                 f"of at most {MAX_TAG_VALUE}")
        return tags

    @property
    def expiry(self) -> timedelta | None:
        """How long after `up` the lab's hosts power themselves off; None when it never expires (0, never)."""
        return parse_expiry(self.expires_after)

    # The lab's own tags every resource carries besides tags (lab:expires-at, ...): set per run by with_lab_tags.
    _lab_tags: dict[str, str] = PrivateAttr(default_factory=dict)

    def with_lab_tags(self, lab_tags: dict[str, str]) -> LabSpec:
        """This spec, its resources also tagged with lab_tags (decided by the run, not the config)."""
        copy = self.model_copy()
        copy._lab_tags = dict(lab_tags)
        return copy

    @property
    def resource_tags(self) -> dict[str, str]:
        """The tags every resource of the lab is created with, beside its lab:name, node and role."""
        return {**self.tags, **self._lab_tags}

    @property
    def ssh_user(self) -> str:
        """ssh.user, else the login user of the OS's image (ubuntu on Ubuntu, admin on Debian)."""
        return self.ssh.user or DEFAULT_SSH_USERS[self.openstack.os]

    @property
    def https_allow_from(self) -> list[str]:
        """Where the front door (443) may be reached from: https.allow_from, else ssh.allow_from;
        nowhere in a TempAuth lab, which has no front door."""
        if self.auth != "keystone":
            return []
        return self.https.allow_from if self.https.allow_from is not None else self.ssh.allow_from

    @property
    def https_allow_wide(self) -> bool:
        """The front door opens wider than a /8 (its own allow_wide, or SSH's when it takes SSH's sources)."""
        return self.https.allow_wide if self.https.allow_from is not None else self.ssh.allow_wide

    @property
    def controller(self) -> str:
        return next(n for n, spec in self.nodes.items() if spec.role == "controller")

    def nodes_with_role(self, role: str) -> list[str]:
        return [n for n, spec in self.nodes.items() if spec.role == role]


def parse_config(data: bytes | str, path: str = "<config>") -> LabSpec:
    """Validate YAML text (bytes: UTF-8 only); raise ConfigError naming path and key of the first problem."""
    try:
        document = safeyaml.load(data)
    except safeyaml.YamlError as exc:
        raise ConfigError(path, exc.where, exc.expected) from None
    if not isinstance(document, dict):
        raise ConfigError(path, "", "expected a mapping with at least the keys name, region and nodes")
    try:
        spec = LabSpec.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ConfigError(path, config_errors.key_path(first["loc"]) or "(top level)",
                          config_errors.expected(first)) from None
    too_many = check_rule_count(spec.ssh.allow_from, spec.https_allow_from, spec.https.allow_from is not None)
    if too_many:
        raise ConfigError(path, *too_many)
    return spec


def load_config(path: str | Path) -> LabSpec:
    """Read and validate the lab description at path (never more of it than safeyaml would accept)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(safeyaml.MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found (pass --config or CONFIG=path/to/lab.yaml)") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    return parse_config(data, str(path))
