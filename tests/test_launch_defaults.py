"""What every RunInstances asks for beyond EC2's defaults, on moto (issue 20): the expiry as user data
from the first boot, IMDSv2 only, CPU credits `standard`, encrypted volumes, and with `subnet:` a
public address on the network interface of a subnet that routes to an internet gateway."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

import pytest
import yaml
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    CALLER,
    CONFIG,
    Answers,
    by_node,
    ec2,
    lab_instances,
    moto_images,
    run_up,
    spec_with,
    subnet_of_zone,
    tags,
    with_fewer_volumes,
    with_internet_route,
)

from lab import cli, instances, provision
from lab.commands.lifetime import cost_line
from lab.expiry import parse_tag, plan_expiry
from lab.images import Image
from lab.network import Subnet
from lab.target import AwsTarget
from labcore.paths import LabPaths

LAB = [{"Name": "tag:lab:name", "Values": ["rocky-lab"]}]


def _power_off_at(ec2, instance_id: str) -> datetime | None:
    """When the instance's user data powers it off, read back from EC2 as cloud-init would get it."""
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"].get("Value")
    if not value:
        return None
    document = yaml.safe_load(base64.b64decode(value).decode())
    (script,) = document["bootcmd"]
    end = re.search(r"left=\$\(\( (\d+) - \$\(date \+%s\) \)\)", script).group(1)
    return datetime.fromtimestamp(int(end), timezone.utc)


def _runs(monkeypatch) -> Answers:
    """Every RunInstances the lab sends, as sent (let through to moto)."""
    return Answers(monkeypatch, "RunInstances", lambda params: None)


def _request_of(calls: list[dict], node: str) -> dict:
    return next(c for c in calls for s in c["TagSpecifications"] for t in s["Tags"]
                if t == {"Key": "lab:node", "Value": node})


def test_every_instance_powers_itself_off_at_its_expires_at_tag_from_the_first_boot(ec2):
    run_up(spec_with())
    nodes = by_node(lab_instances(ec2))
    assert set(nodes) == {"controller", "object1", "object2"}
    for instance in nodes.values():
        assert _power_off_at(ec2, instance["InstanceId"]) == parse_tag(tags(instance)["lab:expires-at"])


def test_a_lab_that_never_expires_is_launched_without_user_data(ec2):
    run_up(spec_with(text=CONFIG.replace("expires_after: 8h", "expires_after: never")))
    assert [_power_off_at(ec2, i["InstanceId"]) for i in lab_instances(ec2)] == [None] * 3


def test_the_user_data_keeps_a_retry_of_the_same_up_on_the_same_client_token():
    """The token is a digest of the request, user data included: the time comes from the tag,
    which a second `up` keeps, so the second sends what the first did."""
    image, subnet = Image("ami-0b10000000000531", "/dev/sda1"), Subnet("subnet-a", "172.31.0.0/20", "a", "vpc-1")
    first = plan_expiry(spec_with().expiry, "8h", {})
    again = plan_expiry(spec_with().expiry, "8h", {"sg-1": first.tags()})
    requests = [instances.run_request(spec_with().with_lab_tags(plan.tags()), "object1", image, subnet, "sg-1")
                for plan in (first, again)]
    assert "UserData" in requests[0] and requests[0] == requests[1]
    moved = plan_expiry(spec_with().expiry, "2h", {"sg-1": first.tags()})
    other = instances.run_request(spec_with().with_lab_tags(moved.tags()), "object1", image, subnet, "sg-1")
    assert other["ClientToken"] != requests[0]["ClientToken"]


def test_instances_ask_for_imdsv2_only(ec2):
    run_up(spec_with())
    for instance in lab_instances(ec2):
        options = instance["MetadataOptions"]
        assert (options["HttpTokens"], options["HttpEndpoint"], options["HttpPutResponseHopLimit"]) == \
            ("required", "enabled", 1)


