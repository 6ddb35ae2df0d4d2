"""Where `lab up` puts the nodes: a zone that offers every instance type, the next one when capacity runs out.

moto has EC2's per-zone DescribeInstanceTypeOfferings data (in ap-northeast-2: t3 everywhere,
c7i-flex.large only in b and d, p6-b300.48xlarge only in c, f2.6xlarge only in d) but never
runs out of capacity: InsufficientInstanceCapacity is injected per subnet and type.
"""

from __future__ import annotations

import ipaddress

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
    subnet_of_zone,
    swift_volumes,
    tags,
    with_internet_route,
)

from lab import cli
from lab.network import Subnet, management_network
from lab.placement import Placement
from labcore.errors import CloudError, CloudStateError


def _cli_up(tmp_path, text: str, capsys) -> tuple[int, str]:
    config = tmp_path / "lab.yaml"
    config.write_text(text.replace("allow_from: [auto]", f"allow_from: [{CALLER}]"))
    code = cli.main(["up", "--no-ssh", "--config", str(config), "--target", "aws"])
    return code, capsys.readouterr().err


def _nothing_created(ec2) -> bool:
    lab = [{"Name": "tag:lab:name", "Values": ["rocky-lab"]}]
    return (lab_instances(ec2) == [] and ec2.describe_key_pairs(Filters=lab)["KeyPairs"] == []
            and ec2.describe_security_groups(Filters=lab)["SecurityGroups"] == []
            and ec2.describe_volumes(Filters=lab)["Volumes"] == [])


def _zones(ec2) -> dict[str, str]:
    return {node: i["Placement"]["AvailabilityZone"] for node, i in by_node(lab_instances(ec2)).items()}


def _controller_type(text: str, instance_type: str) -> str:
    return text.replace("controller: {role: controller, type: t3.large}",
                        f"controller: {{role: controller, type: {instance_type}}}")


def test_lab_goes_to_the_first_zone_that_offers_all_of_its_types(ec2, monkeypatch):
    seen = Answers(monkeypatch, "DescribeInstanceTypeOfferings", lambda params: None)
    report = run_up(spec_with(text=_controller_type(CONFIG, "c7i-flex.large")))
    assert set(_zones(ec2).values()) == {f"{REGION}b"}
    assert {v["AvailabilityZone"] for v in swift_volumes(ec2)} == {f"{REGION}b"}
    assert report.inventory.subnet_cidr == subnet_of_zone(ec2, f"{REGION}b")["CidrBlock"]
    assert seen.calls == [{"LocationType": "availability-zone",
                           "Filters": [{"Name": "instance-type", "Values": ["c7i-flex.large", "t3.medium"]}]}]


