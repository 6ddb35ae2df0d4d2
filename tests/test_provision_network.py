"""`lab up` on moto where the network is not as expected: no caller address, no default VPC or subnet.

Each is one line saying what to set, with nothing created."""

from __future__ import annotations

import pytest
from hostprog_http import FakeHTTP, closed_port
from launch_fixtures import CONFIG, REGION, ec2, moto_images  # noqa: F401 - ec2 and moto_images are fixtures

from lab import network
from labcore.errors import LabError
from labcore.paths import LabPaths


def _checkip(monkeypatch, body: bytes) -> FakeHTTP:
    """A stand-in for checkip.amazonaws.com on 127.0.0.1 answering body: no test asks the real one."""
    server = FakeHTTP(lambda seen: (200, {}, body))
    monkeypatch.setattr(network, "CHECKIP_URL", server.url + "/")
    return server


def test_caller_address_lookup_failure_says_to_set_allow_from(monkeypatch):
    monkeypatch.setattr(network, "CHECKIP_URL", f"http://127.0.0.1:{closed_port()}/")
    with pytest.raises(LabError, match="could not find your public IPv4 address.*set ssh.allow_from"):
        network.detect_caller_cidr("172.31.0.0/20")
    with _checkip(monkeypatch, b"93.184.216.34\n"):
        assert network.detect_caller_cidr("172.31.0.0/20") == "93.184.216.34/32"
    with _checkip(monkeypatch, b"<html>captive portal"), pytest.raises(LabError, match="set ssh.allow_from"):
        network.detect_caller_cidr("172.31.0.0/20")


def test_caller_address_is_asked_directly_never_through_the_proxy_ssh_does_not_use(monkeypatch):
    """Behind HTTPS_PROXY the proxy's address would be allowed, while SSH leaves by another way."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    with _checkip(monkeypatch, b"93.184.216.34\n") as checkip:
        assert network.detect_caller_cidr("172.31.0.0/20") == "93.184.216.34/32"
    assert [s.path for s in checkip.seen] == ["/"]  # asked directly: a proxy would have been sent the full URL


def _remove_default_vpc(ec2, keep_vpc: bool) -> None:
    """A region where someone deleted the default subnets (and, unless keep_vpc, the default VPC)."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    if keep_vpc:
        return
    for gateway in ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc)


@pytest.mark.parametrize("keep_vpc,message", [
    (False, f"lab up: region {REGION} has no default VPC: set `subnet:` in the config to a subnet id"),
    (True, f"lab up: the default VPC of {REGION} has no default subnet: set `subnet:` in the config"),
])
def test_no_default_vpc_and_no_subnet_exits_2_in_one_line_creating_nothing(ec2, tmp_path, capsys, keep_vpc,
                                                                          message):
    from lab.cli import main

    _remove_default_vpc(ec2, keep_vpc)
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("allow_from: [auto]", "allow_from: [203.0.113.9/32]"))
    instances_before = ec2.describe_instances()["Reservations"]

    assert main(["up", "--no-ssh", "--config", str(config), "--target", "aws"]) == 2

    assert capsys.readouterr().err == message + "\n"
    assert ec2.describe_instances()["Reservations"] == instances_before
    assert ec2.describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": ["rocky-lab"]}])["Volumes"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"] * len(
        ec2.describe_vpcs()["Vpcs"])
    assert not LabPaths.for_lab("rocky-lab").key_file.exists()
