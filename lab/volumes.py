"""The Swift volumes: made with their node, attached in config order, gone with the node.

A new node's volumes are part of its RunInstances (launch_mappings: /dev/sdf, /dev/sdg, ...
in config order, DeleteOnTermination), so adding a node costs one call whatever its volume
count. RunInstances gives every volume of the instance the same tags, so the per-volume
tag lab:volume (the Swift device name, or root) is added after the launch, one CreateTags
per distinct name across all new nodes (tag_names). Until then discovery knows such a
volume by the device it is attached at (lab/discovery.py).

A volume added to a node that already runs is created in the node's zone (create),
attached (attach) and set to DeleteOnTermination (one ModifyInstanceAttribute per node).
Either way terminating the instance deletes it even if `lab down` is interrupted, and `lab
down` deletes any tagged volume that is left. A volume without the lab's tag (a person
attached it by hand) is never marked, and `lab down` detaches it before terminating
(foreign_attached, detach_foreign): it outlives the lab untouched.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import ClientError

from lab.config import LabSpec
from lab.ec2 import error_code, with_retry
from labcore import tags as tag
from labcore.errors import CloudError
from labcore.tags import lab_tags, tag_spec, tags_of

POLL_SECONDS = 2.0
AVAILABLE_TIMEOUT_SECONDS = 300.0
DETACH_TIMEOUT_SECONDS = 300.0
MAX_PARALLEL_CALLS = 32
DEVICE_LETTERS = "fghijklmnop"
TAG_BATCH = 1000  # CreateTags takes at most 1000 resource ids per call


@dataclass(frozen=True)
class WantedVolume:
    node: str
    name: str  # logical name: the Swift device and /srv/node/<name>
    size_gb: int
    device: str  # what EC2 is asked to attach it as


def wanted_volumes(spec: LabSpec) -> list[WantedVolume]:
    return [WantedVolume(node, name, int(size), f"/dev/sd{DEVICE_LETTERS[index]}")
            for node, node_spec in spec.nodes.items()
            for index, (name, size) in enumerate(node_spec.volumes.items())]


def device_names(spec: LabSpec) -> dict[str, dict[str, str]]:
    """node -> device it is attached at -> Swift device name: what an untagged volume is (pure)."""
    names: dict[str, dict[str, str]] = {}
    for v in wanted_volumes(spec):
        names.setdefault(v.node, {})[v.device] = v.name
    return names


def launch_mappings(spec: LabSpec, volumes: list[WantedVolume]) -> list[dict]:
    """RunInstances BlockDeviceMappings for a new node's Swift volumes, encrypted (pure)."""
    return [{"DeviceName": v.device, "Ebs": {"VolumeSize": v.size_gb, "VolumeType": spec.volume_type,
                                             "DeleteOnTermination": True, "Encrypted": True}} for v in volumes]


def name_batches(untagged: list[tuple[str, str]]) -> dict[str, list[str]]:
    """(volume id, lab:volume value) each -> value -> the volume ids that get it, sorted (pure)."""
    batches: dict[str, list[str]] = {}
    for volume_id, name in untagged:
        batches.setdefault(name, []).append(volume_id)
    return {name: sorted(ids) for name, ids in sorted(batches.items())}


