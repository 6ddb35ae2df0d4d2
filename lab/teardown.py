"""`lab down`: delete every EC2 resource tagged with the lab's name, and nothing else.

Everything is found by the tag lab:name=<lab>, never from .lab/, so `down` works after
the local folder is lost and can never touch a resource another lab or a person owns.
A volume a person attached by hand to a lab node is not the lab's: before any instance is
terminated, its instance is stopped (its file systems are written out, as on a shutdown)
and the volume detached and waited for until available, named in the output, untouched.
The work is a few batched rounds whatever the lab's size (one TerminateInstances for all
instances, one describe per wait round, deletes in parallel), so a lab of 50 nodes goes
down nearly as fast as a lab of 3.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from botocore.exceptions import ClientError

from lab import volumes
from lab.discovery import LabResources, find_lab
from lab.ec2 import error_code, with_retry
from lab.target import Target
from labcore.errors import CloudError

Progress = Callable[[str], None]

# Waiting for instances to terminate: one DescribeInstances for all of them per round.
# EC2 needs about a minute; tests and the benchmark shrink the delay.
TERMINATE_POLL_SECONDS = 5.0
TERMINATE_TIMEOUT_SECONDS = 900.0
# Stopping an instance that holds someone else's volume, before detaching it.
STOP_POLL_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 600.0
# After the deletes, volumes sit in state "deleting" for a few seconds on AWS.
GONE_POLL_SECONDS = 3.0
GONE_TIMEOUT_SECONDS = 180.0
# DeleteVolume has no batch form: these many run at once.
DELETE_WORKERS = 16
# What EC2 answers when the resource to delete no longer exists: nothing left to do.
VOLUME_GONE = frozenset({"InvalidVolume.NotFound"})
GROUP_GONE = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.NotFound"})


@dataclass
class DownReport:
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # volumes not the lab's, detached from its instances


def down(lab: str, region: str, target: Target, *, progress: Progress) -> DownReport:
    """Remove the lab's instances, volumes, security groups and key pairs; verify none is left."""
    ec2 = target.ec2_client(region)
    found = find_lab(ec2, lab)
    report = DownReport()
    if found.is_empty():
        progress(f"nothing tagged lab:name={lab} exists")
        return report
    report.kept = _detach_foreign_volumes(ec2, lab, found, progress)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # The key pair is independent of the instances: delete it while they terminate.
        keys = pool.submit(_delete_key_pairs, ec2, found, progress)
        report.removed += _terminate_instances(ec2, found, progress)
        report.removed += keys.result()
    with ThreadPoolExecutor(max_workers=2) as pool:
        groups = pool.submit(_delete_security_groups, ec2, found, progress)
        report.removed += _delete_volumes(ec2, lab, found, progress)
        report.removed += groups.result()
    _check_nothing_left(ec2, lab)
    return report


# ---------------------------------------------------------------- volumes that are not the lab's
def _detach_foreign_volumes(ec2, lab: str, found: LabResources, progress: Progress) -> list[str]:
    """Stop the instances holding a volume without the lab's tag, detach those volumes, wait; what was kept."""
    foreign = volumes.foreign_attached(ec2, lab, {i.instance_id: i.node for i in found.instances})
    if not foreign:
        return []
    for volume in foreign:
        progress(f"{volume.describe()} is not the lab's: it is detached before anything is terminated, and kept")
    holders = sorted({v.instance_id for v in foreign})
    nodes = sorted({v.node for v in foreign})
    progress(f"stopping {', '.join(nodes)} first, so that {'its' if len(nodes) == 1 else 'their'} file systems "
             f"are written out before the detach")
    with_retry(ec2.stop_instances, InstanceIds=holders)
    _wait_stopped(ec2, holders, progress)
    volumes.detach_foreign(ec2, foreign)
    kept = [v.describe().replace(" on ", " detached from ", 1) for v in foreign]
    progress(f"kept, available and untouched: {'; '.join(kept)}")
    return kept


def _wait_stopped(ec2, ids: list[str], progress: Progress) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while True:
        pending = sorted(i for i, state in _instance_states(ec2, ids).items() if state not in ("stopped", "terminated"))
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise CloudError(f"instances still not stopped after {STOP_TIMEOUT_SECONDS:.0f} s: {', '.join(pending)}; "
                             f"nothing was terminated and no volume detached; check them in the EC2 console, then "
                             f"run `lab down` again")
        time.sleep(STOP_POLL_SECONDS)


# ---------------------------------------------------------------- instances
def _terminate_instances(ec2, found: LabResources, progress: Progress) -> list[str]:
    if not found.instances:
        return []
    ids = [i.instance_id for i in found.instances]
    progress(f"terminating {len(ids)} instances: {', '.join(i.node for i in found.instances)}")
    with_retry(ec2.terminate_instances, InstanceIds=ids)
    _wait_terminated(ec2, ids, progress)
    return [f"instance {i.node} ({i.instance_id})" for i in found.instances]


