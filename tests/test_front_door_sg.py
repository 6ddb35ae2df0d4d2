"""`lab up` on moto opens the front door (tcp 443) to https.allow_from only, and records where it is.

The door is the one new opening to the outside: every other rule the group had before stays
as it was. The inventory carries the controller's public DNS name (EC2's PublicDnsName), the
name labcore/front_door.py puts in the URLs and the certificate; on the twin there is none.
"""

from __future__ import annotations

from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    CALLER,
    CONFIG,
    ec2,
    lab_instances,
    moto_images,
    run_up,
    spec_with,
)

from lab import provision, security_group
from lab.config import parse_config
from lab.target import AwsTarget
from labcore.front_door import front_door
from labcore.inventory import END_LINE, load_inventory, save_inventory
from labcore.paths import LabPaths

TEMPAUTH = "auth: tempauth\n"


def lab_group(ec2, lab: str = "rocky-lab") -> dict:
    return ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": [lab]}])["SecurityGroups"][0]


def from_outside(group: dict) -> dict[int, list[str]]:
    """port -> the address ranges it is open to: every rule not from the group itself."""
    return {p["FromPort"]: sorted(r["CidrIp"] for r in p["IpRanges"])
            for p in group["IpPermissions"] if p.get("IpRanges") or p.get("Ipv6Ranges")}


def test_the_front_door_is_open_to_the_ssh_sources_and_is_the_only_new_ingress(ec2):
    run_up(spec_with())
    group = lab_group(ec2)
    assert from_outside(group) == {22: [CALLER], 443: [CALLER]}
    door = [p for p in group["IpPermissions"] if p.get("FromPort") == 443]
    assert door[0]["IpProtocol"] == "tcp" and door[0]["ToPort"] == 443 and not door[0]["UserIdGroupPairs"]
    have = security_group._flatten(group["IpPermissions"])
    before = security_group._flatten(security_group.desired_ingress(group["GroupId"], [CALLER]))  # the rules of today
    assert have - before == {("tcp", 443, 443, "cidr", CALLER)} and before <= have


def test_https_allow_from_narrows_and_widens_the_door_and_up_reconciles_it(ec2):
    lines = []
    run_up(spec_with("https: {allow_from: [203.0.113.0/28]}\n"))
    assert from_outside(lab_group(ec2)) == {22: [CALLER], 443: ["203.0.113.0/28"]}

    run_up(spec_with("https: {allow_from: [203.0.113.0/24, 192.0.2.0/24]}\n"), lines)
    assert from_outside(lab_group(ec2)) == {22: [CALLER], 443: ["192.0.2.0/24", "203.0.113.0/24"]}
    assert any("2 ingress rules added" in line for line in lines) and any("1 ingress rules removed" in line
                                                                          for line in lines)
    run_up(spec_with())  # the key removed: back to the SSH sources
    assert from_outside(lab_group(ec2)) == {22: [CALLER], 443: [CALLER]}


def test_a_lab_made_before_the_door_gets_its_rule_at_the_next_up(ec2):
    run_up(spec_with())
    group = lab_group(ec2)["GroupId"]
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": CALLER}]}])
    lines = []
    run_up(spec_with(), lines)
    assert from_outside(lab_group(ec2)) == {22: [CALLER], 443: [CALLER]}
    assert any(f"security group {group}: 1 ingress rules added" in line for line in lines)
    assert not any("removed" in line for line in lines)


def test_a_tempauth_lab_opens_no_door_and_says_so(ec2):
    lines = []
    run_up(spec_with(TEMPAUTH + "https: {allow_from: [203.0.113.0/28]}\n"), lines)
    assert from_outside(lab_group(ec2)) == {22: [CALLER]}
    assert any("no HTTPS front door (auth: tempauth)" in line for line in lines)


def test_auto_is_looked_up_once_for_ssh_and_https(ec2):
    asked = []

    def caller(cidr: str) -> str:
        asked.append(cidr)
        return "192.0.2.77/32"

    spec = parse_config(CONFIG)  # the shipped config: ssh: {allow_from: [auto]}, no https
    lines = []
    report = provision.up(spec, AwsTarget(), LabPaths.for_lab("rocky-lab").ensure(), progress=lines.append,
                          resolve_caller=caller)
    assert len(asked) == 1 and report.ssh_sources == report.https_sources == ["192.0.2.77/32"]
    assert from_outside(lab_group(ec2)) == {22: ["192.0.2.77/32"], 443: ["192.0.2.77/32"]}
    assert any("SSH allowed from 192.0.2.77/32; HTTPS (443, the front door) from 192.0.2.77/32" in line
               for line in lines)


def test_the_inventory_holds_the_public_dns_name_and_the_door_uses_it(ec2):
    report = run_up(spec_with())
    by_id = {i["InstanceId"]: i for i in lab_instances(ec2)}
    for node in report.inventory.nodes:
        assert node.public_dns and node.public_dns == by_id[node.instance_id]["PublicDnsName"]
    saved = load_inventory(LabPaths.for_lab("rocky-lab").inventory)
    assert saved.controller.public_dns == report.inventory.controller.public_dns
    door = front_door(saved)
    assert door.host == saved.controller.public_dns and door.names == (saved.controller.public_dns,)
    assert door.addresses == (saved.controller.public_ip,)
    assert door.identity_url == f"https://{saved.controller.public_dns}/identity/v3"


def test_on_the_twin_the_inventory_has_no_public_dns_name(ec2):
    class Twinlike(AwsTarget):
        name = "sim"
        ssh_via_private_ip = True

    report = provision.up(spec_with(), Twinlike(), LabPaths.for_lab("rocky-lab").ensure(), progress=[].append,
                          resolve_caller=lambda cidr: CALLER)
    controller = report.inventory.controller
    assert all(node.public_dns is None for node in report.inventory.nodes)
    assert front_door(report.inventory).host == controller.ssh_host == controller.private_ip


def test_an_inventory_written_before_public_dns_still_loads(ec2):
    report = run_up(spec_with())
    path = LabPaths.for_lab("rocky-lab").inventory
    save_inventory(report.inventory, path)
    text = path.read_text()
    assert "public_dns:" in text
    path.write_text("".join(line for line in text.splitlines(keepends=True) if "public_dns:" not in line))
    assert path.read_text().endswith(END_LINE)
    old = load_inventory(path)
    assert all(node.public_dns is None for node in old.nodes)
    assert front_door(old).host == old.controller.public_ip  # the public address, then