def test_burstable_nodes_launch_with_standard_credits_unless_the_config_says_unlimited(ec2, monkeypatch):
    runs = _runs(monkeypatch)
    text = (CONFIG.replace("controller: {role: controller, type: t3.large}",
                           "controller: {role: controller, type: t3.large, unlimited: true}")
            .replace("object2: {role: object, type: t3.medium,", "object2: {role: object, type: m5.large,"))
    run_up(spec_with(text=text))
    credits = {node: _request_of(runs.calls, node).get("CreditSpecification") for node in ("controller", "object1",
                                                                                             "object2")}
    assert credits == {"controller": {"CpuCredits": "unlimited"}, "object1": {"CpuCredits": "standard"},
                       "object2": None}  # an m5 has no CPU credits


def test_the_cost_line_says_unlimited_credits_are_extra():
    plain = cost_line(spec_with(), AwsTarget())
    unlimited = cost_line(spec_with(text=CONFIG.replace(
        "controller: {role: controller, type: t3.large}",
        "controller: {role: controller, type: t3.large, unlimited: true}")), AwsTarget())
    assert plain.startswith("cost: $0.235/hour") and "credits" not in plain
    assert unlimited == (f"{plain}; plus CPU credits beyond the baseline, billed by use, for controller "
                         f"(unlimited: true in the config)")


def test_unlimited_is_refused_on_a_type_without_cpu_credits(tmp_path, capsys):
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("controller: {role: controller, type: t3.large}",
                                     "controller: {role: controller, type: m5.large, unlimited: true}"))
    assert cli.main(["up", "--dry-run", "--config", str(config), "--target", "aws"]) == 2
    assert capsys.readouterr().err == (f"lab up: {config}: nodes.controller: unlimited is for burstable types "
                                       f"(t2, t3, t3a, t4g), not m5.large\n")


@pytest.mark.parametrize("value", ['"true"', "1", "on-demand"])
def test_unlimited_takes_a_yaml_boolean_only(value):
    from labcore.errors import ConfigError

    with pytest.raises(ConfigError, match="nodes.controller.unlimited: expected"):
        spec_with(text=CONFIG.replace("controller: {role: controller, type: t3.large}",
                                      f"controller: {{role: controller, type: t3.large, unlimited: {value}}}"))


def test_root_and_swift_volumes_are_encrypted_also_one_added_to_a_running_node(ec2):
    run_up(spec_with(text=with_fewer_volumes()))
    run_up(spec_with())  # sdc: CreateVolume in the node's zone, then attached
    volumes = [v for v in ec2.describe_volumes(Filters=LAB)["Volumes"] if v["State"] not in ("deleting", "deleted")]
    assert len(volumes) == 3 + 4
    assert all(v["Encrypted"] for v in volumes)


def test_with_subnet_the_instances_ask_for_a_public_address_on_their_network_interface(ec2, monkeypatch):
    runs = _runs(monkeypatch)
    subnet = subnet_of_zone(ec2, "ap-northeast-2b")
    with_internet_route(ec2)  # the default VPC's, as on AWS
    report = run_up(spec_with(f"subnet: {subnet['SubnetId']}\n"))
    for call in runs.calls:
        assert "SubnetId" not in call and "SecurityGroupIds" not in call
        (interface,) = call["NetworkInterfaces"]
        assert interface["DeviceIndex"] == 0 and interface["SubnetId"] == subnet["SubnetId"]
        assert interface["AssociatePublicIpAddress"] is True and len(interface["Groups"]) == 1
    assert all(n.public_ip and n.ssh_host == n.public_ip for n in report.inventory.nodes)


def test_without_subnet_the_default_subnets_map_public_addresses_themselves(ec2, monkeypatch):
    runs = _runs(monkeypatch)
    run_up(spec_with())
    assert all("SubnetId" in c and "NetworkInterfaces" not in c for c in runs.calls)


def _private_subnet(ec2, own_table: bool) -> str:
    """A subnet of a new VPC: the VPC's main table routes to the internet; with own_table, the subnet's
    own table, which is the one EC2 uses for it, does not."""
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24", AvailabilityZone="ap-northeast-2a")["Subnet"]
    if own_table:
        with_internet_route(ec2, vpc)
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
    return subnet["SubnetId"]


