"""One instance per node and one volume per Swift device, whatever raced.

Two instances for one node happen when a RunInstances went through but answered an error
(the retry launches again where EC2 did not honour the ClientToken, as moto never does),
or when two `lab up` of the same lab ran at once from two folders. The lab looks again by
tag after launching and keeps, per node, the older instance (LaunchTime, then id): every
run that looks decides the same, so two racing runs never keep different ones. An instance
that holds the node's Swift volumes is kept before any other (LaunchTime counts seconds, so
two launches of one second are told apart by id only). Volumes likewise, per (node,
device): the one attached to the kept instance, else the older.

Only a tagged volume (lab:volume) counts as holding something: a volume its instance's
launch made and the lab has not tagged yet was never in an inventory, so nothing was put
on it. An extra instance holding only such volumes is terminated like any fresh duplicate,
and its volumes go with it (DeleteOnTermination), not deleted one by one.
Deciding is pure (duplicates); remove_duplicates acts and says what it removed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from lab.discovery import FoundInstance, FoundVolume, LabResources
from lab.ec2 import error_code, with_retry
from labcore import tags as tag
from labcore.errors import CloudStateError

GONE_VOLUME = ("deleting", "deleted")
# A resource EC2 does not list yet (or any more) sorts as the newest: it never beats one that is seen.
_UNSEEN = datetime.max.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Duplicates:
    instances: list[tuple[FoundInstance, FoundInstance]]  # (kept, extra)
    volumes: list[tuple[FoundVolume, FoundVolume]]  # (kept, extra)

    def __bool__(self) -> bool:
        return bool(self.instances or self.volumes)


def _age(time: datetime | None) -> datetime:
    if time is None:
        return _UNSEEN
    return time if time.tzinfo else time.replace(tzinfo=timezone.utc)


def live_volumes(found: LabResources) -> list[FoundVolume]:
    """The lab's Swift volumes that are not on their way out (root volumes go with their instance)."""
    return [v for v in found.volumes if v.name != tag.ROOT_VOLUME and v.state not in GONE_VOLUME]


def holders(found: LabResources) -> set[str]:
    """The instances holding a tagged Swift volume of the lab: what may hold data."""
    return {v.instance_id for v in live_volumes(found) if v.instance_id and v.tagged}


def duplicates(found: LabResources) -> Duplicates:
    """Per node the older instance is kept; per (node, device) the volume on it, else the older."""
    by_node: dict[str, list[FoundInstance]] = {}
    for instance in found.instances:
        by_node.setdefault(instance.node, []).append(instance)
    holding = holders(found)
    extra_instances, kept_ids = [], set()
    for group in by_node.values():
        kept, *extra = sorted(group, key=lambda i: (i.instance_id not in holding, _age(i.launch_time),
                                                    i.instance_id))
        kept_ids.add(kept.instance_id)
        extra_instances += [(kept, e) for e in extra]
    by_device: dict[tuple[str, str], list[FoundVolume]] = {}
    for volume in live_volumes(found):
        by_device.setdefault((volume.node, volume.name), []).append(volume)
    extra_volumes = []
    for group in by_device.values():
        kept, *extra = sorted(group, key=lambda v: (v.instance_id not in kept_ids, _age(v.create_time), v.volume_id))
        extra_volumes += [(kept, e) for e in extra]
    return Duplicates(extra_instances, extra_volumes)


def remove_duplicates(ec2, found: LabResources, progress) -> LabResources:
    """Terminate each node's newer instances and delete each device's newer volumes; what is left.

    Only fresh duplicates go: an extra instance holding Swift volumes, or an extra volume that
    is attached, may hold data, so it stops the run (exit 1) for a person to decide.
    """
    dups = duplicates(found)
    if not dups:
        return found
    doomed_instances = {extra.instance_id for _, extra in dups.instances}
    _refuse_what_may_hold_data(found, dups, doomed_instances)
    holding = holders(found)
    for kept, extra in dups.instances:
        why = "it holds the node's volumes" if kept.instance_id in holding else "the older"
        progress(f"node {kept.node} has two instances: keeping {kept.instance_id} ({why}), "
                 f"terminating {extra.instance_id}")
    for instance_id in sorted(doomed_instances):
        with_retry(terminate, ec2, instance_id)
    # A volume on a terminated duplicate goes with it; only the loose ones are deleted.
    doomed_volumes = [extra.volume_id for _, extra in dups.volumes if extra.instance_id is None]
    for kept, extra in dups.volumes:
        if extra.instance_id is None:
            progress(f"volume {kept.node}/{kept.name} exists twice: keeping {kept.volume_id}, "
                     f"deleting the newer {extra.volume_id}")
    for volume_id in doomed_volumes:
        with_retry(delete_volume, ec2, volume_id)  # a volume still creating answers IncorrectState: retried
    gone_volumes = set(doomed_volumes)
    return LabResources(instances=[i for i in found.instances if i.instance_id not in doomed_instances],
                        volumes=[v for v in found.volumes if v.volume_id not in gone_volumes
                                 and v.instance_id not in doomed_instances],
                        security_groups=found.security_groups, key_pairs=found.key_pairs,
                        expiry_tags=found.expiry_tags)


def _refuse_what_may_hold_data(found: LabResources, dups: Duplicates, doomed_instances: set[str]) -> None:
    def held(instance: FoundInstance) -> str:
        return ", ".join(sorted(v.volume_id for v in live_volumes(found)
                                if v.instance_id == instance.instance_id and v.tagged))

    for kept, extra in dups.instances:
        if held(extra):
            raise CloudStateError(f"node {kept.node} has two instances that both hold volumes ({kept.instance_id}: "
                                  f"{held(kept)}; {extra.instance_id}: {held(extra)}); terminate the one you do not "
                                  f"want (aws ec2 terminate-instances --instance-ids ID) and run `lab up` again")
    for kept, extra in dups.volumes:
        if extra.instance_id is not None and not (extra.instance_id in doomed_instances and not extra.tagged):
            raise CloudStateError(f"volume {kept.node}/{kept.name} exists twice ({kept.volume_id}, {extra.volume_id} "
                                  f"attached to {extra.instance_id}); detach and delete the one you do not want, "
                                  f"then run `lab up` again")


def terminate(ec2, instance_id: str) -> None:
    """Terminate; one another run terminated already is fine."""
    try:
        ec2.terminate_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if error_code(exc) != "InvalidInstanceID.NotFound":
            raise


def delete_volume(ec2, volume_id: str) -> None:
    """Delete; one another run deleted already is fine."""
    try:
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as exc:
        if error_code(exc) != "InvalidVolume.NotFound":
            raise


def with_unseen(found: LabResources, instances: list[FoundInstance], new_volumes: list[FoundVolume]) -> LabResources:
    """found plus what this run just made that a tag lookup does not list yet (eventual consistency)."""
    seen_instances = {i.instance_id for i in found.instances}
    seen_volumes = {v.volume_id for v in found.volumes}
    return replace(found, instances=found.instances + [i for i in instances if i.instance_id not in seen_instances],
                   volumes=found.volumes + [v for v in new_volumes if v.volume_id not in seen_volumes])
