"""What the EC2 API's state asks of this machine: pure, boto3 response dicts in, plain data out.

Every rule (which instances get a body, which volumes, which ingress, which bodies are kept
powered off) is tested here without moto or root; `observe` is the one function that calls
the API.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from labcore import tags as tag
from twin.model import IngressRule, InstanceBody, VolumeBody

log = logging.getLogger(__name__)

RUNNING_STATES = ("pending", "running")  # a container runs
PARKED_STATES = ("stopping", "stopped")  # the body stays on disk, powered off
LIVE_STATES = RUNNING_STATES  # kept for callers that mean "has a running body"
KEPT_STATES = RUNNING_STATES + PARKED_STATES  # the instance keeps a body on this machine
DEFAULT_SSH_USER = "ubuntu"
# EC2 accepts protocol names or IANA numbers; the body layer knows these four.
_PROTOCOLS = {"-1": "all", "all": "all", "icmp": "icmp", "1": "icmp", "tcp": "tcp", "6": "tcp",
              "udp": "udp", "17": "udp"}


@dataclass
class Observed:
    """One look at the API: the bodies it asks for (running or parked), every volume id it has,
    and the labs that still own something in it (for the daemon: a lab whose instances are
    gone, terminated by their own expiry say, still has its security group and key pair)."""

    bodies: list[InstanceBody] = field(default_factory=list)
    volume_ids: set[str] = field(default_factory=set)
    labs: set[str] = field(default_factory=set)

    def merge(self, other: Observed) -> Observed:
        return Observed(sorted(self.bodies + other.bodies, key=lambda b: b.instance_id),
                        self.volume_ids | other.volume_ids, self.labs | other.labs)


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def _instances(describe_instances: dict) -> list[dict]:
    return [i for r in describe_instances.get("Reservations", []) for i in r.get("Instances", [])]


def _state(instance: dict) -> str:
    return instance.get("State", {}).get("Name", "")


def _primary_mac(instance: dict) -> str:
    """The MAC of the instance's primary interface (device index 0), or "" when the API shows none."""
    for interface in instance.get("NetworkInterfaces") or []:
        if (interface.get("Attachment") or {}).get("DeviceIndex", 0) == 0:
            return interface.get("MacAddress", "")
    return ""


def _volumes_of(instance: dict, describe_volumes: dict) -> tuple[VolumeBody, ...]:
    root = instance.get("RootDeviceName")
    attached = []
    for volume in describe_volumes.get("Volumes", []):
        if _tags(volume).get(tag.VOLUME) == tag.ROOT_VOLUME:
            continue
        for att in volume.get("Attachments") or []:
            if (att.get("InstanceId") == instance["InstanceId"] and att.get("State") in ("attaching", "attached")
                    and att.get("Device") != root):
                attached.append((att["Device"], volume))
    attached.sort(key=lambda item: (len(item[0]), item[0]))  # /dev/sdf < /dev/sdg < /dev/sdaa
    return tuple(VolumeBody(volume_id=v["VolumeId"], size_gb=int(v["Size"]), nvme_index=n, attach_device=device)
                 for n, (device, v) in enumerate(attached, start=1))


def _group_members(instances: list[dict]) -> dict[str, list[str]]:
    """Group id -> private IPs of the running instances in it: what a group reference allows."""
    members: dict[str, list[str]] = {}
    for instance in instances:
        if _state(instance) not in RUNNING_STATES or not instance.get("PrivateIpAddress"):
            continue
        for group in instance.get("SecurityGroups") or []:
            members.setdefault(group["GroupId"], []).append(instance["PrivateIpAddress"])
    return members


def _rules_of(permission: dict, members: dict[str, list[str]]) -> tuple[str, int | None, int | None, set[str]] | None:
    protocol = _PROTOCOLS.get(str(permission.get("IpProtocol", "")).lower())
    if protocol is None:
        log.warning("ignoring ingress with protocol %s: the twin filters tcp, udp, icmp and all",
                    permission.get("IpProtocol"))
        return None
    sources = {r["CidrIp"] for r in permission.get("IpRanges") or [] if r.get("CidrIp")}
    for pair in permission.get("UserIdGroupPairs") or []:
        sources.update(f"{ip}/32" for ip in members.get(pair.get("GroupId", ""), []))
    if protocol in ("tcp", "udp"):
        return protocol, permission.get("FromPort"), permission.get("ToPort"), sources
    return protocol, None, None, sources


