"""The twin's desired state: which instances get a body, with which volumes and ingress."""

from __future__ import annotations

from dataclasses import asdict

import boto3
from moto import mock_aws

from twin.desired import desired_bodies, labs_owning, observe
from twin.model import IngressRule, InstanceBody, VolumeBody, body_from_dict

SUBNET = {"SubnetId": "subnet-1", "CidrBlock": "172.31.0.0/20"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz lab"


def instance(iid: str, ip: str, state: str = "running", tags: dict | None = None, groups=("sg-lab",),
             key: str = "rocky-lab", instance_type: str = "t3.medium") -> dict:
    default = {"lab:name": "rocky-lab", "lab:node": iid.removeprefix("i-"), "Name": f"rocky-lab-{iid}"}
    return {"InstanceId": iid, "State": {"Name": state}, "PrivateIpAddress": ip, "SubnetId": "subnet-1",
            "KeyName": key, "RootDeviceName": "/dev/sda1", "InstanceType": instance_type,
            "SecurityGroups": [{"GroupId": g} for g in groups],
            "Tags": [{"Key": k, "Value": v} for k, v in (default if tags is None else tags).items()]}


def volume(vid: str, size: int, iid: str | None, device: str | None, tags: dict | None = None) -> dict:
    attachments = [{"InstanceId": iid, "Device": device, "State": "attached", "VolumeId": vid}] if iid else []
    return {"VolumeId": vid, "Size": size, "Attachments": attachments,
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}


def group(gid: str, *permissions: dict) -> dict:
    return {"GroupId": gid, "IpPermissions": list(permissions)}


def self_ref(gid: str, protocol: str = "icmp", lo: int = -1, hi: int = -1) -> dict:
    return {"IpProtocol": protocol, "FromPort": lo, "ToPort": hi, "UserIdGroupPairs": [{"GroupId": gid}], "IpRanges": []}


def bodies_of(instances: list[dict], volumes=(), groups=(), keys=None) -> dict[str, InstanceBody]:
    keys = [{"KeyName": "rocky-lab", "PublicKey": KEY}] if keys is None else keys
    found = desired_bodies({"Reservations": [{"Instances": instances}]}, {"Volumes": list(volumes)},
                           {"SecurityGroups": list(groups)}, {"KeyPairs": keys}, {"Subnets": [SUBNET]})
    return {b.instance_id: b for b in found}


# ------------------------------------------------------------------ which instances get a body
def test_running_or_pending_lab_instances_get_a_running_body_and_stopped_ones_a_kept_one():
    bodies = bodies_of([
        instance("i-a", "172.31.0.4"),
        instance("i-b", "172.31.0.5", state="pending"),
        instance("i-c", "172.31.0.6", state="stopped"),
        instance("i-s", "172.31.0.10", state="stopping"),
        instance("i-d", "172.31.0.7", state="terminated"),
        instance("i-t", "172.31.0.11", state="shutting-down"),
        instance("i-e", "172.31.0.8", tags={"Name": "not-a-lab"}),
    ])
    assert {i: b.running for i, b in bodies.items()} == {"i-a": True, "i-b": True, "i-c": False, "i-s": False}


def test_body_takes_hostname_user_and_key_from_tags_and_key_pair():
    bodies = bodies_of([
        instance("i-a", "172.31.0.4", tags={"lab:name": "rocky-lab", "lab:node": "controller",
                                            "Name": "rocky-lab-controller", "lab:ssh-user": "admin"}),
        instance("i-b", "172.31.0.5", tags={"lab:name": "rocky-lab", "Name": "rocky-lab-object1"}),
    ])
    a, b = bodies["i-a"], bodies["i-b"]
    assert (a.lab, a.hostname, a.ssh_user, a.public_key) == ("rocky-lab", "controller", "admin", KEY)
    assert (a.private_ip, a.subnet_cidr) == ("172.31.0.4", "172.31.0.0/20")
    assert (b.hostname, b.ssh_user) == ("rocky-lab-object1", "ubuntu")


def test_body_carries_the_instance_type_for_its_cpu_weight():
    without = instance("i-c", "172.31.0.6")
    del without["InstanceType"]
    bodies = bodies_of([instance("i-a", "172.31.0.4", instance_type="t3.large"),
                        instance("i-b", "172.31.0.5", instance_type="t3.medium"), without])
    assert [bodies[i].instance_type for i in ("i-a", "i-b", "i-c")] == ["t3.large", "t3.medium", ""]


def test_a_body_saved_before_instance_types_reads_with_none():
    saved = asdict(bodies_of([instance("i-a", "172.31.0.4", instance_type="t3.large")])["i-a"])
    del saved["instance_type"]
    old = body_from_dict(saved)
    assert old.instance_type == "" and old.hostname == "a" and old.ingress == ()


def test_a_lab_is_left_while_anything_carries_its_tag_but_terminated_instances_do_not_count():
    tagged = [{"Key": "lab:name", "Value": "kept-lab"}]
    owners = labs_owning(
        {"Reservations": [{"Instances": [instance("i-a", "172.31.0.4", state="terminated"),
                                         instance("i-b", "172.31.0.5", state="stopped", tags={"lab:name": "stopped-lab"}),
                                         instance("i-c", "172.31.0.6", tags={"Name": "not-a-lab"})]}]},
        {"SecurityGroups": [{"GroupId": "sg-1", "Tags": tagged}, {"GroupId": "sg-2"}]},
        {"KeyPairs": [{"KeyName": "k", "Tags": [{"Key": "lab:name", "Value": "key-lab"}]}]},
        {"Volumes": []})
    assert owners == {"kept-lab", "stopped-lab", "key-lab"}


def test_instance_with_an_address_outside_its_subnet_gets_no_body():
    assert bodies_of([instance("i-a", "10.0.0.9")]) == {}


# ------------------------------------------------------------------ volumes
def test_attached_volumes_become_nvme_devices_in_attach_device_order():
    bodies = bodies_of([instance("i-a", "172.31.0.4"), instance("i-b", "172.31.0.5")], volumes=[
        volume("vol-root", 20, "i-a", "/dev/sda1"),
        volume("vol-root-tagged", 20, "i-a", "/dev/xvda", tags={"lab:volume": "root"}),
        volume("vol-g", 20, "i-a", "/dev/sdg"),
        volume("vol-f", 10, "i-a", "/dev/sdf"),
        volume("vol-other", 5, "i-b", "/dev/sdf"),
        volume("vol-free", 5, None, None),
    ])
    assert bodies["i-a"].volumes == (VolumeBody("vol-f", 10, 1, "/dev/sdf"), VolumeBody("vol-g", 20, 2, "/dev/sdg"))
    assert bodies["i-b"].volumes == (VolumeBody("vol-other", 5, 1, "/dev/sdf"),)


# ------------------------------------------------------------------ ingress
def test_group_reference_allows_the_private_ips_of_its_running_members():
    bodies = bodies_of([instance("i-a", "172.31.0.4"), instance("i-b", "172.31.0.5"),
                        instance("i-c", "172.31.0.6", state="stopped"),
                        instance("i-x", "172.31.0.9", tags={}, groups=("sg-other",))],
                       groups=[group("sg-lab", self_ref("sg-lab"))])
    assert bodies["i-a"].ingress == (IngressRule("icmp", None, None, ("172.31.0.4/32", "172.31.0.5/32")),)
    assert bodies["i-b"].ingress == bodies["i-a"].ingress


def test_cidr_rules_keep_ports_and_all_protocols_have_none():
    bodies = bodies_of([instance("i-a", "172.31.0.4")], groups=[group(
        "sg-lab",
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "172.31.0.1/32"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-lab"}]},
        {"IpProtocol": "udp", "FromPort": 4789, "ToPort": 4790, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": "sg-empty"}]},
    )])
    assert bodies["i-a"].ingress == (
        IngressRule("all", None, None, ("172.31.0.4/32",)),
        IngressRule("tcp", 22, 22, ("172.31.0.1/32",)),
        IngressRule("udp", 4789, 4790, ("10.0.0.0/8",)),
    )


def test_rules_of_all_the_instance_groups_are_merged():
    bodies = bodies_of([instance("i-a", "172.31.0.4", groups=("sg-1", "sg-2"))], groups=[
        group("sg-1", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}),
        group("sg-2", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "5.6.7.8/32"}]}),
        group("sg-3", {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "9.9.9.9/32"}]}),
    ])
    assert bodies["i-a"].ingress == (IngressRule("tcp", 22, 22, ("1.2.3.4/32", "5.6.7.8/32")),)


