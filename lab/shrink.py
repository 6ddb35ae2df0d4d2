"""Nodes and volumes the config no longer has: what `lab up` does with them, and the lab:drained mark.

A node or volume taken out of the config still holds Swift data until `lab install` has
drained it out of the rings (bootstrap/ring_changes.py), so `lab up` never removes one on
its own: it records it in the inventory as leaving (the install drains it, stops its
services or unmounts it, and marks it lab:drained through mark_drained), and it removes
only what carries that mark: a drained instance is terminated (its Swift volumes go with
it: DeleteOnTermination), a drained volume is detached and deleted. A drained node or
volume that is back in the config loses its mark: it serves again, so taking it out once
more must drain it again. Only what carries the lab's lab:name tag is ever looked at.

A controller taken out of the config is not something the lab moves: it is left alone
with a line (`lab down` removes the lab).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from lab.config import LabSpec
from lab.discovery import FoundInstance, FoundVolume, LabResources
from lab.duplicates import live_volumes
from lab.ec2 import with_retry
from labcore import tags as tag
from labcore.errors import CloudError
from labcore.inventory import NodeRecord, VolumeRecord
from labcore.tags import lab_filter, tags_of

Progress = Callable[[str], None]
DRAINED_VALUE = "true"
DETACH_WAIT = {"Delay": 2, "MaxAttempts": 150}  # a detach takes seconds; at most 5 min


@dataclass(frozen=True)
class Strays:
    """What exists of the lab but is not in the config."""

    instances: list[FoundInstance] = field(default_factory=list)
    volumes: list[FoundVolume] = field(default_factory=list)  # Swift volumes the config does not name


def strays(spec: LabSpec, found: LabResources) -> Strays:
    def named(v: FoundVolume) -> bool:
        return v.node in spec.nodes and v.name in spec.nodes[v.node].volumes

    return Strays([i for i in found.instances if i.node not in spec.nodes],
                  [v for v in live_volumes(found) if not named(v)])


def drained_ids(ec2, lab: str) -> set[str]:
    """The ids of the lab's instances and volumes marked lab:drained (two calls)."""
    filters = lab_filter(lab) + [{"Name": f"tag:{tag.DRAINED}", "Values": [DRAINED_VALUE]}]
    pages = with_retry(lambda: list(ec2.get_paginator("describe_instances").paginate(Filters=filters)))
    ids = {i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]}
    pages = with_retry(lambda: list(ec2.get_paginator("describe_volumes").paginate(Filters=filters)))
    return ids | {v["VolumeId"] for page in pages for v in page["Volumes"]}


def reconcile(ec2, spec: LabSpec, found: LabResources, progress: Progress) -> LabResources:
    """`lab up`'s part: remove what the install drained, say what it still has to drain; what is left."""
    if not (found.instances or found.volumes):
        return found
    drained = drained_ids(ec2, spec.name)
    if not drained:
        _say_leaving(strays(spec, found), progress)
        return found
    back = [i.instance_id for i in found.instances if i.node in spec.nodes and i.instance_id in drained] + [
        v.volume_id for v in live_volumes(found) if v.volume_id in drained and v.node in spec.nodes
        and v.name in spec.nodes[v.node].volumes]
    if back:
        with_retry(ec2.delete_tags, Resources=back, Tags=[{"Key": tag.DRAINED}])
        progress(f"{', '.join(back)}: back in the config, no longer marked drained (taking them out again "
                 f"drains them again)")
    stray = strays(spec, found)
    doomed = [i for i in stray.instances if i.instance_id in drained and i.role == "object"]
    gone_with = {i.instance_id for i in doomed}
    loose = [v for v in stray.volumes if v.volume_id in drained and v.instance_id not in gone_with]
    _say_leaving(Strays([i for i in stray.instances if i not in doomed],
                        [v for v in stray.volumes if v.volume_id not in drained and v.instance_id not in gone_with]),
                 progress)
    if doomed:
        with_retry(ec2.terminate_instances, InstanceIds=[i.instance_id for i in doomed])
        progress("drained by `lab install`, terminated: " + ", ".join(f"{i.node} ({i.instance_id})" for i in doomed))
    if loose:
        _delete_volumes(ec2, loose)
        progress("drained by `lab install`, detached and deleted: "
                 + ", ".join(f"{v.node}/{v.name} ({v.volume_id})" for v in loose))
    removed = gone_with | {v.volume_id for v in loose}
    return replace(found, instances=[i for i in found.instances if i.instance_id not in removed],
                   volumes=[v for v in found.volumes if v.volume_id not in removed and v.instance_id not in removed],
                   expiry_tags={k: t for k, t in found.expiry_tags.items() if k not in removed})


