"""What exists of a lab, found by its tag only: the source of truth for up, down and status.

A volume made by a node's RunInstances carries the lab's tags but not lab:volume until
`lab up` adds it right after the launch (lab/volumes.py); an `up` that stopped in between
leaves it so. Such a volume is known by where it is attached: at its instance's root device
it is the root volume; at a device the config maps to a Swift volume (`devices`, from
lab/volumes.py device_names: config order -> /dev/sdf, /dev/sdg, ...) it is that volume.
Either way it is found with tagged=False, so the next `up` tags it and never makes another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from lab.ec2 import with_retry
from labcore import tags as tag
from labcore.tags import lab_filter, tags_of

GONE = ("terminated", "shutting-down")


@dataclass(frozen=True)
class FoundInstance:
    node: str
    role: str
    instance_id: str
    instance_type: str
    state: str
    az: str
    private_ip: str | None
    public_ip: str | None
    ssh_user: str | None
    subnet_id: str | None
    launch_time: datetime | None = None  # which of two instances of one node is the older (lab/duplicates.py)
    public_dns: str | None = None  # PublicDnsName: "" from EC2 when the VPC gives no DNS hostnames


@dataclass(frozen=True)
class FoundVolume:
    node: str
    name: str
    volume_id: str
    state: str
    size_gb: int
    az: str
    instance_id: str | None
    device: str | None
    create_time: datetime | None = None
    tagged: bool = True  # carries lab:volume; False: made by a launch, named by its device (see above)


@dataclass(frozen=True)
class FoundGroup:
    group_id: str
    name: str
    vpc_id: str | None


@dataclass(frozen=True)
class FoundKeyPair:
    key_name: str
    key_pair_id: str | None


@dataclass
class LabResources:
    instances: list[FoundInstance] = field(default_factory=list)
    volumes: list[FoundVolume] = field(default_factory=list)
    security_groups: list[FoundGroup] = field(default_factory=list)
    key_pairs: list[FoundKeyPair] = field(default_factory=list)
    # Resource id (the key pair's KeyPairId) -> its lab:expires-* tags, for every resource found.
    expiry_tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def _saw(self, resource_id: str | None, tags: dict[str, str]) -> None:
        if resource_id:
            self.expiry_tags[resource_id] = {k: v for k, v in tags.items() if k in (tag.EXPIRES_AT, tag.EXPIRES_AFTER)}

    def is_empty(self) -> bool:
        return not (self.instances or self.volumes or self.security_groups or self.key_pairs)

    def instance(self, node: str) -> FoundInstance | None:
        return next((i for i in self.instances if i.node == node), None)

    def volumes_of(self, node: str) -> dict[str, FoundVolume]:
        return {v.name: v for v in self.volumes if v.node == node}

    def as_dict(self) -> dict:
        keep = {"instances": ("node", "role", "instance_id", "instance_type", "state", "private_ip", "public_ip"),
                "volumes": ("node", "name", "volume_id", "state"),
                "security_groups": ("group_id",), "key_pairs": ("key_name",)}
        return {kind: [{k: asdict(item)[k] for k in keys} for item in getattr(self, kind)]
                for kind, keys in keep.items()}


Devices = dict[str, dict[str, str]]  # node -> device -> Swift volume name


def find_lab(ec2, lab: str, devices: Devices | None = None) -> LabResources:
    """Everything of the lab; devices (from the config) names its volumes not tagged yet."""
    found = find_nodes(ec2, lab, devices)
    groups = with_retry(ec2.describe_security_groups, Filters=lab_filter(lab))["SecurityGroups"]
    found.security_groups = [FoundGroup(g["GroupId"], g["GroupName"], g.get("VpcId")) for g in groups]
    keys = with_retry(ec2.describe_key_pairs, Filters=lab_filter(lab))["KeyPairs"]
    found.key_pairs = [FoundKeyPair(k["KeyName"], k.get("KeyPairId")) for k in keys]
    for raw, resource_id in [*((g, g["GroupId"]) for g in groups), *((k, k.get("KeyPairId")) for k in keys)]:
        found._saw(resource_id, tags_of(raw))
    return found


def find_nodes(ec2, lab: str, devices: Devices | None = None) -> LabResources:
    """The lab's live instances and its volumes only: the look again after a launch (two calls)."""
    found = LabResources()
    roots: dict[str, str] = {}  # instance id -> its root device
    for page in with_retry(lambda: list(ec2.get_paginator("describe_instances").paginate(Filters=lab_filter(lab)))):
        for reservation in page["Reservations"]:
            live = [i for i in reservation["Instances"] if i["State"]["Name"] not in GONE]
            found.instances += [_instance(i) for i in live]
            for raw in live:
                found._saw(raw["InstanceId"], tags_of(raw))
                roots[raw["InstanceId"]] = raw.get("RootDeviceName", "")
    for page in with_retry(lambda: list(ec2.get_paginator("describe_volumes").paginate(Filters=lab_filter(lab)))):
        found.volumes += [_volume(v, roots, devices or {}) for v in page["Volumes"]]
        for raw in page["Volumes"]:
            found._saw(raw["VolumeId"], tags_of(raw))
    return found


def _instance(raw: dict) -> FoundInstance:
    tags = tags_of(raw)
    return FoundInstance(node=tags.get(tag.NODE, raw["InstanceId"]), role=tags.get(tag.ROLE, ""),
                         instance_id=raw["InstanceId"], instance_type=raw["InstanceType"], state=raw["State"]["Name"],
                         az=raw["Placement"]["AvailabilityZone"], private_ip=raw.get("PrivateIpAddress"),
                         public_ip=raw.get("PublicIpAddress"), ssh_user=tags.get(tag.SSH_USER),
                         subnet_id=raw.get("SubnetId"), launch_time=raw.get("LaunchTime"),
                         public_dns=raw.get("PublicDnsName") or None)


def _volume(raw: dict, roots: dict[str, str], devices: Devices) -> FoundVolume:
    tags = tags_of(raw)
    attached = [a for a in raw.get("Attachments", []) if a.get("State") in ("attaching", "attached")]
    instance_id = attached[0]["InstanceId"] if attached else None
    device = attached[0]["Device"] if attached else None
    node = tags.get(tag.NODE, "")
    name = tags.get(tag.VOLUME) or _by_device(node, instance_id, device, roots, devices) or raw["VolumeId"]
    return FoundVolume(node=node, name=name, volume_id=raw["VolumeId"], state=raw["State"], size_gb=raw["Size"],
                       az=raw["AvailabilityZone"], instance_id=instance_id, device=device,
                       create_time=raw.get("CreateTime"), tagged=tag.VOLUME in tags)


def _by_device(node: str, instance_id: str | None, device: str | None, roots: dict[str, str],
               devices: Devices) -> str | None:
    """The name of a volume without lab:volume, from where it is attached to a live instance of the lab."""
    if instance_id not in roots or not device:
        return None
    if device == roots[instance_id]:
        return tag.ROOT_VOLUME
    return devices.get(node, {}).get(device)
