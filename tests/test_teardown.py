"""`lab down` on moto: everything tagged with the lab goes, nothing else does, and it converges."""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from lab import teardown
from lab.target import AwsTarget, Target
from labcore.errors import CloudError
from labcore.paths import LabPaths

REGION = "ap-northeast-2"


@pytest.fixture(scope="module")
def _moto():
    """One moto EC2 for the module (starting one costs half a second); each test has its own lab."""
    with mock_aws():
        yield


@pytest.fixture
def ec2(_moto, monkeypatch):
    """The moto EC2; waits and retries in teardown run without sleeping."""
    monkeypatch.setattr(teardown, "TERMINATE_POLL_SECONDS", 0.0)
    monkeypatch.setattr(teardown, "GONE_POLL_SECONDS", 0.0)
    _no_retry_sleep(monkeypatch)
    return boto3.client("ec2", region_name=REGION)


_labs = itertools.count(1)


@pytest.fixture
def lab() -> str:
    """A lab name no other test in the module uses."""
    return f"rocky-lab-{next(_labs)}"


def _no_retry_sleep(monkeypatch) -> None:
    from lab import ec2 as lab_ec2

    for name in ("RETRY_WAIT_SECONDS", "RETRY_MAX_WAIT_SECONDS"):
        if hasattr(lab_ec2, name):
            monkeypatch.setattr(lab_ec2, name, 0.0)


def _tags(lab: str, node: str | None = None, role: str | None = None) -> list[dict]:
    tags = {"lab:name": lab, "Name": f"{lab}-{node}" if node else lab}
    if node:
        tags["lab:node"] = node
    if role:
        tags["lab:role"] = role
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _spec(kind: str, tags: list[dict]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": tags}]


def _image(ec2) -> str:
    return ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]


def make_lab(ec2, lab: str, object_nodes: int = 2) -> dict:
    """A lab as `up` leaves it: key pair, security group, tagged instances, attached tagged volumes."""
    ec2.create_key_pair(KeyName=lab, TagSpecifications=_spec("key-pair", _tags(lab)))
    group = ec2.create_security_group(GroupName=lab, Description=f"lab {lab}",
                                      TagSpecifications=_spec("security-group", _tags(lab)))["GroupId"]
    nodes = [("controller", "controller")] + [(f"object{i}", "object") for i in range(1, object_nodes + 1)]
    ids = {}
    for node, role in nodes:
        ids[node] = ec2.run_instances(
            ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="t3.medium", KeyName=lab,
            SecurityGroupIds=[group], Placement={"AvailabilityZone": f"{REGION}a"},
            TagSpecifications=_spec("instance", _tags(lab, node, role)))["Instances"][0]["InstanceId"]
    volumes = []
    for node, role in nodes[1:]:
        for index, name in enumerate(("sdb", "sdc")):
            tags = _tags(lab, node, role) + [{"Key": "lab:volume", "Value": name}]
            volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10, VolumeType="gp3",
                                       TagSpecifications=_spec("volume", tags))["VolumeId"]
            ec2.attach_volume(VolumeId=volume, InstanceId=ids[node], Device=f"/dev/sd{'fg'[index]}")
            volumes.append(volume)
    return {"instances": ids, "volumes": volumes, "group": group}


def left_of(ec2, lab: str) -> dict[str, list[str]]:
    """What EC2 still holds with the lab's tag, asked with plain boto3 (not the code under test)."""
    tag = [{"Name": "tag:lab:name", "Values": [lab]}]
    instances = [i["InstanceId"] for r in ec2.describe_instances(Filters=tag)["Reservations"]
                 for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return {
        "instances": instances,
        "volumes": [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]],
        "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]],
    }


def nothing(left: dict[str, list[str]]) -> bool:
    return not any(left.values())


def down(lab: str, lines: list[str] | None = None) -> teardown.DownReport:
    return teardown.down(lab, REGION, AwsTarget(), progress=(lines if lines is not None else []).append)


