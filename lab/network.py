"""Where the lab lives (VPC, subnet) and where its SSH comes from (the caller's address)."""

from __future__ import annotations

import ipaddress
import urllib.request
from dataclasses import dataclass

from lab.config import LabSpec
from lab.ec2 import with_retry
from labcore.errors import LabError

CHECKIP_URL = "https://checkip.amazonaws.com"


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    cidr: str
    az: str
    vpc_id: str

    @property
    def id(self) -> str:
        return self.subnet_id


def choose_subnet(ec2, spec: LabSpec) -> Subnet:
    """The configured subnet, else the default VPC's subnet in the first availability zone."""
    if spec.subnet:
        raw = with_retry(ec2.describe_subnets, SubnetIds=[spec.subnet])["Subnets"][0]
    else:
        vpcs = with_retry(ec2.describe_vpcs, Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise LabError(f"region {spec.region} has no default VPC: set `subnet:` in the config to a subnet id")
        subnets = with_retry(ec2.describe_subnets, Filters=[
            {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        if not subnets:
            raise LabError(f"the default VPC of {spec.region} has no default subnet: set `subnet:` in the config")
        raw = min(subnets, key=lambda s: s["AvailabilityZone"])
    return Subnet(raw["SubnetId"], raw["CidrBlock"], raw["AvailabilityZone"], raw["VpcId"])


def ssh_sources(spec: LabSpec, subnet_cidr: str, resolve_caller) -> list[str]:
    """allow_from with `auto` replaced by the caller's address."""
    return sorted({resolve_caller(subnet_cidr) if c == "auto" else c for c in spec.ssh.allow_from})


def detect_caller_cidr(subnet_cidr: str) -> str:
    """Your public IPv4 as AWS sees it (TARGET=aws only), as a /32."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=5) as answer:
            address = ipaddress.IPv4Address(answer.read().decode().strip())
    except (OSError, ValueError) as exc:
        raise LabError(f"could not find your public IPv4 address ({exc}); set ssh.allow_from in the config "
                       f"to your address/32") from None
    if address.is_private:
        raise LabError(f"{CHECKIP_URL} answered a private address {address}; set ssh.allow_from in the config "
                       f"to your public address/32")
    return f"{address}/32"
