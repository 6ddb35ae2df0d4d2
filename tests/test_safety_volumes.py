"""Nobody's volume is lost: a volume the lab did not create outlives `lab up` and `lab down`.

A person attaches a volume of their own to a lab node. `up` must not mark it
DeleteOnTermination (EC2 would delete it with the instance), and `down` detaches it from
the lab's instance before terminating anything, waits until it is available, and says so.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from test_safety_support import (  # noqa: F401 (endpoint: a fixture)
    REGION,
    Faults,
    cli_config,
    endpoint,
    lab_volumes,
    node_instance,
    server_client,
    share_botocore_session,
)

from lab import cli, teardown, volumes
from lab.target import AwsTarget
from labcore.errors import CloudError


def _delete_on_termination(ec2, instance_id: str) -> dict[str, bool]:
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {m["Ebs"]["VolumeId"]: m["Ebs"]["DeleteOnTermination"] for m in instance["BlockDeviceMappings"]}


def _volume(ec2, volume_id: str) -> dict:
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def test_a_persons_volume_on_a_lab_node_survives_up_and_down_untouched(endpoint, tmp_path, capsys):
    config = cli_config(tmp_path, endpoint, "shared-lab")
    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 0
    ec2 = server_client(endpoint)
    object1 = node_instance(ec2, "shared-lab", "object1")
    object2 = node_instance(ec2, "shared-lab", "object2")
    zone = object1["Placement"]["AvailabilityZone"]
    mine = ec2.create_volume(AvailabilityZone=zone, Size=3, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "alice-data"}]}])["VolumeId"]
    theirs = ec2.create_volume(AvailabilityZone=zone, Size=2, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [{"Key": "lab:name", "Value": "other-lab"}]}])["VolumeId"]
    ec2.attach_volume(VolumeId=mine, InstanceId=object1["InstanceId"], Device="/dev/sdk")
    ec2.attach_volume(VolumeId=theirs, InstanceId=object2["InstanceId"], Device="/dev/sdk")
    before = {v: _volume(ec2, v) for v in (mine, theirs)}

    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 0  # the second up marks volumes
    marks = _delete_on_termination(ec2, object1["InstanceId"]) | _delete_on_termination(ec2, object2["InstanceId"])
    assert marks[mine] is False and marks[theirs] is False
    assert all(marked for volume, marked in marks.items() if volume not in (mine, theirs))  # the lab's own are
    capsys.readouterr()

    assert cli.main(["down", "--config", config, "--target", "aws"]) == 0

    out = capsys.readouterr().out
    for volume_id, node in ((mine, "object1"), (theirs, "object2")):
        after = _volume(ec2, volume_id)
        assert after["State"] == "available" and not after["Attachments"]
        assert (after["Size"], after["Tags"], after["AvailabilityZone"]) == (
            before[volume_id]["Size"], before[volume_id]["Tags"], before[volume_id]["AvailabilityZone"])
        assert f"volume {volume_id}" in out and node in out
    assert "volume " + mine + " (alice-data) on object1" in out and "is not the lab's" in out
    assert "kept, available and untouched" in out
    assert lab_volumes(ec2, "shared-lab") == []  # the lab's own volumes are gone, as ever


@pytest.fixture
def ec2(monkeypatch):
    share_botocore_session(monkeypatch)
    for name in ("TERMINATE_POLL_SECONDS", "GONE_POLL_SECONDS", "STOP_POLL_SECONDS"):
        monkeypatch.setattr(teardown, name, 0.0)
    monkeypatch.setattr(volumes, "POLL_SECONDS", 0.0)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _lab_node(ec2, lab: str, node: str) -> str:
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": f"{REGION}a"},
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "lab:name", "Value": lab}, {"Key": "lab:node", "Value": node},
                                 {"Key": "lab:role", "Value": "object"}]}])["Instances"][0]["InstanceId"]


def _attached_volume(ec2, instance: str, device: str, tags: dict[str, str]) -> str:
    spec = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec)["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device=device)
    return volume


def test_only_the_labs_own_volumes_are_marked_delete_on_termination(ec2):
    node = _lab_node(ec2, "mark-lab", "object1")
    own = _attached_volume(ec2, node, "/dev/sdf", {"lab:name": "mark-lab", "lab:node": "object1"})
    stranger = _attached_volume(ec2, node, "/dev/sdg", {"Name": "backup"})
    other_lab = _attached_volume(ec2, node, "/dev/sdh", {"lab:name": "other-lab"})

    assert volumes.delete_on_termination(ec2, [node]) == [node]

    marks = _delete_on_termination(ec2, node)
    assert marks[own] is True and marks[stranger] is False and marks[other_lab] is False
    assert volumes.delete_on_termination(ec2, [node]) == []  # nothing left to mark


def test_a_volume_that_will_not_detach_stops_down_before_anything_is_terminated(ec2, monkeypatch):
    node = _lab_node(ec2, "stuck-lab", "object1")
    own = _attached_volume(ec2, node, "/dev/sdf", {"lab:name": "stuck-lab", "lab:node": "object1"})
    stranger = _attached_volume(ec2, node, "/dev/sdg", {"Name": "backup"})
    monkeypatch.setattr(volumes, "DETACH_TIMEOUT_SECONDS", 0.0)
    # EC2 accepts the detach, but the volume stays attached (a busy device can hang in "detaching")
    Faults(monkeypatch).answer("DetachVolume", lambda params: {"VolumeId": stranger, "State": "detaching"})

    with pytest.raises(CloudError) as failure:
        teardown.down("stuck-lab", REGION, AwsTarget(), progress=lambda line: None)

    assert str(failure.value).startswith(f"volume {stranger} (backup) on object1 ({node}, /dev/sdg): still not "
                                         f"detached after 0 s, so nothing was terminated")
    assert str(failure.value).endswith("run `lab down` again")
    assert ec2.describe_instances(InstanceIds=[node])["Reservations"][0]["Instances"][0]["State"]["Name"] != \
        "terminated"
    assert {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} >= {own, stranger}


def test_a_lab_without_foreign_volumes_goes_down_without_stopping_anything(ec2, monkeypatch):
    """Its instances' root volumes carry no lab tag here (as moto makes them): they are not foreign."""
    _lab_node(ec2, "plain-lab", "object1")
    faults = Faults(monkeypatch)
    lines: list[str] = []
    report = teardown.down("plain-lab", REGION, AwsTarget(), progress=lines.append)
    assert "StopInstances" not in faults.calls and "DetachVolume" not in faults.calls
    assert report.kept == [] and not any("not the lab's" in line for line in lines)
