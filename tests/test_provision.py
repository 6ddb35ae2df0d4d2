"""`lab up` on moto: what it creates, that it converges, and the errors it explains.

Retries are in test_provision_retries.py, the network's surprises in test_provision_network.py."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import EndpointConnectionError
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    CALLER,
    CONFIG,
    IMAGES,
    REGION,
    ec2,
    lab_instances,
    moto_images,
    run_up,
    spec_with,
    use_images,
    with_fewer_volumes,
)

from lab import network, provision, security_group, volumes
from lab.ports import SERVICE_PORTS
from lab.sshconfig import render_ssh_config
from lab.target import AwsTarget, Target
from labcore.errors import CloudError, LabError
from labcore.paths import LabPaths


def register_image(ec2, name: str) -> str:
    """An image of this account (moto keeps no architecture for it: only a lookup by id finds it)."""
    return ec2.register_image(Name=name, RootDeviceName="/dev/sda1",
                              BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}])["ImageId"]


def by_tag(items, key="lab:node"):
    return {t["Value"]: i for i in items for t in i.get("Tags", []) if t["Key"] == key}


def lab_group(ec2):
    return ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])["SecurityGroups"][0]


def test_security_group_allows_all_icmp_from_itself_and_nothing_from_everywhere(ec2):
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
    run_up(spec_with())
    nodes = by_tag(lab_instances(ec2))
    assert set(nodes) == {"controller", "object1", "object2"}
    assert nodes["controller"]["InstanceType"] == "t3.large"
    assert nodes["object1"]["InstanceType"] == "t3.medium"
    tags = {t["Key"]: t["Value"] for t in nodes["object1"]["Tags"]}
    assert tags["lab:name"] == "rocky-lab" and tags["lab:role"] == "object" and tags["Name"] == "rocky-lab-object1"
    assert {i["KeyName"] for i in nodes.values()} == {"rocky-lab"}


def test_volumes_are_attached_to_their_node_in_its_zone_and_go_with_it(ec2):
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
    run_up(spec_with())
    key_file = LabPaths.for_lab("rocky-lab").key_file
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    remote = ec2.describe_key_pairs(KeyNames=["rocky-lab"], IncludePublicKey=True)["KeyPairs"][0]
    assert remote["PublicKey"].startswith("ssh-ed25519 ")
    assert "PRIVATE" not in remote["PublicKey"]


def test_second_up_creates_nothing(ec2):
    first = run_up(spec_with())
    assert len(first.created) == 1 + 1 + 3 + 4
    second = run_up(spec_with())
    assert second.created == []
    assert len(lab_instances(ec2)) == 3
    assert second.inventory == first.inventory


def test_up_stopped_halfway_is_finished_by_the_next_up(ec2, monkeypatch):
    """Stopped between adding a volume to running nodes and attaching it."""
    run_up(spec_with(text=with_fewer_volumes()))
    real_attach = volumes.attach

    def broken(*a, **k):
        raise CloudError("simulated: the network went away")

    monkeypatch.setattr(volumes, "attach", broken)
    with pytest.raises(CloudError):
        run_up(spec_with())
    monkeypatch.setattr(volumes, "attach", real_attach)
    report = run_up(spec_with())
    assert report.created == []  # the sdc volumes were made by the run that stopped: attached now
    assert len(lab_instances(ec2)) == 3
    vols = ec2.describe_volumes(Filters=[{"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])["Volumes"]
    assert len(vols) == 4 and all(v["State"] == "in-use" for v in vols)


def test_missing_ubuntu_image_says_to_set_ami(ec2, monkeypatch, tmp_path):
    use_images(monkeypatch, tmp_path / "no-bionic.json", [i for i in IMAGES if "bionic" not in i["name"]])
    with pytest.raises(LabError, match=f"no Ubuntu 18.04 image found in {REGION} .*; set `ami:` in the config"):
        run_up(spec_with())
    assert lab_instances(ec2) == []


def test_inventory_records_what_ssh_and_install_need(ec2):
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
    spec = spec_with(text=CONFIG.replace("allow_from: [auto]", "allow_from: [203.0.113.0/28]"))
    paths = LabPaths.for_lab(spec.name).ensure()

    def no_lookup(cidr):
        raise AssertionError("looked up the caller")

    provision.up(spec, AwsTarget(), paths, resolve_caller=no_lookup, progress=lambda m: None)
    ssh = [p for p in lab_group(ec2)["IpPermissions"] if p.get("FromPort") == 22][0]
    assert [r["CidrIp"] for r in ssh["IpRanges"]] == ["203.0.113.0/28"]


def test_instances_record_their_ssh_user_and_tag_their_root_volume(ec2):
    run_up(spec_with())
    for node, instance in by_tag(lab_instances(ec2)).items():
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["lab:ssh-user"] == "ubuntu"
        root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]},
                                             {"Name": "tag:lab:volume", "Values": ["root"]}])["Volumes"]
        assert len(root) == 1 and {"Key": "lab:node", "Value": node} in root[0]["Tags"]


def test_up_interrupted_while_creating_volumes_is_finished_by_the_next_up(ec2, monkeypatch):
    run_up(spec_with(text=with_fewer_volumes()))
    cut = {"left": 1}

    def network_drops(**kwargs):
        if cut["left"]:
            cut["left"] -= 1
            raise EndpointConnectionError(endpoint_url="https://ec2.ap-northeast-2.amazonaws.com")

    real = Target.ec2_client

    def client(target, region):
        c = real(target, region)
        c.meta.events.register("before-call.ec2.CreateVolume", network_drops)
        return c

    monkeypatch.setattr(Target, "ec2_client", client)
    with pytest.raises(CloudError, match="cannot reach EC2"):
        run_up(spec_with())
    lines = []
    report = run_up(spec_with(), lines)
    assert [c for c in report.created if c.startswith("volume")] and not any(
        c.startswith(("instance", "key pair", "security group")) for c in report.created)
    assert len(lab_instances(ec2)) == 3
    vols = ec2.describe_volumes(Filters=[{"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])["Volumes"]
    assert len(vols) == 4 and all(v["State"] == "in-use" for v in vols)
    assert run_up(spec_with()).created == []


def test_second_up_lists_what_exists(ec2):
    run_up(spec_with())
    again = run_up(spec_with())
    assert again.created == []
    assert sum(e.startswith("instance") for e in again.existing) == 3
    assert sum(e.startswith("volume") for e in again.existing) == 4
    assert "key pair rocky-lab" in again.existing


def test_security_group_drift_is_repaired_by_the_next_up(ec2):
    run_up(spec_with())
    group = lab_group(ec2)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": group}]}])
    lines = []
    run_up(spec_with(), lines)
    perms = lab_group(ec2)["IpPermissions"]
    assert all(r["CidrIp"] != "0.0.0.0/0" for p in perms for r in p.get("IpRanges", []))
    assert any(p["IpProtocol"] == "icmp" for p in perms)
    assert any("1 ingress rules added" in line for line in lines)
    assert any("1 ingress rules removed" in line for line in lines)


def test_desired_ingress_opens_service_ports_to_the_group_and_ssh_to_the_caller_only():
    rules = security_group.desired_ingress("sg-1", ["198.51.100.7/32"])
    from_group = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules if r.get("UserIdGroupPairs")}
    assert ("icmp", -1, -1) in from_group
    assert {(p.protocol, p.from_port, p.to_port) for p in SERVICE_PORTS} <= from_group
    assert all(r["UserIdGroupPairs"] == [{"GroupId": "sg-1"}] for r in rules if r.get("UserIdGroupPairs"))
    by_cidr = [r for r in rules if r.get("IpRanges")]
    assert by_cidr == [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "198.51.100.7/32"}]}]


def test_ssh_config_lets_plain_ssh_reach_every_node(ec2):
    report = run_up(spec_with())
    paths = LabPaths.for_lab("rocky-lab")
    text = paths.ssh_config.read_text()
    assert oct(os.stat(paths.ssh_config).st_mode & 0o777) == "0o600"
    for node in report.inventory.nodes:
        block = text.split(f"Host {node.name}\n")[1].split("\n\n")[0]
        assert f"HostName {node.public_ip}" in block and "User ubuntu" in block
        assert f"UserKnownHostsFile {paths.known_hosts.resolve()}" in block
        assert "IdentitiesOnly yes" in block and f"StrictHostKeyChecking {AwsTarget.strict_host_keys}" in block
    from twin.target import TwinTarget

    assert "StrictHostKeyChecking yes" in render_ssh_config(report.inventory, paths, TwinTarget.strict_host_keys)


def test_pinned_ami_is_used_and_a_wrong_one_is_named(ec2):
    base = register_image(ec2, "my-own-ubuntu")
    run_up(spec_with(f"ami: {base}\n"))
    assert {i["ImageId"] for i in lab_instances(ec2)} == {base}
    with pytest.raises(LabError, match="ami ami-0123456789abcdef0 does not exist .* fix `ami:`"):
        run_up(spec_with("ami: ami-0123456789abcdef0\n", text=CONFIG.replace("name: rocky-lab", "name: other-lab")))


def _config_with_object_nodes(count: int, volumes: str = "{sdb: 10, sdc: 10}") -> str:
    lines = ["name: bench-lab", f"region: {REGION}", "ssh: {user: ubuntu, allow_from: [198.51.100.7/32]}",
             "nodes:", "  controller: {role: controller, type: t3.large}"]
    lines += [f"  object{i}: {{role: object, type: t3.medium, volumes: {volumes}}}" for i in range(1, count + 1)]
    return "\n".join(lines) + "\n"


def _count_calls(monkeypatch, spec) -> dict[str, int]:
    calls: dict[str, int] = {}
    real = Target.ec2_client

    def client(target, region):
        c = real(target, region)
        c.meta.events.register("before-call.ec2.*", lambda model=None, **kw: calls.__setitem__(
            model.name, calls.get(model.name, 0) + 1))
        return c

    monkeypatch.setattr(Target, "ec2_client", client)
    run_up(spec)
    monkeypatch.setattr(Target, "ec2_client", real)
    return calls


@pytest.mark.parametrize("volumes,names", [("{sdb: 10, sdc: 10}", 2), ("{sdb: 10, sdc: 10, sdd: 5, sde: 5}", 4)])
def test_each_extra_node_costs_at_most_two_calls_whatever_its_volume_count(ec2, monkeypatch, volumes, names):
    small = _count_calls(monkeypatch, spec_with(text=_config_with_object_nodes(2, volumes)))
    big = _count_calls(monkeypatch, spec_with(text=_config_with_object_nodes(8, volumes).replace("bench-lab",
                                                                                                  "big-lab")))
    assert small["RunInstances"] == 3 and big["RunInstances"] == 9
    for constant in ("DescribeInstances", "DescribeVolumes", "CreateTags"):
        assert big[constant] == small[constant], constant
    assert big["CreateTags"] == names + 1  # lab:volume for every new node at once: one call per name, one for root
    # The volumes came with their instances: nothing made, attached or marked one by one.
    assert not {"CreateVolume", "AttachVolume", "ModifyInstanceAttribute"} & set(big)
    extra_nodes = 6
    assert sum(big.values()) - sum(small.values()) <= extra_nodes * 2
