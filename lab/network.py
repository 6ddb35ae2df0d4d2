"""Where the lab lives (VPC, subnets) and where its SSH comes from (the caller's address)."""

from __future__ import annotations

import ipaddress
import urllib.request
from dataclasses import dataclass

from botocore.exceptions import ClientError

from lab.config import LabSpec
from lab.ec2 import error_code, with_retry
from labcore.errors import LabError

CHECKIP_URL = "https://checkip.amazonaws.com"


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    cidr: str
    az: str
    vpc_id: str


def _subnet(raw: dict) -> Subnet:
    return Subnet(raw["SubnetId"], raw["CidrBlock"], raw["AvailabilityZone"], raw["VpcId"])


def default_subnets(ec2, region: str) -> list[Subnet]:
    """The default VPC's default subnets (one per availability zone), in zone order."""
    vpcs = with_retry(ec2.describe_vpcs, Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise LabError(f"region {region} has no default VPC: set `subnet:` in the config to a subnet id")
    subnets = with_retry(ec2.describe_subnets, Filters=[
        {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    if not subnets:
        raise LabError(f"the default VPC of {region} has no default subnet: set `subnet:` in the config")
    return sorted((_subnet(s) for s in subnets), key=lambda s: s.az)


def subnets_by_id(ec2, spec: LabSpec, subnet_ids: list[str]) -> dict[str, Subnet]:
    """The configured subnet and the others named (where the lab already runs), in one call.

    A configured subnet EC2 does not know is bad input (exit 2), not a cloud failure.
    """
    raw = with_retry(_describe_subnets, ec2, subnet_ids)
    if raw is None:
        raise LabError(f"subnet: {spec.subnet} does not exist in {spec.region}; fix `subnet:` in the config "
                       f"(`aws ec2 describe-subnets --region {spec.region}` lists them)")
    return {s["SubnetId"]: _subnet(s) for s in raw}


def _describe_subnets(ec2, subnet_ids: list[str]) -> list[dict] | None:
    """None when one of the ids does not exist (EC2 answers an error, not a shorter list)."""
    try:
        return ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    except ClientError as exc:
        if error_code(exc) in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            return None
        raise


def internet_route(tables: list[dict]) -> str | None:
    """The internet gateway the route tables send 0.0.0.0/0 to, None when none does (pure)."""
    for table in tables:
        for route in table.get("Routes", []):
            gateway = route.get("GatewayId", "")
            if (route.get("DestinationCidrBlock") == "0.0.0.0/0" and gateway.startswith("igw-")
                    and route.get("State", "active") == "active"):
                return gateway
    return None


def require_internet_route(ec2, spec: LabSpec, subnet: Subnet) -> None:
    """`subnet:` must send 0.0.0.0/0 to an internet gateway, else SSH from outside never arrives
    (a NAT gateway lets hosts out, never SSH in): refused before anything is launched.

    The subnet's own route table when it has one, else its VPC's main table (as EC2 routes)."""
    tables = with_retry(ec2.describe_route_tables, Filters=[
        {"Name": "association.subnet-id", "Values": [subnet.subnet_id]}])["RouteTables"]
    which = "its route table"
    if not tables:
        tables = with_retry(ec2.describe_route_tables, Filters=[{"Name": "vpc-id", "Values": [subnet.vpc_id]}, {
            "Name": "association.main", "Values": ["true"]}])["RouteTables"]
        which = f"the main route table of {subnet.vpc_id} (the subnet has none of its own)"
    if internet_route(tables) is None:
        named = ", ".join(t["RouteTableId"] for t in tables) or "none found"
        raise LabError(f"subnet: {subnet.subnet_id} has no route to an internet gateway ({which}: {named}, has no "
                       f"active 0.0.0.0/0 -> igw- route), so SSH from your address could never reach its hosts; "
                       f"set `subnet:` to a public subnet, or leave it out for the default VPC")


VPC_DNS = (("enableDnsSupport", "EnableDnsSupport", "--enable-dns-support"),
           ("enableDnsHostnames", "EnableDnsHostnames", "--enable-dns-hostnames"))


def require_vpc_dns(ec2, subnet: Subnet) -> None:
    """A lab with a front door needs the controller's public DNS name: its certificate and the
    catalog's public URLs name it, and inside the VPC it resolves to the private address, so the
    lab's own hosts reach the door without leaving the VPC. A VPC without DNS hostnames gives no
    such name, and the public address would come back through the internet gateway and meet the
    security group (443 only from your address): refused before anything is launched. Default
    VPCs have both settings on; a VPC someone else made is theirs to change, not the lab's."""
    off = [(name, flag) for name, key, flag in VPC_DNS
           if not with_retry(ec2.describe_vpc_attribute, VpcId=subnet.vpc_id, Attribute=name)[key]["Value"]]
    if off:
        fix = "; ".join(f"aws ec2 modify-vpc-attribute --vpc-id {subnet.vpc_id} {flag} '{{\"Value\":true}}'"
                        for _, flag in off)
        raise LabError(f"subnet: {subnet.subnet_id} is in {subnet.vpc_id}, which has {' and '.join(n for n, _ in off)} "
                       f"off, so the controller gets no public DNS name for the front door (HTTPS) to be reached by "
                       f"from inside the lab; turn {'them' if len(off) > 1 else 'it'} on (`{fix}`), "
                       f"or leave `subnet:` out for the default VPC")


def management_network(cidrs: list[str]) -> str:
    """The smallest network holding every given subnet: the subnet itself when there is one.

    chrony's `allow` and the inventory's subnet_cidr read it, so it must cover every node,
    also when capacity spread the lab over subnets of several zones.
    """
    nets = sorted({ipaddress.IPv4Network(c) for c in cidrs})
    if len(nets) == 1:
        return str(nets[0])
    prefix = min(n.prefixlen for n in nets)
    while True:
        candidate = nets[0].supernet(new_prefix=prefix)
        if all(n.subnet_of(candidate) for n in nets):
            return str(candidate)
        prefix -= 1


def ssh_sources(spec: LabSpec, subnet_cidr: str, resolve_caller) -> list[str]:
    """allow_from with `auto` replaced by the caller's address."""
    return sorted({resolve_caller(subnet_cidr) if c == "auto" else c for c in spec.ssh.allow_from})


def https_sources(spec: LabSpec, subnet_cidr: str, resolve_caller) -> list[str]:
    """The front door's sources (https.allow_from, else ssh.allow_from) with `auto` replaced the same
    way; none for a TempAuth lab. Pass the resolver ssh_sources used, cached: one lookup for both."""
    return sorted({resolve_caller(subnet_cidr) if c == "auto" else c for c in spec.https_allow_from})


def detect_caller_cidr(subnet_cidr: str) -> str:
    """Your public IPv4 as AWS sees it (TARGET=aws only), as a /32.

    Asked directly, never through HTTPS_PROXY/HTTP_PROXY: SSH does not go through that proxy,
    so the proxy's address is not the one the security group must allow."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(CHECKIP_URL, timeout=5) as answer:
            address = ipaddress.IPv4Address(answer.read().decode().strip())
    except (OSError, ValueError) as exc:
        raise LabError(f"could not find your public IPv4 address ({exc}); set ssh.allow_from in the config "
                       f"to your address/32") from None
    if address.is_private:
        raise LabError(f"{CHECKIP_URL} answered a private address {address}; set ssh.allow_from in the config "
                       f"to your public address/32")
    return f"{address}/32"