def test_a_type_offered_nowhere_is_exit_2_naming_it_and_creates_nothing(ec2, tmp_path, capsys):
    code, err = _cli_up(tmp_path, _controller_type(CONFIG, "t3.nosuch"), capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"nodes.controller.type: t3.nosuch is not offered in any availability zone of {REGION}" in err
    assert "aws ec2 describe-instance-type-offerings" in err
    assert _nothing_created(ec2)


def test_types_that_no_zone_offers_together_are_exit_2_naming_where_each_is(ec2, tmp_path, capsys):
    text = _controller_type(CONFIG, "p6-b300.48xlarge").replace(
        "object1: {role: object, type: t3.medium", "object1: {role: object, type: f2.6xlarge")
    code, err = _cli_up(tmp_path, text, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"no availability zone of {REGION} with a default subnet offers all of the lab's instance types" in err
    assert f"p6-b300.48xlarge in {REGION}c" in err and f"f2.6xlarge in {REGION}d" in err
    assert _nothing_created(ec2)


def test_a_configured_subnet_whose_zone_lacks_a_type_is_exit_2(ec2, tmp_path, capsys):
    subnet = subnet_of_zone(ec2, f"{REGION}a")["SubnetId"]
    code, err = _cli_up(tmp_path, _controller_type(CONFIG, "c7i-flex.large") + f"subnet: {subnet}\n", capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"nodes.controller.type: c7i-flex.large is not offered in {REGION}a, the zone of `subnet:` {subnet}" in err
    assert f"{REGION}b, {REGION}d" in err
    assert _nothing_created(ec2)


def test_a_configured_subnet_that_does_not_exist_is_exit_2(ec2, tmp_path, capsys):
    code, err = _cli_up(tmp_path, CONFIG + "subnet: subnet-0123456789abcdef0\n", capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"subnet: subnet-0123456789abcdef0 does not exist in {REGION}" in err
    assert _nothing_created(ec2)


def _no_capacity(ec2, monkeypatch, zones: set[str], instance_type: str | None = None) -> Answers:
    subnets = {subnet_of_zone(ec2, z)["SubnetId"] for z in zones}

    def decide(params):
        subnet = params.get("SubnetId") or params.get("NetworkInterfaces", [{}])[0].get("SubnetId")  # `subnet:`
        if subnet in subnets and instance_type in (None, params.get("InstanceType")):
            return refuse("InsufficientInstanceCapacity", "RunInstances")
        return None

    return Answers(monkeypatch, "RunInstances", decide)


def test_no_capacity_in_the_first_zone_moves_the_lab_to_the_next(ec2, monkeypatch):
    _no_capacity(ec2, monkeypatch, {f"{REGION}a"})
    creates = Answers(monkeypatch, "CreateVolume", lambda params: None)
    lines = []
    report = run_up(spec_with(), lines)
    assert set(_zones(ec2).values()) == {f"{REGION}b"}
    # The volumes came with their instances, so they are where capacity put them: nothing to make again.
    assert creates.calls == [] and not any("making them again" in line for line in lines)
    vols = swift_volumes(ec2)
    assert len(vols) == 4 and {v["AvailabilityZone"] for v in vols} == {f"{REGION}b"}
    nodes = by_node(lab_instances(ec2))
    assert all(v["Attachments"][0]["InstanceId"] == nodes[tags(v)["lab:node"]]["InstanceId"] for v in vols)
    assert ec2.describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]},
                                         {"Name": "availability-zone", "Values": [f"{REGION}a"]}])["Volumes"] == []
    assert f"controller: no t3.large capacity in {REGION}a; trying {REGION}b" in lines
    assert report.inventory.subnet_cidr == subnet_of_zone(ec2, f"{REGION}b")["CidrBlock"]
    assert sorted(c.split()[0] for c in report.created).count("volume") == 4
    assert run_up(spec_with()).created == []


def test_capacity_short_for_one_type_spreads_the_lab_over_zones_and_the_next_up_accepts_it(ec2, monkeypatch):
    _no_capacity(ec2, monkeypatch, {f"{REGION}a"}, "t3.medium")
    report = run_up(spec_with())
    assert _zones(ec2) == {"controller": f"{REGION}a", "object1": f"{REGION}b", "object2": f"{REGION}b"}
    assert {v["AvailabilityZone"] for v in swift_volumes(ec2)} == {f"{REGION}b"}
    network = ipaddress.ip_network(report.inventory.subnet_cidr)
    assert report.inventory.subnet_cidr == "172.31.0.0/19"  # a's /20 and b's /20
    assert all(ipaddress.ip_address(n.private_ip) in network for n in report.inventory.nodes)
    again = run_up(spec_with())
    assert again.created == [] and again.inventory == report.inventory


def test_no_capacity_in_any_zone_is_exit_1_naming_the_type_and_the_zones(ec2, monkeypatch, tmp_path, capsys):
    _no_capacity(ec2, monkeypatch, {f"{REGION}{z}" for z in "abcd"}, "t3.medium")
    code, err = _cli_up(tmp_path, CONFIG, capsys)
    assert code == 1 and err.count("\n") == 1
    assert (f"EC2 has no t3.medium capacity for object1 in {REGION}a, {REGION}b, {REGION}c, {REGION}d; "
            f"run `lab up` again later") in err or (
        f"EC2 has no t3.medium capacity for object2 in {REGION}a, {REGION}b, {REGION}c, {REGION}d; "
        f"run `lab up` again later") in err


def test_with_a_configured_subnet_no_capacity_there_is_exit_1_naming_that_zone(ec2, monkeypatch):
    subnet = subnet_of_zone(ec2, f"{REGION}c")["SubnetId"]
    with_internet_route(ec2)
    _no_capacity(ec2, monkeypatch, {f"{REGION}c"}, "t3.large")
    with pytest.raises(CloudError, match=f"no t3.large capacity for controller in {REGION}c; run `lab up` again"):
        run_up(spec_with(f"subnet: {subnet}\n"))
    assert set(_zones(ec2).values()) == {f"{REGION}c"}  # the object nodes launched there; the next up adds it