class Injector:
    """Make the first `times` calls of an EC2 operation fail with `code`, via a botocore hook.

    teardown builds its own client from the Target, so the hook is registered on every
    client the Target hands out.
    """

    def __init__(self, monkeypatch):
        self.faults: dict[str, list] = {}
        self.calls: dict[str, int] = {}
        original = Target.ec2_client

        def hooked(target, region):
            client = original(target, region)
            client.meta.events.register("before-call.ec2", self._before_call)
            return client

        monkeypatch.setattr(Target, "ec2_client", hooked)

    def fail(self, operation: str, code: str, times: int) -> "Injector":
        self.faults[operation] = [code, times]
        return self

    def _before_call(self, model, **_):
        self.calls[model.name] = self.calls.get(model.name, 0) + 1
        fault = self.faults.get(model.name)
        if not fault or fault[1] <= 0:
            return None
        fault[1] -= 1
        error = {"Error": {"Code": fault[0], "Message": f"injected {fault[0]}"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}
        return SimpleNamespace(status_code=400, headers={}), error


# ---------------------------------------------------------------- tests
def test_down_leaves_nothing_behind(lab, ec2):
    made = make_lab(ec2, lab)
    report = down(lab)
    assert nothing(left_of(ec2, lab))
    removed = " ".join(report.removed)
    for instance in made["instances"].values():
        assert instance in removed
    for volume in made["volumes"]:
        assert volume in removed
    assert made["group"] in removed
    assert f"key pair {lab}" in report.removed


def test_down_prints_what_it_does(lab, ec2):
    make_lab(ec2, lab)
    lines: list[str] = []
    down(lab, lines=lines)
    text = "\n".join(lines)
    assert "terminating 3 instances" in text
    assert "security group" in text and "key pair" in text


def test_down_works_without_local_state(lab, ec2, tmp_path, capsys):
    """The CLI path: a config file and nothing under .lab/ (the folder was deleted)."""
    from lab.cli import main

    make_lab(ec2, lab)
    config = tmp_path / "lab.yaml"
    config.write_text(f"name: {lab}\nregion: {REGION}\nnodes:\n  controller: {{role: controller, type: t3.large}}\n")
    assert not LabPaths.for_lab(lab).root.exists()
    assert main(["--config", str(config), "--target", "aws", "down"]) == 0
    assert nothing(left_of(ec2, lab))
    assert "removed 9 resources" in capsys.readouterr().out


def test_down_spares_other_labs_and_untagged_resources(lab, ec2):
    make_lab(ec2, lab)
    other = make_lab(ec2, "other-lab", object_nodes=1)
    untagged = ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    loose = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    stranger = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1,
                                 TagSpecifications=_spec("volume", _tags("other-lab", "spare")))["VolumeId"]
    down(lab)
    assert nothing(left_of(ec2, lab))
    kept = left_of(ec2, "other-lab")
    assert sorted(kept["instances"]) == sorted(other["instances"].values())
    assert set(kept["volumes"]) == set(other["volumes"]) | {stranger}
    assert kept["security_groups"] == [other["group"]] and kept["key_pairs"] == ["other-lab"]
    state = ec2.describe_instances(InstanceIds=[untagged])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    assert ec2.describe_volumes(VolumeIds=[loose])["Volumes"][0]["State"] == "available"


def test_security_group_dependency_violation_is_retried_until_down_converges(lab, ec2, monkeypatch):
    injector = Injector(monkeypatch).fail("DeleteSecurityGroup", "DependencyViolation", times=3)
    make_lab(ec2, lab)
    down(lab)
    assert injector.calls["DeleteSecurityGroup"] == 4
    assert nothing(left_of(ec2, lab))


def test_throttling_on_every_call_is_retried_until_down_converges(lab, ec2, monkeypatch):
    injector = Injector(monkeypatch)
    for operation in ("DescribeInstances", "DescribeVolumes", "DescribeSecurityGroups", "DescribeKeyPairs",
                      "TerminateInstances", "DeleteVolume", "DeleteSecurityGroup", "DeleteKeyPair"):
        injector.fail(operation, "RequestLimitExceeded", times=1)
    make_lab(ec2, lab)
    down(lab)
    assert injector.calls["TerminateInstances"] == 2
    assert nothing(left_of(ec2, lab))


