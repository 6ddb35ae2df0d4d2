"""One instance per node and one volume per device, whatever raced: ClientToken, a look again by tag,
the security group another run made a moment ago.

moto ignores ClientToken, so a RunInstances that launched but answered an error is played by
a hook that launches the same request through a plain client and then answers InternalError:
the lab's retry launches again, and only its look again can notice.
"""

from __future__ import annotations

import pytest
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    CALLER,
    CONFIG,
    REGION,
    Answers,
    by_node,
    ec2,
    lab_instances,
    moto_images,
    refuse,
    run_up,
    spec_with,
    swift_volumes,
    tags,
    with_fewer_volumes,
)

from lab import cli, instances, teardown
from lab.images import Image
from lab.network import Subnet
from lab.target import AwsTarget
from labcore.errors import CloudStateError


def _node(params: dict) -> str:
    """The lab:node tag of a RunInstances or CreateVolume request."""
    return next(t["Value"] for spec in params.get("TagSpecifications", []) for t in spec["Tags"]
                if t["Key"] == "lab:node")


def _tag(params: dict, key: str) -> str | None:
    return next((t["Value"] for spec in params.get("TagSpecifications", []) for t in spec["Tags"]
                 if t["Key"] == key), None)


def test_client_token_is_one_per_node_request_and_new_for_each_incarnation_of_the_lab():
    spec = spec_with()
    image, subnet = Image("ami-0b10000000000531", "/dev/sda1"), Subnet("subnet-a", "172.31.0.0/20", "a", "vpc-1")
    token = instances.run_request(spec, "object1", image, subnet, "sg-1")["ClientToken"]
    assert token == instances.run_request(spec_with(), "object1", image, subnet, "sg-1")["ClientToken"]
    assert len(token) <= 64  # EC2's limit
    others = {instances.run_request(spec, "object2", image, subnet, "sg-1")["ClientToken"],
              instances.run_request(spec, "object1", image, subnet, "sg-2")["ClientToken"],  # after `lab down`
              instances.run_request(spec, "object1", image, Subnet("subnet-b", "172.31.16.0/20", "b", "vpc-1"),
                                    "sg-1")["ClientToken"]}
    assert token not in others and len(others) == 3


def test_a_retried_launch_sends_the_same_token_and_a_new_lab_of_the_same_name_new_ones(ec2, monkeypatch):
    throttled = set()

    def decide(params):
        if _node(params) not in throttled:
            throttled.add(_node(params))
            return refuse("RequestLimitExceeded", "RunInstances")
        return None

    runs = Answers(monkeypatch, "RunInstances", decide)
    run_up(spec_with())
    first = {}
    for params in runs.calls:
        first.setdefault(_node(params), set()).add(params["ClientToken"])
    assert {node: len(tokens) for node, tokens in first.items()} == {"controller": 1, "object1": 1, "object2": 1}
    assert len(runs.calls) == 6  # each node: the throttled attempt and its retry

    teardown.down("rocky-lab", REGION, AwsTarget(), progress=lambda line: None)
    runs.calls.clear()
    run_up(spec_with())
    second = {_node(params): params["ClientToken"] for params in runs.calls}
    assert not set(second.values()) & set().union(*first.values())


def test_a_launch_that_went_through_but_answered_an_error_leaves_one_instance_per_node(ec2, monkeypatch):
    lost = {}

    def decide(params):
        if _node(params) == "object1" and not lost:
            lost["id"] = runs.side.run_instances(**params)["Instances"][0]["InstanceId"]
            return refuse("InternalError", "RunInstances", status=500)
        return None

    runs = Answers(monkeypatch, "RunInstances", decide)
    lines = []
    report = run_up(spec_with(), lines)
    object1 = [c for c in runs.calls if _node(c) == "object1"]
    assert len(object1) == 2
    live = by_node(lab_instances(ec2))
    assert len(lab_instances(ec2)) == 3
    both = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:lab:node", "Values": ["object1"]}])[
        "Reservations"] for i in r["Instances"]]
    older, newer = sorted(both, key=lambda i: (i["LaunchTime"], i["InstanceId"]))
    assert live["object1"]["InstanceId"] == older["InstanceId"]
    assert newer["State"]["Name"] in ("shutting-down", "terminated")
    assert (f"node object1 has two instances: keeping {older['InstanceId']} (the older), "
            f"terminating {newer['InstanceId']}") in lines
    assert sum(c.startswith("instance ") for c in report.created) == 3
    vols = swift_volumes(ec2)
    assert len(vols) == 4 and all(v["Attachments"][0]["InstanceId"] == live[tags(v)["lab:node"]]["InstanceId"]
                                  for v in vols)
    assert run_up(spec_with()).created == []


def test_a_volume_create_that_went_through_but_answered_an_error_leaves_one_volume(ec2, monkeypatch):
    run_up(spec_with(text=with_fewer_volumes(nodes=("object2",))))  # sdc is then added to a running node
    lost = {}

    def decide(params):
        if (_node(params), _tag(params, "lab:volume")) == ("object2", "sdc") and not lost:
            lost["id"] = creates.side.create_volume(**params)["VolumeId"]
            return refuse("InternalError", "CreateVolume", status=500)
        return None

    creates = Answers(monkeypatch, "CreateVolume", decide)
    lines = []
    run_up(spec_with(), lines)
    vols = swift_volumes(ec2)
    assert len(vols) == 4
    sdc = [v for v in vols if (tags(v)["lab:node"], tags(v)["lab:volume"]) == ("object2", "sdc")]
    assert len(sdc) == 1 and sdc[0]["State"] == "in-use"
    assert any(line.startswith("volume object2/sdc exists twice: keeping ") for line in lines)