def _ingress_of(instance: dict, groups: dict[str, dict], members: dict[str, list[str]]) -> tuple[IngressRule, ...]:
    merged: dict[tuple, set[str]] = {}
    for ref in instance.get("SecurityGroups") or []:
        for permission in groups.get(ref["GroupId"], {}).get("IpPermissions") or []:
            rule = _rules_of(permission, members)
            if rule is not None:
                merged.setdefault(rule[:3], set()).update(rule[3])
    rules = [IngressRule(protocol=p, from_port=lo, to_port=hi, sources=tuple(sorted(src)))
             for (p, lo, hi), src in merged.items() if src]
    return tuple(sorted(rules, key=lambda r: (r.protocol, r.from_port or -1, r.to_port or -1, r.sources)))


def desired_bodies(describe_instances: dict, describe_volumes: dict, describe_security_groups: dict,
                   describe_key_pairs: dict, describe_subnets: dict, region: str = "") -> list[InstanceBody]:
    """The body every lab instance that is running, pending, stopping or stopped should have
    (arguments: boto3 responses; key pairs described with IncludePublicKey=True)."""
    instances = _instances(describe_instances)
    groups = {g["GroupId"]: g for g in describe_security_groups.get("SecurityGroups", [])}
    keys = {k["KeyName"]: k.get("PublicKey", "") for k in describe_key_pairs.get("KeyPairs", [])}
    subnets = {s["SubnetId"]: s["CidrBlock"] for s in describe_subnets.get("Subnets", [])}
    members = _group_members(instances)
    bodies = []
    for instance in instances:
        tags = _tags(instance)
        if _state(instance) not in KEPT_STATES or tag.NAME not in tags:
            continue
        subnet_cidr = subnets.get(instance.get("SubnetId", ""))
        ip = instance.get("PrivateIpAddress")
        if not ip or subnet_cidr is None or ipaddress.ip_address(ip) not in ipaddress.ip_network(subnet_cidr):
            log.warning("instance %s has no private IP inside a known subnet (%s, %s); no body for it",
                        instance["InstanceId"], ip, subnet_cidr)
            continue
        bodies.append(InstanceBody(
            instance_id=instance["InstanceId"], lab=tags[tag.NAME],
            hostname=tags.get(tag.NODE) or tags.get("Name") or instance["InstanceId"],
            private_ip=instance["PrivateIpAddress"], subnet_cidr=subnet_cidr,
            ssh_user=tags.get(tag.SSH_USER) or DEFAULT_SSH_USER,
            public_key=keys.get(instance.get("KeyName", ""), ""),
            volumes=_volumes_of(instance, describe_volumes),
            ingress=_ingress_of(instance, groups, members),
            instance_type=instance.get("InstanceType", ""), region=region,
            running=_state(instance) in RUNNING_STATES, mac=_primary_mac(instance)))
    return sorted(bodies, key=lambda b: b.instance_id)


def labs_owning(describe_instances: dict, *described: dict) -> set[str]:
    """The lab:name of every instance that is not terminated, and of every resource in the
    other answers (volumes, security groups, key pairs)."""
    owners = {_tags(i).get(tag.NAME) for i in _instances(describe_instances) if _state(i) != "terminated"}
    for answer in described:
        for items in answer.values():
            owners.update(_tags(item).get(tag.NAME) for item in items if isinstance(item, dict))
    return {name for name in owners if name}


def observe(ec2) -> Observed:
    """Read one region's state from the EC2 API: the bodies it asks for, and its volumes."""
    def everything(operation: str, key: str, **kwargs) -> dict:
        items = []
        for page in ec2.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
        return {key: items}

    instances, volumes = everything("describe_instances", "Reservations"), everything("describe_volumes", "Volumes")
    groups, keys = everything("describe_security_groups", "SecurityGroups"), ec2.describe_key_pairs(IncludePublicKey=True)
    bodies = desired_bodies(instances, volumes, groups, keys, everything("describe_subnets", "Subnets"),
                            region=ec2.meta.region_name)
    return Observed(bodies, {v["VolumeId"] for v in volumes["Volumes"]},
                    labs_owning(instances, volumes, groups, {"KeyPairs": keys.get("KeyPairs", [])}))