def _wait_terminated(ec2, ids: list[str], progress: Progress) -> None:
    deadline = time.monotonic() + TERMINATE_TIMEOUT_SECONDS
    while True:
        states = _instance_states(ec2, ids)
        pending = sorted(i for i, state in states.items() if state != "terminated")
        if not pending:
            progress(f"{len(ids)} instances terminated")
            return
        if time.monotonic() >= deadline:
            raise CloudError(f"instances still not terminated after {TERMINATE_TIMEOUT_SECONDS:.0f} s: "
                             f"{', '.join(pending)}; run `lab down` again, or check them in the EC2 console")
        time.sleep(TERMINATE_POLL_SECONDS)


def _instance_states(ec2, ids: list[str]) -> dict[str, str]:
    """One DescribeInstances (paged) for all ids; an id EC2 forgot counts as terminated."""
    states = {i: "terminated" for i in ids}
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-id", "Values": ids}])
    for page in with_retry(lambda: list(pages)):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                states[instance["InstanceId"]] = instance["State"]["Name"]
    return states


# ---------------------------------------------------------------- volumes
def _delete_volumes(ec2, lab: str, found: LabResources, progress: Progress) -> list[str]:
    """Delete the lab's volumes that outlived their instances; report those that went with them.

    Listed again after the instances are gone: DeleteOnTermination took the attached ones
    already (or is taking them: state "deleting"), and a volume may have appeared since.
    """
    left = {v.volume_id: v for v in find_lab(ec2, lab).volumes}
    went = [v for v in found.volumes if v.volume_id not in left or left[v.volume_id].state == "deleting"]
    if went:
        progress(f"{len(went)} volumes went with their instances (DeleteOnTermination)")
    doomed = [v for v in left.values() if v.state != "deleting"]
    if doomed:
        progress(f"deleting {len(doomed)} volumes")
        with ThreadPoolExecutor(max_workers=min(DELETE_WORKERS, len(doomed))) as pool:
            deleted = list(pool.map(lambda v: _delete_volume(ec2, v.volume_id), doomed))
        went += [v for v, gone in zip(doomed, deleted) if gone]
    return [_volume_label(v) for v in went]


def _volume_label(volume) -> str:
    return f"volume {volume.node}/{volume.name} ({volume.volume_id})"


def _delete_volume(ec2, volume_id: str) -> bool:
    """Delete one volume (retrying while it is still detaching); False if it was already gone."""
    return with_retry(_unless_gone, ec2.delete_volume, VOLUME_GONE, VolumeId=volume_id)


def _unless_gone(delete: Callable[..., object], gone: frozenset[str], **kwargs) -> bool:
    """One delete call; False when EC2 says the resource no longer exists.

    Runs inside with_retry, which turns every ClientError into a CloudError: "already
    gone" has to be recognised here, on the raw answer, or a volume deleted by someone
    else (or by DeleteOnTermination) between listing and deleting would fail `down`.
    """
    try:
        delete(**kwargs)
    except ClientError as exc:
        if error_code(exc) in gone:
            return False
        raise
    return True


# ---------------------------------------------------------------- security groups and key pairs
def _delete_security_groups(ec2, found: LabResources, progress: Progress) -> list[str]:
    removed = []
    for group in found.security_groups:
        progress(f"deleting security group {group.group_id} (retried while instances still hold it)")
        if with_retry(_unless_gone, ec2.delete_security_group, GROUP_GONE, GroupId=group.group_id):
            removed.append(f"security group {group.group_id}")
    return removed


def _delete_key_pairs(ec2, found: LabResources, progress: Progress) -> list[str]:
    removed = []
    for key in found.key_pairs:
        progress(f"deleting key pair {key.key_name}")
        with_retry(ec2.delete_key_pair, KeyName=key.key_name)
        removed.append(f"key pair {key.key_name}")
    return removed


# ---------------------------------------------------------------- final check
def _check_nothing_left(ec2, lab: str) -> None:
    """Fail loudly if anything of the lab is left, after letting 'deleting' volumes finish."""
    deadline = time.monotonic() + GONE_TIMEOUT_SECONDS
    while True:
        left = find_lab(ec2, lab)
        if left.is_empty():
            return
        settling = all(v.state == "deleting" for v in left.volumes) and not (
            left.instances or left.security_groups or left.key_pairs)
        if not settling or time.monotonic() >= deadline:
            raise CloudError(f"lab {lab}: still present after down: {_describe(left)}; "
                             f"run `lab down` again, or delete them in the EC2 console")
        time.sleep(GONE_POLL_SECONDS)


def _describe(left: LabResources) -> str:
    parts = [f"instance {i.node} ({i.instance_id}, {i.state})" for i in left.instances]
    parts += [f"volume {v.volume_id} ({v.state})" for v in left.volumes]
    parts += [f"security group {g.group_id}" for g in left.security_groups]
    parts += [f"key pair {k.key_name}" for k in left.key_pairs]
    return ", ".join(parts)
