"""`lab up` on moto: what it creates, that it converges, that it retries only what is transient."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lab import ec2 as lab_ec2, instances, provision, volumes
from lab.config import parse_config
from lab.errors import CloudError, LabError
from lab.paths import LabPaths
from lab.target import UBUNTU_1804_NAME, UBUNTU_OWNER, Target

REGION = "ap-northeast-2"
CALLER = "198.51.100.7/32"
CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()


@pytest.fixture
def ec2(monkeypatch):
    monkeypatch.setattr(lab_ec2, "RETRY_WAIT_SECONDS", 0.0)
    monkeypatch.setattr(lab_ec2, "RETRY_MAX_WAIT_SECONDS", 0.0)
    monkeypatch.setattr(instances, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(volumes, "POLL_SECONDS", 0.0)
    # moto registers images under the test account, never Canonical's: look them up there.
    monkeypatch.setattr(Target, "image_owners", property(lambda self: ["self"]))
    with mock_aws():
        client = boto3.client("ec2", region_name=REGION)
        yield client


def register_bionic(ec2) -> str:
    """moto knows no Ubuntu 18.04 image: register one under the name the lookup asks for."""
    base = ec2.describe_images(Owners=[UBUNTU_OWNER])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name=UBUNTU_1804_NAME.replace("*", "20240101"))["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    return image


def spec_with(extra: str = "", text: str = CONFIG):
    return parse_config(text + extra, "configs/lab.yaml")


def run_up(spec, lines=None):
    paths = LabPaths.for_lab(spec.name).ensure()
    return provision.up(spec, Target("aws"), paths, resolve_caller=lambda cidr: CALLER,
                        progress=(lines if lines is not None else []).append)


def by_tag(items, key="lab:node"):
    return {t["Value"]: i for i in items for t in i.get("Tags", []) if t["Key"] == key}


def lab_instances(ec2):
    return [i for r in ec2.describe_instances(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])["Reservations"]
            for i in r["Instances"] if i["State"]["Name"] != "terminated"]


def lab_group(ec2):
    return ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])["SecurityGroups"][0]


def test_security_group_allows_all_icmp_from_itself_and_nothing_from_everywhere(ec2):
    register_bionic(ec2)
    run_up(spec_with())
    group = lab_group(ec2)
    icmp = [p for p in group["IpPermissions"] if p["IpProtocol"] == "icmp"]
    assert len(icmp) == 1 and icmp[0]["FromPort"] == -1 and icmp[0]["ToPort"] == -1
    assert [g["GroupId"] for g in icmp[0]["UserIdGroupPairs"]] == [group["GroupId"]]
    assert not icmp[0]["IpRanges"]
    for perm in group["IpPermissions"]:
        assert all(r["CidrIp"] != "0.0.0.0/0" for r in perm.get("IpRanges", []))
    ssh = [p for p in group["IpPermissions"] if p.get("FromPort") == 22]
    assert [r["CidrIp"] for r in ssh[0]["IpRanges"]] == [CALLER] and not ssh[0]["UserIdGroupPairs"]
    ports = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group["IpPermissions"]}
    for expected in [("tcp", 3306, 3306), ("tcp", 5672, 5672), ("tcp", 11211, 11211), ("tcp", 2379, 2380),
                     ("tcp", 5000, 5000), ("tcp", 8080, 8080), ("tcp", 6200, 6202), ("tcp", 873, 873),
                     ("udp", 123, 123)]:
        assert expected in ports
    assert ("tcp", 35357, 35357) not in ports


def test_instances_have_the_configured_types_and_tags(ec2):
    register_bionic(ec2)
    run_up(spec_with())
    nodes = by_tag(lab_instances(ec2))
    assert set(nodes) == {"controller", "object1", "object2"}
    assert nodes["controller"]["InstanceType"] == "t3.large"
    assert nodes["object1"]["InstanceType"] == "t3.medium"
    tags = {t["Key"]: t["Value"] for t in nodes["object1"]["Tags"]}
    assert tags["lab:name"] == "rocky-lab" and tags["lab:role"] == "object" and tags["Name"] == "rocky-lab-object1"
    assert {i["KeyName"] for i in nodes.values()} == {"rocky-lab"}


def test_volumes_are_attached_to_their_node_in_its_zone_and_go_with_it(ec2):
    register_bionic(ec2)
    report = run_up(spec_with())
    nodes = by_tag(lab_instances(ec2))
    vols = ec2.describe_volumes(Filters=[{"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])["Volumes"]
    assert len(vols) == 4
    for v in vols:
        tags = {t["Key"]: t["Value"] for t in v["Tags"]}
        node = nodes[tags["lab:node"]]
        attachment = v["Attachments"][0]
        assert attachment["InstanceId"] == node["InstanceId"]
        assert attachment["Device"] == {"sdb": "/dev/sdf", "sdc": "/dev/sdg"}[tags["lab:volume"]]
        assert v["AvailabilityZone"] == node["Placement"]["AvailabilityZone"]
    for node in nodes.values():
        mappings = ec2.describe_instances(InstanceIds=[node["InstanceId"]])["Reservations"][0]["Instances"][0][
            "BlockDeviceMappings"]
        assert all(m["Ebs"]["DeleteOnTermination"] for m in mappings)
        assert len(mappings) == 1 + len([v for v in vols if v["Attachments"][0]["InstanceId"] == node["InstanceId"]])
    record = report.inventory.node("object2")
    assert [(v.name, v.device) for v in record.volumes] == [("sdb", "/dev/sdf"), ("sdc", "/dev/sdg")]


def test_key_is_private_and_only_its_public_half_is_in_ec2(ec2):
    register_bionic(ec2)
    run_up(spec_with())
    key_file = LabPaths.for_lab("rocky-lab").key_file
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    remote = ec2.describe_key_pairs(KeyNames=["rocky-lab"], IncludePublicKey=True)["KeyPairs"][0]
    assert remote["PublicKey"].startswith("ssh-ed25519 ")
    assert "PRIVATE" not in remote["PublicKey"]


def test_second_up_creates_nothing(ec2):
    register_bionic(ec2)
    first = run_up(spec_with())
    assert len(first.created) == 1 + 1 + 3 + 4
    second = run_up(spec_with())
    assert second.created == []
    assert len(lab_instances(ec2)) == 3
    assert second.inventory == first.inventory


def test_up_stopped_halfway_is_finished_by_the_next_up(ec2, monkeypatch):
    register_bionic(ec2)
    real_attach = volumes.attach

    def broken(*a, **k):
        raise CloudError("simulated: the network went away")

    monkeypatch.setattr(volumes, "attach", broken)
    with pytest.raises(CloudError):
        run_up(spec_with())
    monkeypatch.setattr(volumes, "attach", real_attach)
    report = run_up(spec_with())
    assert not any(c.startswith("instance") for c in report.created)
    assert len(lab_instances(ec2)) == 3
    vols = ec2.describe_volumes(Filters=[{"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])["Volumes"]
    assert len(vols) == 4 and all(v["State"] == "in-use" for v in vols)


class Faults:
    """The first `times` calls of an operation fail with `code` (botocore before-call hook)."""

    def __init__(self, monkeypatch, operation: str, code: str, times: int, when=lambda params: True):
        self.left, self.seen, self.when = times, 0, when
        real = Target.ec2_client

        def client(target, region):
            c = real(target, region)
            c.meta.events.register(f"before-call.ec2.{operation}", self.hook)
            return c

        monkeypatch.setattr(Target, "ec2_client", client)
        self.code, self.operation = code, operation

    def hook(self, params=None, **kwargs):
        self.seen += 1
        if self.left > 0 and self.when(params or {}):
            self.left -= 1
            raise ClientError({"Error": {"Code": self.code, "Message": "injected"}}, self.operation)


def _by_id(params):
    """EC2 answers NotFound right after a create only to a lookup by id."""
    return "InstanceId.1" in str(params.get("body", ""))


@pytest.mark.parametrize("operation,code,when", [("DescribeInstances", "RequestLimitExceeded", None),
                                                 ("RunInstances", "Throttling", None),
                                                 ("AttachVolume", "IncorrectState", None),
                                                 ("DescribeInstances", "InvalidInstanceID.NotFound", _by_id)])
def test_transient_errors_are_retried_and_the_lab_converges(ec2, monkeypatch, operation, code, when):
    register_bionic(ec2)
    faults = Faults(monkeypatch, operation, code, times=3, when=when or (lambda params: True))
    report = run_up(spec_with())
    assert faults.left == 0
    assert len(report.inventory.nodes) == 3 and len(lab_instances(ec2)) == 3


def test_a_real_error_fails_at_once_with_awss_message(ec2, monkeypatch):
    register_bionic(ec2)
    faults = Faults(monkeypatch, "CreateSecurityGroup", "UnauthorizedOperation", times=99)
    with pytest.raises(CloudError, match="UnauthorizedOperation"):
        run_up(spec_with())
    assert faults.seen == 1
    assert lab_instances(ec2) == []


def test_retries_that_run_out_say_so(ec2, monkeypatch):
    register_bionic(ec2)
    Faults(monkeypatch, "DescribeVpcs", "RequestLimitExceeded", times=99)
    with pytest.raises(CloudError, match="kept answering RequestLimitExceeded .* after 8 attempts"):
        run_up(spec_with())


def test_missing_ubuntu_image_says_to_set_ami(ec2):
    with pytest.raises(LabError, match="set `ami:`"):
        run_up(spec_with())
    assert lab_instances(ec2) == []


def test_inventory_records_what_ssh_and_install_need(ec2):
    register_bionic(ec2)
    report = run_up(spec_with())
    inv = report.inventory
    assert inv.os == "ubuntu-18.04" and inv.target == "aws" and inv.subnet_cidr.startswith("172.31.")
    for node in inv.nodes:
        assert node.ssh_user == "ubuntu" and node.private_ip and node.ssh_host == node.public_ip
        assert node.az == f"{REGION}a"
    saved = LabPaths.for_lab("rocky-lab")
    assert saved.inventory.exists()
    config = saved.ssh_config.read_text()
    assert "Host controller" in config and f"IdentityFile {saved.key_file.resolve()}" in config


def test_explicit_allow_from_needs_no_lookup(ec2):
    register_bionic(ec2)
    spec = spec_with(text=CONFIG.replace("allow_from: [auto]", "allow_from: [203.0.113.0/28]"))
    paths = LabPaths.for_lab(spec.name).ensure()

    def no_lookup(cidr):
        raise AssertionError("looked up the caller")

    provision.up(spec, Target("aws"), paths, resolve_caller=no_lookup, progress=lambda m: None)
    ssh = [p for p in lab_group(ec2)["IpPermissions"] if p.get("FromPort") == 22][0]
    assert [r["CidrIp"] for r in ssh["IpRanges"]] == ["203.0.113.0/28"]