def _say_leaving(stray: Strays, progress: Progress) -> None:
    nodes = {i.node for i in stray.instances}
    for instance in stray.instances:
        if instance.role != "object":
            progress(f"instance {instance.instance_id} (node {instance.node}, {instance.role or 'no role'}) is not "
                     f"in the config: the lab does not move a controller, so it is left alone (`lab down` removes "
                     f"the lab)")
        else:
            progress(f"instance {instance.instance_id} (node {instance.node}) is no longer in the config and still "
                     f"holds Swift data: run `lab install` first: it drains it, then `lab up` terminates it")
    for volume in (v for v in stray.volumes if v.node not in nodes):
        if volume.instance_id is None:
            progress(f"volume {volume.node}/{volume.name} ({volume.volume_id}) is not in the config and not "
                     f"attached: left alone (`lab down` deletes it)")
        else:
            progress(f"volume {volume.node}/{volume.name} ({volume.volume_id}) is no longer in the config and still "
                     f"holds Swift data: run `lab install` first: it drains it, then `lab up` deletes it")


def _delete_volumes(ec2, doomed: list[FoundVolume]) -> None:
    """Detach (never forced: the install unmounted them) and wait, then delete."""
    attached = [v for v in doomed if v.instance_id]
    for volume in attached:
        with_retry(ec2.detach_volume, VolumeId=volume.volume_id, InstanceId=volume.instance_id)
    if attached:
        try:
            ec2.get_waiter("volume_available").wait(VolumeIds=[v.volume_id for v in attached],
                                                    WaiterConfig=DETACH_WAIT)
        except Exception as exc:  # noqa: BLE001 - botocore's WaiterError: one line saying what to do
            raise CloudError(f"drained volumes not detached after {DETACH_WAIT['Delay'] * DETACH_WAIT['MaxAttempts']}"
                             f" s ({', '.join(v.volume_id for v in attached)}): {exc}"[:300]
                             + "; run `lab up` again") from None
    for volume in doomed:
        with_retry(ec2.delete_volume, VolumeId=volume.volume_id)


# ------------------------------------------------------------------ the inventory's leaving records
def leaving_records(spec: LabSpec, found: LabResources, ssh_via_private_ip: bool
                    ) -> tuple[list[NodeRecord], dict[str, list[VolumeRecord]]]:
    """The object nodes the config no longer has (sorted by name), and per node of the config its
    attached Swift volumes the config no longer names: what the install drains."""
    stray = strays(spec, found)
    by_instance: dict[str, list[FoundVolume]] = {}
    for volume in stray.volumes:
        if volume.instance_id:
            by_instance.setdefault(volume.instance_id, []).append(volume)
    nodes = []
    for i in sorted((i for i in stray.instances if i.role == "object"), key=lambda i: i.node):
        if not i.private_ip:
            continue
        nodes.append(NodeRecord(
            name=i.node, role=i.role, instance_id=i.instance_id, instance_type=i.instance_type, az=i.az,
            private_ip=i.private_ip, public_ip=i.public_ip,
            ssh_host=i.private_ip if ssh_via_private_ip else (i.public_ip or i.private_ip),
            ssh_user=i.ssh_user or spec.ssh_user, leaving=True,
            volumes=[_record(v) for v in sorted(by_instance.get(i.instance_id, []), key=lambda v: v.name)]))
    volumes: dict[str, list[VolumeRecord]] = {}
    for name in spec.nodes:
        instance = found.instance(name)
        if instance is not None:
            own = sorted(by_instance.get(instance.instance_id, []), key=lambda v: v.name)
            volumes[name] = [_record(v) for v in own if v.node == name]
    return nodes, {n: v for n, v in volumes.items() if v}


def _record(volume: FoundVolume) -> VolumeRecord:
    return VolumeRecord(name=volume.name, volume_id=volume.volume_id, size_gb=volume.size_gb,
                        device=volume.device or "", leaving=True)


# ------------------------------------------------------------------ `lab install`'s mark
def mark_drained(ec2, lab: str, ids: list[str], progress: Progress) -> list[str]:
    """Tag lab:drained on these instances and volumes, only those that carry the lab's tag; the ids marked."""
    if not ids:
        return []
    instance_ids = [i for i in ids if i.startswith("i-")]
    volume_ids = [v for v in ids if v.startswith("vol-")]
    ours: set[str] = set()
    if instance_ids:
        answer = with_retry(ec2.describe_instances, InstanceIds=instance_ids)
        ours |= {i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]
                 if tags_of(i).get(tag.NAME) == lab}
    if volume_ids:
        answer = with_retry(ec2.describe_volumes, VolumeIds=volume_ids)
        ours |= {v["VolumeId"] for v in answer["Volumes"] if tags_of(v).get(tag.NAME) == lab}
    marked = [i for i in ids if i in ours]
    if marked:
        with_retry(ec2.create_tags, Resources=marked, Tags=[{"Key": tag.DRAINED, "Value": DRAINED_VALUE}])
        progress(f"marked {tag.DRAINED}: {', '.join(marked)}; the next `lab up` removes them")
    return marked