def test_a_new_node_starts_in_the_zone_its_volumes_already_are(ec2):
    # What an `up` that stopped after making object1's volumes in c (capacity had moved it) leaves.
    for name in ("sdb", "sdc"):
        ec2.create_volume(AvailabilityZone=f"{REGION}c", Size=10, TagSpecifications=[{"ResourceType": "volume", "Tags": [
            {"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": "object1"},
            {"Key": "lab:role", "Value": "object"}, {"Key": "lab:volume", "Value": name}]}])
    run_up(spec_with())
    assert _zones(ec2) == {"controller": f"{REGION}a", "object1": f"{REGION}c", "object2": f"{REGION}a"}
    assert len(swift_volumes(ec2)) == 4


def test_a_lab_in_a_subnet_up_would_never_pick_is_a_cloud_failure_and_creates_nothing(ec2):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    own = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.96.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=own["SubnetId"], TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "lab:name", "Value": "rocky-lab"},
                                              {"Key": "lab:node", "Value": "controller"}]}])
    with pytest.raises(CloudStateError) as refused:
        run_up(spec_with())
    assert refused.value.exit_code == 1
    assert (f"lab rocky-lab already runs in {own['SubnetId']} (controller), which is not a default subnet of the "
            f"default VPC; set `subnet:` to it or run `lab down` first") == str(refused.value)
    assert ec2.describe_key_pairs(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])["KeyPairs"] == []


@pytest.mark.parametrize("cidrs,network", [
    (["172.31.0.0/20"], "172.31.0.0/20"),
    (["172.31.16.0/20", "172.31.0.0/20", "172.31.16.0/20"], "172.31.0.0/19"),
    (["172.31.0.0/20", "172.31.48.0/20"], "172.31.0.0/18"),
    (["10.0.1.0/24", "10.0.2.0/24"], "10.0.0.0/22"),
])
def test_management_network_is_the_smallest_holding_every_nodes_subnet(cidrs, network):
    assert management_network(cidrs) == network


def test_a_new_node_tries_its_volumes_zone_first_then_the_rest_in_order():
    subnets = tuple(Subnet(f"subnet-{z}", f"172.31.{i * 16}.0/20", f"{REGION}{z}", "vpc-1")
                    for i, z in enumerate("abd"))
    placement = Placement("vpc-1", subnets)
    assert [s.az[-1] for s in placement.order_for(None)] == ["a", "b", "d"]
    assert [s.az[-1] for s in placement.order_for(f"{REGION}d")] == ["d", "a", "b"]
    assert [s.az[-1] for s in placement.order_for(f"{REGION}c")] == ["a", "b", "d"]  # c offers not all types


def _other_vpc_subnet(ec2) -> dict:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    with_internet_route(ec2, vpc)  # a public subnet: only the VPC is wrong
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # DNS names, as a default VPC gives
    return ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]


def test_subnet_set_to_another_vpc_than_the_lab_runs_in_is_a_cloud_failure(ec2):
    run_up(spec_with())
    other = _other_vpc_subnet(ec2)
    with pytest.raises(CloudStateError, match=f"already runs in subnet-.* of vpc-.*, not in {other['VpcId']} of "
                                              f"`subnet:` {other['SubnetId']}"):
        run_up(spec_with(f"subnet: {other['SubnetId']}\n"))
    assert len(lab_instances(ec2)) == 3


def test_the_labs_security_group_in_another_vpc_than_its_subnet_is_a_cloud_failure(ec2, monkeypatch):
    _no_capacity(ec2, monkeypatch, {f"{REGION}{z}" for z in "abcd"})  # the group is made, no instance
    with pytest.raises(CloudError, match="no t3"):
        run_up(spec_with())
    other = _other_vpc_subnet(ec2)
    with pytest.raises(CloudStateError, match=f"the security group of lab rocky-lab .* is in vpc-.*, the lab's "
                                              f"subnets are in {other['VpcId']}"):
        run_up(spec_with(f"subnet: {other['SubnetId']}\n"))
    assert lab_instances(ec2) == []
