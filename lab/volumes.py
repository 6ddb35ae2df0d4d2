"""The Swift volumes: created in their node's zone, attached in config order, gone with the node.

Each attached volume is set to DeleteOnTermination (one ModifyInstanceAttribute per
node): terminating the instance deletes it even if `lab down` is interrupted, and
`lab down` deletes any tagged volume that is left.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lab.config import LabSpec
from lab.ec2 import with_retry
from labcore import tags as tag
from labcore.errors import CloudError
from labcore.tags import lab_tags, tag_spec

POLL_SECONDS = 2.0
AVAILABLE_TIMEOUT_SECONDS = 300.0
MAX_PARALLEL_CALLS = 32
DEVICE_LETTERS = "fghijklmnop"


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


def _parallel(fn, items):
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(items))) as pool:
        return list(pool.map(fn, items))


def create(ec2, spec: LabSpec, volumes: list[WantedVolume],
           zone_of: dict[WantedVolume, str]) -> dict[tuple[str, str], str]:
    """Each volume in the zone of its node, all at once; (node, logical name) -> volume id."""

    def one(v: WantedVolume) -> str:
        tags = lab_tags(spec.name, v.node, spec.nodes[v.node].role, extra={**spec.tags, tag.VOLUME: v.name})
        tags["Name"] = f"{spec.name}-{v.node}-{v.name}"
        return with_retry(ec2.create_volume, AvailabilityZone=zone_of[v], Size=v.size_gb,
                          VolumeType=spec.volume_type, TagSpecifications=[tag_spec("volume", tags)])["VolumeId"]

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
            raise CloudError(f"volumes not available after {AVAILABLE_TIMEOUT_SECONDS:.0f} s: {', '.join(waiting)}")
        time.sleep(POLL_SECONDS)


def attach(ec2, attachments: list[tuple[str, str, str]]) -> None:
    """(volume id, instance id, device) each; an instance still pending is retried (IncorrectState)."""
    _parallel(lambda a: with_retry(ec2.attach_volume, VolumeId=a[0], InstanceId=a[1], Device=a[2],
                                   retry_not_found=True), attachments)


def delete_on_termination(ec2, instance_ids: list[str]) -> list[str]:
    """Mark every attached volume DeleteOnTermination; one DescribeInstances, one call per instance needing it."""
    if not instance_ids:
        return []
    reservations = with_retry(ec2.describe_instances, InstanceIds=instance_ids, retry_not_found=True)["Reservations"]
    pending: dict[str, list[str]] = {}
    for instance in (i for r in reservations for i in r["Instances"]):
        for mapping in instance.get("BlockDeviceMappings", []):
            if "Ebs" in mapping and not mapping["Ebs"].get("DeleteOnTermination"):
                pending.setdefault(instance["InstanceId"], []).append(mapping["DeviceName"])
    _parallel(lambda item: with_retry(ec2.modify_instance_attribute, InstanceId=item[0], BlockDeviceMappings=[
        {"DeviceName": d, "Ebs": {"DeleteOnTermination": True}} for d in item[1]]), list(pending.items()))
    return sorted(pending)