@pytest.mark.parametrize("own_table", [False, True])
def test_a_subnet_without_a_route_to_an_internet_gateway_is_refused_before_anything_is_made(
        ec2, tmp_path, capsys, own_table):
    subnet = _private_subnet(ec2, own_table)
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("allow_from: [auto]", f"allow_from: [{CALLER}]") + f"subnet: {subnet}\n")

    assert cli.main(["up", "--no-ssh", "--config", str(config), "--target", "aws"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lab up: subnet: {subnet} has no route to an internet gateway (")
    assert ("its route table: rtb-" if own_table else "the main route table of vpc-") in err
    assert err.endswith("so SSH from your address could never reach its hosts; set `subnet:` to a public subnet, "
                        "or leave it out for the default VPC\n")
    assert lab_instances(ec2) == [] and ec2.describe_key_pairs()["KeyPairs"] == []
    assert not LabPaths.for_lab("rocky-lab").key_file.exists()


def _public_subnet_of_a_new_vpc(ec2, dns_hostnames: bool) -> str:
    """A public subnet of a VPC made as `aws ec2 create-vpc` makes one: DNS hostnames off unless asked."""
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    with_internet_route(ec2, vpc)
    if dns_hostnames:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    return ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24", AvailabilityZone="ap-northeast-2a")["Subnet"]["SubnetId"]


def test_a_vpc_without_dns_hostnames_is_refused_for_a_front_door_before_anything_is_made(ec2, tmp_path, capsys):
    """Without the controller's public DNS name, the front door's URLs would name its public address,
    which the lab's own hosts reach only through the internet gateway and the security group."""
    subnet = _public_subnet_of_a_new_vpc(ec2, dns_hostnames=False)
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("allow_from: [auto]", f"allow_from: [{CALLER}]") + f"subnet: {subnet}\n")

    assert cli.main(["up", "--no-ssh", "--config", str(config), "--target", "aws"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lab up: subnet: {subnet} is in vpc-")
    assert "which has enableDnsHostnames off, so the controller gets no public DNS name for the front door" in err
    assert re.search(r"`aws ec2 modify-vpc-attribute --vpc-id vpc-\w+ --enable-dns-hostnames '\{\"Value\":true\}'`", err)
    assert lab_instances(ec2) == [] and ec2.describe_key_pairs()["KeyPairs"] == []
    assert {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]} == {"default"}


@pytest.mark.parametrize(("dns_hostnames", "auth"), [(True, ""), (False, "auth: tempauth\n")],
                         ids=["dns-hostnames-on", "tempauth-no-door"])
def test_a_public_subnet_is_taken_with_dns_hostnames_or_without_a_front_door(ec2, dns_hostnames, auth):
    subnet = _public_subnet_of_a_new_vpc(ec2, dns_hostnames)
    report = run_up(spec_with(f"subnet: {subnet}\n{auth}"))
    assert len(lab_instances(ec2)) == 3 and all(n.public_ip for n in report.inventory.nodes)


def test_a_target_that_reaches_its_hosts_privately_needs_no_internet_gateway(ec2):
    """The twin's hosts are reached by their private address: its subnet needs no route out."""

    class Private(AwsTarget):
        ssh_via_private_ip = True

    subnet = _private_subnet(ec2, own_table=False)
    spec = spec_with(f"subnet: {subnet}\n")
    report = provision.up(spec, Private(), LabPaths.for_lab(spec.name).ensure(), resolve_caller=lambda c: CALLER,
                          progress=lambda line: None)
    assert len(report.inventory.nodes) == 3


def test_an_instance_ended_at_launch_is_named_with_ecs_reason_and_the_kms_hint():
    """EC2 ends a launch whose encrypted volume's KMS key the caller may not use, with this reason."""
    from labcore.errors import CloudError

    class Ec2:
        def describe_instances(self, InstanceIds):
            return {"Reservations": [{"Instances": [{"InstanceId": "i-1", "State": {"Name": "terminated"},
                                                     "StateReason": {"Code": "Client.InternalError",
                                                                     "Message": "Client.InternalError: Client error "
                                                                                "on launch"}}]}]}

    with pytest.raises(CloudError) as ended:
        instances.wait_running(Ec2(), ["i-1"], progress=lambda line: None)
    assert str(ended.value) == (
        "instances stopped or terminated while starting: i-1 (Client.InternalError: Client error on launch; with "
        "encrypted volumes, check that you may use the account's default EBS KMS key); run `lab up` again (it "
        "launches the nodes that are missing)")