# ------------------------------------------------------------------ against moto
@mock_aws
def test_moto_state_with_self_referencing_icmp_rule_becomes_bodies():
    ec2 = boto3.client("ec2", region_name="ap-northeast-2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    gid = ec2.create_security_group(GroupName="rocky-lab", Description="lab", VpcId=subnet["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        self_ref(gid), {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "172.31.0.1/32"}]}])
    ec2.import_key_pair(KeyName="rocky-lab", PublicKeyMaterial=KEY.encode())
    ids = {}
    for node, instance_type in (("controller", "t3.large"), ("object1", "t3.medium")):
        tags = [{"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": node},
                {"Key": "lab:ssh-user", "Value": "ubuntu"}]
        ids[node] = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, KeyName="rocky-lab",
                                      InstanceType=instance_type, SubnetId=subnet["SubnetId"], SecurityGroupIds=[gid],
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
                                      )["Instances"][0]["InstanceId"]
    vol = ec2.create_volume(Size=3, AvailabilityZone=subnet["AvailabilityZone"])["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=ids["object1"], Device="/dev/sdf")

    seen = observe(ec2)
    bodies = {b.hostname: b for b in seen.bodies}

    ips = sorted(f"{b.private_ip}/32" for b in bodies.values())
    assert set(bodies) == {"controller", "object1"}
    assert bodies["controller"].public_key.startswith(KEY.rsplit(" ", 1)[0])
    assert bodies["controller"].subnet_cidr == subnet["CidrBlock"]
    assert bodies["controller"].volumes == ()
    assert (bodies["controller"].instance_type, bodies["object1"].instance_type) == ("t3.large", "t3.medium")
    assert bodies["object1"].volumes == (VolumeBody(vol, 3, 1, "/dev/sdf"),)
    assert IngressRule("icmp", None, None, tuple(ips)) in bodies["object1"].ingress
    assert IngressRule("tcp", 22, 22, ("172.31.0.1/32",)) in bodies["object1"].ingress

    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[self_ref(gid)])
    assert all(r.protocol != "icmp" for b in observe(ec2).bodies for r in b.ingress)
    assert vol in seen.volume_ids and {b.region for b in seen.bodies} == {"ap-northeast-2"}