def tag_names(ec2, untagged: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Tag each volume made by a launch with its lab:volume: one CreateTags per distinct name
    (all sdb at once, all root at once), not one per volume. CreateTags only sets, so a retry
    or a second run doing the same is harmless. The batches sent."""
    batches = name_batches(untagged)
    calls = [(name, ids[start:start + TAG_BATCH]) for name, ids in batches.items()
             for start in range(0, len(ids), TAG_BATCH)]
    _parallel(lambda call: with_retry(ec2.create_tags, Resources=call[1], Tags=[{"Key": tag.VOLUME, "Value": call[0]}],
                                      retry_not_found=True), calls)
    return batches


def _parallel(fn, items):
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(items))) as pool:
        return list(pool.map(fn, items))


def create(ec2, spec: LabSpec, volumes: list[WantedVolume],
           zone_of: dict[WantedVolume, str]) -> dict[tuple[str, str], str]:
    """Each volume in the zone of its node, all at once; (node, logical name) -> volume id."""

    def one(v: WantedVolume) -> str:
        tags = lab_tags(spec.name, v.node, spec.nodes[v.node].role, extra={**spec.resource_tags, tag.VOLUME: v.name})
        tags["Name"] = f"{spec.name}-{v.node}-{v.name}"
        # One token for every retry of this create: a timed-out CreateVolume that went through
        # is answered with its volume, not followed by a second one.
        # Encrypted with the account's default EBS key, as the launch's volumes are (lab/instances.py).
        return with_retry(ec2.create_volume, AvailabilityZone=zone_of[v], Size=v.size_gb,
                          VolumeType=spec.volume_type, Encrypted=True, TagSpecifications=[tag_spec("volume", tags)],
                          ClientToken=uuid.uuid4().hex)["VolumeId"]

    return {(v.node, v.name): vid for v, vid in zip(volumes, _parallel(one, volumes))}


def wait_available(ec2, volume_ids: list[str]) -> None:
    deadline = time.monotonic() + AVAILABLE_TIMEOUT_SECONDS
    while volume_ids:
        raw = with_retry(ec2.describe_volumes, VolumeIds=volume_ids, retry_not_found=True)["Volumes"]
        broken = sorted(v["VolumeId"] for v in raw if v["State"] in ("error", "deleting", "deleted"))
        if broken:
            raise CloudError(f"volumes failed or are being deleted: {', '.join(broken)}; run `lab up` again")
        waiting = [v["VolumeId"] for v in raw if v["State"] == "creating"]
        if len(raw) == len(volume_ids) and not waiting:
            return
        if time.monotonic() > deadline:
            raise CloudError(f"volumes not available after {AVAILABLE_TIMEOUT_SECONDS:.0f} s: {', '.join(waiting)}; "
                             f"run `lab up` again (it attaches them once they are)")
        time.sleep(POLL_SECONDS)


def _attach_one(ec2, volume_id: str, instance_id: str, device: str) -> None:
    """Attach; a volume another `up` of the lab attached to this very instance a moment ago is done."""
    try:
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
    except ClientError as exc:
        if error_code(exc) == "VolumeInUse" and any(
                a["InstanceId"] == instance_id
                for a in ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0].get("Attachments", [])):
            return
        raise


def attach(ec2, attachments: list[tuple[str, str, str]]) -> None:
    """(volume id, instance id, device) each; an instance still pending is retried (IncorrectState)."""
    _parallel(lambda a: with_retry(_attach_one, ec2, *a, retry_not_found=True), attachments)


def _volumes(ec2, filters: list[dict]) -> list[dict]:
    """DescribeVolumes with filters, every page (a filter, unlike VolumeIds, is not failed by one gone id)."""
    pages = ec2.get_paginator("describe_volumes").paginate(Filters=filters)
    return [v for page in with_retry(lambda: list(pages)) for v in page["Volumes"]]


def delete_on_termination(ec2, instance_ids: list[str]) -> list[str]:
    """Mark the lab's attached volumes DeleteOnTermination, and no one else's; the instances marked.

    A volume is the lab's when its lab:name tag is its instance's. One DescribeInstances, one
    DescribeVolumes for the unmarked attachments, one call per instance needing it."""
    if not instance_ids:
        return []
    reservations = with_retry(ec2.describe_instances, InstanceIds=instance_ids, retry_not_found=True)["Reservations"]
    unmarked: dict[str, tuple[dict, str]] = {}  # volume id -> (instance, device)
    for instance in (i for r in reservations for i in r["Instances"]):
        for mapping in instance.get("BlockDeviceMappings", []):
            if "Ebs" in mapping and not mapping["Ebs"].get("DeleteOnTermination"):
                unmarked[mapping["Ebs"]["VolumeId"]] = (instance, mapping["DeviceName"])
    if not unmarked:
        return []
    owner = {v["VolumeId"]: tags_of(v).get(tag.NAME)
             for v in _volumes(ec2, [{"Name": "volume-id", "Values": sorted(unmarked)}])}
    pending: dict[str, list[str]] = {}
    for volume_id, (instance, device) in unmarked.items():
        lab = tags_of(instance).get(tag.NAME)
        if lab and owner.get(volume_id) == lab:
            pending.setdefault(instance["InstanceId"], []).append(device)
    _parallel(lambda item: with_retry(ec2.modify_instance_attribute, InstanceId=item[0], BlockDeviceMappings=[
        {"DeviceName": d, "Ebs": {"DeleteOnTermination": True}} for d in sorted(item[1])]), list(pending.items()))
    return sorted(pending)


@dataclass(frozen=True)
class ForeignVolume:
    """A volume attached to one of the lab's instances that is not tagged as the lab's."""

    volume_id: str
    label: str  # its Name tag, if it has one
    instance_id: str
    node: str
    device: str
    state: str  # of the attachment: attaching, attached, detaching

    def describe(self) -> str:
        name = f" ({self.label})" if self.label else ""
        return f"volume {self.volume_id}{name} on {self.node} ({self.instance_id}, {self.device})"


def foreign_attached(ec2, lab: str, nodes: dict[str, str]) -> list[ForeignVolume]:
    """Volumes attached to the lab's instances (instance id -> node) without the lab's tag.

    An instance's root device is the lab's by construction (launched by it) and never listed."""
    if not nodes:
        return []
    found = []
    for volume in _volumes(ec2, [{"Name": "attachment.instance-id", "Values": sorted(nodes)}]):
        tags = tags_of(volume)
        if tags.get(tag.NAME) == lab:
            continue
        for a in volume.get("Attachments", []):
            if a.get("InstanceId") in nodes and a.get("State") in ("attaching", "attached", "detaching"):
                found.append(ForeignVolume(volume["VolumeId"], tags.get("Name", ""), a["InstanceId"],
                                           nodes[a["InstanceId"]], a.get("Device", ""), a["State"]))
    if not found:
        return []
    reservations = with_retry(ec2.describe_instances, InstanceIds=sorted({f.instance_id for f in found}))
    roots = {i["InstanceId"]: i.get("RootDeviceName") for r in reservations["Reservations"] for i in r["Instances"]}
    return [f for f in found if f.device != roots.get(f.instance_id)]


def detach_foreign(ec2, volumes: list[ForeignVolume]) -> None:
    """Detach each (never forced) and wait until every one is available."""
    _parallel(lambda f: with_retry(ec2.detach_volume, VolumeId=f.volume_id, InstanceId=f.instance_id),
              [f for f in volumes if f.state != "detaching"])
    deadline = time.monotonic() + DETACH_TIMEOUT_SECONDS
    while True:
        states = {v["VolumeId"]: v["State"]
                  for v in _volumes(ec2, [{"Name": "volume-id", "Values": [f.volume_id for f in volumes]}])}
        waiting = [f for f in volumes if states.get(f.volume_id, "available") != "available"]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise CloudError(f"{', '.join(f.describe() for f in waiting)}: still not detached after "
                             f"{DETACH_TIMEOUT_SECONDS:.0f} s, so nothing was terminated; look at it in the EC2 "
                             f"console, then run `lab down` again")
        time.sleep(POLL_SECONDS)