def _launch_as(ec2, node: str, role: str) -> str:
    group = ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])[
        "SecurityGroups"][0]["GroupId"]
    return ec2.run_instances(ImageId="ami-0b10000000000531", MinCount=1, MaxCount=1, SecurityGroupIds=[group],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": node},
                                 {"Key": "lab:role", "Value": role}]}])["Instances"][0]["InstanceId"]


def test_a_duplicate_left_by_an_earlier_run_is_terminated_by_the_next_up(ec2):
    run_up(spec_with())
    kept = by_node(lab_instances(ec2))["object2"]["InstanceId"]
    extra = _launch_as(ec2, "object2", "object")
    lines = []
    assert run_up(spec_with(), lines).created == []
    assert by_node(lab_instances(ec2))["object2"]["InstanceId"] == kept and len(lab_instances(ec2)) == 3
    # Launched in the same second maybe (LaunchTime counts seconds): the one with the volumes stays.
    assert f"node object2 has two instances: keeping {kept} (it holds the node's volumes), terminating {extra}" in lines


def test_a_duplicate_that_holds_volumes_is_left_for_a_person_to_decide(ec2):
    run_up(spec_with())
    extra = _launch_as(ec2, "object1", "object")
    zone = ec2.describe_instances(InstanceIds=[extra])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"]
    volume = ec2.create_volume(AvailabilityZone=zone, Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": [
        {"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": "object1"},
        {"Key": "lab:volume", "Value": "sdd"}]}])["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=extra, Device="/dev/sdh")
    with pytest.raises(CloudStateError, match="node object1 has two instances that both hold volumes") as refused:
        run_up(spec_with())
    assert f"{extra}: {volume}" in str(refused.value)
    states = {i["InstanceId"]: i["State"]["Name"] for i in lab_instances(ec2)}
    assert states[extra] == "running" and len(states) == 4


def test_a_token_whose_instance_is_gone_is_asked_again_with_a_token_of_its_own(ec2, monkeypatch):
    gone = {}

    def decide(params):
        if _node(params) == "controller" and not gone:
            gone["id"] = runs.side.run_instances(ImageId=params["ImageId"], MinCount=1, MaxCount=1)[
                "Instances"][0]["InstanceId"]
            runs.side.terminate_instances(InstanceIds=[gone["id"]])
            # What EC2 answers a token it saw a day ago: that launch's instance, terminated since.
            return {"Instances": [{"InstanceId": gone["id"], "State": {"Code": 48, "Name": "terminated"}}],
                    "ResponseMetadata": {"HTTPStatusCode": 200}}
        return None

    runs = Answers(monkeypatch, "RunInstances", decide)
    run_up(spec_with())
    controller = [c["ClientToken"] for c in runs.calls if _node(c) == "controller"]
    assert len(controller) == 2 and controller[0] != controller[1]
    assert by_node(lab_instances(ec2))["controller"]["InstanceId"] != gone["id"]
    assert len(lab_instances(ec2)) == 3


def test_a_security_group_made_meanwhile_by_another_up_of_the_lab_is_used(ec2, monkeypatch):
    made = {}

    def decide(params):
        if not made:
            made["id"] = groups.side.create_security_group(**params)["GroupId"]
        # None: the lab's own create then reaches moto, which answers InvalidGroup.Duplicate

    groups = Answers(monkeypatch, "CreateSecurityGroup", decide)
    lines = []
    report = run_up(spec_with(), lines)
    lab_groups = ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])[
        "SecurityGroups"]
    assert [g["GroupId"] for g in lab_groups] == [made["id"]]
    assert f"security group {made['id']} was just created by another `lab up` of rocky-lab: using it" in lines
    assert not any(c.startswith("security group") for c in report.created)
    assert {g["GroupId"] for i in lab_instances(ec2) for g in i["SecurityGroups"]} == {made["id"]}
    assert any(p["IpProtocol"] == "icmp" for p in lab_groups[0]["IpPermissions"])


def test_a_group_of_the_labs_name_without_its_tag_is_exit_1_and_left_untouched(ec2, tmp_path, capsys):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    theirs = ec2.create_security_group(GroupName="rocky-lab", Description="someone's", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=theirs, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    before = ec2.describe_security_groups(GroupIds=[theirs])["SecurityGroups"][0]
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("allow_from: [auto]", f"allow_from: [{CALLER}]"))
    assert cli.main(["up", "--no-ssh", "--config", str(config), "--target", "aws"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f"a security group named rocky-lab already exists in {vpc} ({theirs}) without the tag "
            f"lab:name=rocky-lab: it is not this lab's and is left alone; rename that group or pick another lab "
            f"name") in err
    assert ec2.describe_security_groups(GroupIds=[theirs])["SecurityGroups"][0] == before
    assert lab_instances(ec2) == []