def test_volume_still_in_use_is_retried(lab, ec2, monkeypatch):
    injector = Injector(monkeypatch).fail("DeleteVolume", "VolumeInUse", times=2)
    made = make_lab(ec2, lab, object_nodes=1)
    down(lab)
    assert injector.calls["DeleteVolume"] == len(made["volumes"]) + 2
    assert nothing(left_of(ec2, lab))


class DeletedByOthers:
    """Someone else deletes the resource right before `down` asks EC2 to: EC2 answers NotFound."""

    def __init__(self, monkeypatch, ec2, operation: str, delete):
        self.done: list[str] = []
        original = Target.ec2_client

        def hooked(target, region):
            client = original(target, region)
            client.meta.events.register(f"before-parameter-build.ec2.{operation}", self._before_call)
            return client

        self.ec2, self.delete, self.lock = ec2, delete, threading.Lock()
        monkeypatch.setattr(Target, "ec2_client", hooked)

    def _before_call(self, params, **_):
        with self.lock:  # deletes run in parallel: only the first is pre-empted
            if not self.done:
                self.done.append(self.delete(self.ec2, params))
        return None  # the lab's own call then reaches moto


def test_volume_that_vanishes_before_its_delete_does_not_fail_down(lab, ec2, monkeypatch):
    made = make_lab(ec2, lab, object_nodes=1)

    def delete_volume(client, params):
        client.delete_volume(VolumeId=params["VolumeId"])
        return params["VolumeId"]

    other = DeletedByOthers(monkeypatch, ec2, "DeleteVolume", delete_volume)
    report = down(lab)
    assert len(other.done) == 1 and other.done[0] in made["volumes"]
    assert nothing(left_of(ec2, lab))
    assert not any(other.done[0] in line for line in report.removed)  # not claimed as deleted by down


def test_security_group_that_vanishes_before_its_delete_does_not_fail_down(lab, ec2, monkeypatch):
    made = make_lab(ec2, lab, object_nodes=1)

    def delete_group(client, params):
        client.delete_security_group(GroupId=params["GroupId"])
        return params["GroupId"]

    other = DeletedByOthers(monkeypatch, ec2, "DeleteSecurityGroup", delete_group)
    down(lab)
    assert other.done == [made["group"]]
    assert nothing(left_of(ec2, lab))


def test_second_down_removes_nothing(lab, ec2):
    make_lab(ec2, lab)
    down(lab)
    lines: list[str] = []
    assert down(lab, lines=lines).removed == []
    assert any("nothing" in line for line in lines)


def test_detached_tagged_volume_is_deleted(lab, ec2):
    spare = ec2.create_volume(AvailabilityZone=f"{REGION}b", Size=5,
                              TagSpecifications=_spec("volume", _tags(lab, "object9", "object")))["VolumeId"]
    report = down(lab)
    assert any(spare in line for line in report.removed)
    assert nothing(left_of(ec2, lab))


def test_volumes_deleted_with_their_instances_are_reported(lab, ec2):
    made = make_lab(ec2, lab, object_nodes=1)
    instance = made["instances"]["object1"]
    ec2.modify_instance_attribute(InstanceId=instance, BlockDeviceMappings=[
        {"DeviceName": device, "Ebs": {"DeleteOnTermination": True}} for device in ("/dev/sdf", "/dev/sdg")])
    report = down(lab)
    assert all(any(volume in line for line in report.removed) for volume in made["volumes"])
    assert nothing(left_of(ec2, lab))


def test_down_fails_loudly_when_a_volume_survives(lab, ec2, monkeypatch):
    """A delete that EC2 acknowledged but did not carry out must not pass silently."""
    made = make_lab(ec2, lab, object_nodes=1)
    original = Target.ec2_client

    def acknowledging_but_ignoring(target, region):
        client = original(target, region)
        client.meta.events.register(
            "before-call.ec2.DeleteVolume",
            lambda **_: (SimpleNamespace(status_code=200, headers={}), {"Return": True}))
        return client

    monkeypatch.setattr(Target, "ec2_client", acknowledging_but_ignoring)
    with pytest.raises(CloudError) as failure:
        down(lab)
    assert made["volumes"][0] in str(failure.value)
    assert "lab down" in str(failure.value)
