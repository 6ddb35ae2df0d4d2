"""Make the host's instance bodies match the EC2 API's state, one pass at a time.

`desired_bodies` is pure: boto3 response dicts in, InstanceBody values out, so every rule
(which instances get a body, which volumes, which ingress) is tested without moto or root.
`Reconciler.reconcile` compares them with what the body layer says exists and asks it for
the difference only; an error in one body is logged and retried on a later pass without
holding up the others.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field

from labcore import tags as tag
from twin.model import BodyLayer, IngressRule, InstanceBody, VolumeBody

log = logging.getLogger(__name__)

LIVE_STATES = ("pending", "running")
DEFAULT_SSH_USER = "ubuntu"
# EC2 accepts protocol names or IANA numbers; the body layer knows these four.
_PROTOCOLS = {"-1": "all", "all": "all", "icmp": "icmp", "1": "icmp", "tcp": "tcp", "6": "tcp",
              "udp": "udp", "17": "udp"}
RETRY_SECONDS = (2.0, 5.0, 15.0, 30.0)


# ------------------------------------------------------------------ desired state (pure)
def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def _instances(describe_instances: dict) -> list[dict]:
    return [i for r in describe_instances.get("Reservations", []) for i in r.get("Instances", [])]


def _is_live(instance: dict) -> bool:
    return instance.get("State", {}).get("Name") in LIVE_STATES


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
    """Group id -> private IPs of the live instances in it: what a group reference allows."""
    members: dict[str, list[str]] = {}
    for instance in instances:
        if not _is_live(instance) or not instance.get("PrivateIpAddress"):
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
                   describe_key_pairs: dict, describe_subnets: dict) -> list[InstanceBody]:
    """The body every live instance of a lab should have (arguments: boto3 responses; key pairs
    described with IncludePublicKey=True)."""
    instances = _instances(describe_instances)
    groups = {g["GroupId"]: g for g in describe_security_groups.get("SecurityGroups", [])}
    keys = {k["KeyName"]: k.get("PublicKey", "") for k in describe_key_pairs.get("KeyPairs", [])}
    subnets = {s["SubnetId"]: s["CidrBlock"] for s in describe_subnets.get("Subnets", [])}
    members = _group_members(instances)
    bodies = []
    for instance in instances:
        tags = _tags(instance)
        if not _is_live(instance) or tag.NAME not in tags:
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
            instance_type=instance.get("InstanceType", "")))
    return sorted(bodies, key=lambda b: b.instance_id)


def observe(ec2) -> list[InstanceBody]:
    """Read one region's state from the EC2 API and derive the bodies it asks for."""
    def everything(operation: str, key: str, **kwargs) -> dict:
        items = []
        for page in ec2.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
        return {key: items}

    return desired_bodies(
        everything("describe_instances", "Reservations"),
        everything("describe_volumes", "Volumes"),
        everything("describe_security_groups", "SecurityGroups"),
        ec2.describe_key_pairs(IncludePublicKey=True),
        everything("describe_subnets", "Subnets"))


# ------------------------------------------------------------------ making the host match
@dataclass
class PassReport:
    """What one pass changed and what failed (failures are retried on a later pass)."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    volumes_synced: list[str] = field(default_factory=list)
    firewall_applied: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.started or self.stopped or self.volumes_synced or self.firewall_applied)


def _firewall_key(bodies: list[InstanceBody]) -> tuple:
    return tuple(sorted((b.instance_id, b.private_ip, b.ingress) for b in bodies))


class Reconciler:
    """Remembers, across passes, the firewall it applied and which actions failed lately.

    The firewall is re-applied on the first pass of a new daemon (the ruleset on disk may
    predate it) and whenever the bodies' addresses or ingress rules change. A failing
    action waits a little longer before each retry so that a broken body does not fill
    the log every second.
    """

    def __init__(self, layer: BodyLayer, clock=time.monotonic):
        self.layer = layer
        self.clock = clock
        self._firewall: tuple | None = None
        self._failures: dict[str, tuple[int, float]] = {}  # action key -> (failures, next try)

    def reconcile(self, desired: list[InstanceBody]) -> PassReport:
        report = PassReport()
        current = self.layer.bodies()
        wanted = {b.instance_id: b for b in desired}
        broken_subnets = self._networks(desired, report)
        for instance_id in sorted(set(current) - set(wanted)):
            if self._try(f"stop {instance_id}", _describe(current[instance_id]), report,
                         lambda i=instance_id: self.layer.stop(i)):
                report.stopped.append(instance_id)
        for body in desired:
            if body.subnet_cidr in broken_subnets:
                continue
            have = current.get(body.instance_id)
            if have is None:
                if self._try(f"start {body.instance_id}", _describe(body), report, lambda b=body: self.layer.start(b)):
                    report.started.append(body.instance_id)
            elif have.volumes != body.volumes:
                if self._try(f"sync volumes of {body.instance_id}", _describe(body), report,
                             lambda b=body: self.layer.sync_volumes(b)):
                    report.volumes_synced.append(body.instance_id)
        self._apply_firewall(desired, report)
        return report

    def _networks(self, desired: list[InstanceBody], report: PassReport) -> set[str]:
        broken = set()
        for cidr in sorted({b.subnet_cidr for b in desired}):
            if not self._try(f"network {cidr}", "bridge, NAT and forwarding", report,
                             lambda c=cidr: self.layer.ensure_network(c)):
                broken.add(cidr)
        return broken

    def _apply_firewall(self, desired: list[InstanceBody], report: PassReport) -> None:
        key = _firewall_key(desired)
        if key == self._firewall:
            return
        if self._try("firewall", f"{len(desired)} bodies", report, lambda: self.layer.apply_firewall(desired)):
            self._firewall = key
            report.firewall_applied = True

    def _try(self, action: str, what: str, report: PassReport, call) -> bool:
        """Run one action unless it is backing off after a failure; record the outcome."""
        failures, next_try = self._failures.get(action, (0, 0.0))
        now = self.clock()
        if now < next_try:
            report.errors.append(f"{action}: waiting to retry after {failures} failures")
            return False
        try:
            call()
        except Exception as exc:  # one body's failure must not stop the others; retried later
            wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            self._failures[action] = (failures + 1, now + wait)
            log.error("%s failed (%s); retrying in %.0f s: %s", action, what, wait, exc,
                      exc_info=failures == 0)
            report.errors.append(f"{action}: {exc}")
            return False
        self._failures.pop(action, None)
        log.info("%s: done (%s)", action, what)
        return True


def _describe(body: InstanceBody) -> str:
    return f"{body.instance_id} lab {body.lab} host {body.hostname} {body.private_ip}"


def reconcile(layer: BodyLayer, desired: list[InstanceBody]) -> PassReport:
    """One pass with no memory of earlier ones (the firewall is applied)."""
    return Reconciler(layer).reconcile(desired)
