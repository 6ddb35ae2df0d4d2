"""Where the lab's new nodes go: the availability zones that offer every instance type it uses.

EC2 does not offer every instance type in every zone, and a zone can run out of capacity
for a type (InsufficientInstanceCapacity). Before launching anything the lab asks
DescribeInstanceTypeOfferings once for its types and keeps the zones of the default VPC
that offer all of them, in zone order: new nodes go to the first, and a node refused for
capacity tries the next (lab/instances.py), so a lab may span subnets of its VPC. With
`subnet:` set, that subnet is the only place. Deciding is pure (candidate_subnets,
check_configured_subnet, check_where_it_runs) and tested without EC2; plan_placement calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab import network
from lab.config import LabSpec
from lab.discovery import LabResources
from lab.ec2 import with_retry
from lab.network import Subnet
from labcore.errors import CloudStateError, LabError


@dataclass(frozen=True)
class Placement:
    vpc_id: str
    subnets: tuple[Subnet, ...]  # where new nodes may go, first choice first (one per zone)
    known: dict[str, Subnet] = field(default_factory=dict)  # subnet id -> subnet, for every place the lab may be

    @property
    def first(self) -> Subnet:
        return self.subnets[0]

    def order_for(self, az: str | None) -> list[Subnet]:
        """The subnets a new node tries in turn; a node whose volumes already sit in az starts there."""
        return ([s for s in self.subnets if s.az == az]) + [s for s in self.subnets if s.az != az]

    def cidr_of(self, subnet_id: str) -> str:
        return self.known[subnet_id].cidr


def types_of(spec: LabSpec) -> dict[str, list[str]]:
    """instance type -> the nodes of that type, in config order."""
    types: dict[str, list[str]] = {}
    for node, node_spec in spec.nodes.items():
        types.setdefault(node_spec.type, []).append(node)
    return types


def zone_offerings(ec2, types: list[str]) -> dict[str, set[str]]:
    """instance type -> the availability zones of the region that offer it (one request)."""
    pages = with_retry(lambda: list(ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": sorted(types)}])))
    offered: dict[str, set[str]] = {t: set() for t in types}
    for page in pages:
        for offering in page["InstanceTypeOfferings"]:
            offered.setdefault(offering["InstanceType"], set()).add(offering["Location"])
    return offered


def _offerings_hint(region: str, types: list[str]) -> str:
    return (f"`aws ec2 describe-instance-type-offerings --region {region} --location-type availability-zone "
            f"--filters Name=instance-type,Values={','.join(types)}` shows where they are")


def _where(offered: dict[str, set[str]], types: list[str]) -> str:
    return "; ".join(f"{t} in {', '.join(sorted(offered[t])) or 'no zone'}" for t in types)


def _not_offered(spec: LabSpec, offered: dict[str, set[str]]) -> None:
    """A LabError naming the first type no zone of the region offers."""
    for instance_type, nodes in types_of(spec).items():
        if not offered.get(instance_type):
            raise LabError(f"nodes.{nodes[0]}.type: {instance_type} is not offered in any availability zone of "
                           f"{spec.region}; pick another instance type ({_offerings_hint(spec.region, [instance_type])})")


def candidate_subnets(spec: LabSpec, subnets: list[Subnet], offered: dict[str, set[str]]) -> list[Subnet]:
    """The default subnets whose zone offers every type of the lab, in zone order; a LabError when none does."""
    _not_offered(spec, offered)
    types = list(types_of(spec))
    good = [s for s in subnets if all(s.az in offered[t] for t in types)]
    if not good:
        raise LabError(f"no availability zone of {spec.region} with a default subnet offers all of the lab's "
                       f"instance types ({_where(offered, types)}; default subnets in "
                       f"{', '.join(s.az for s in subnets)}); pick types offered in one zone, or set `subnet:`")
    return good


def check_configured_subnet(spec: LabSpec, subnet: Subnet, offered: dict[str, set[str]]) -> None:
    """`subnet:` pins the lab to one zone: every type of the lab must be offered there."""
    _not_offered(spec, offered)
    for instance_type, nodes in types_of(spec).items():
        if subnet.az not in offered[instance_type]:
            raise LabError(f"nodes.{nodes[0]}.type: {instance_type} is not offered in {subnet.az}, the zone of "
                           f"`subnet:` {subnet.subnet_id} (it is in {', '.join(sorted(offered[instance_type]))}); "
                           f"set `subnet:` to a subnet of one of those zones or pick another instance type")


def check_where_it_runs(spec: LabSpec, placement: Placement, found: LabResources) -> None:
    """The lab's instances must be where `up` itself could have put them.

    Without `subnet:` that is any default subnet of the default VPC (capacity may have moved
    a node to another zone); with it, any subnet of that subnet's VPC (the security group
    belongs to one VPC).
    """
    for instance in found.instances:
        where = placement.known.get(instance.subnet_id or "")
        if spec.subnet is None and where is None:
            raise CloudStateError(f"lab {spec.name} already runs in {instance.subnet_id} ({instance.node}), which is "
                                  f"not a default subnet of the default VPC; set `subnet:` to it or run `lab down` "
                                  f"first")
        if spec.subnet is not None and where is not None and where.vpc_id != placement.vpc_id:
            raise CloudStateError(f"lab {spec.name} already runs in {instance.subnet_id} of {where.vpc_id} "
                                  f"({instance.node}), not in {placement.vpc_id} of `subnet:` {spec.subnet}; set "
                                  f"`subnet:` to a subnet of {where.vpc_id} or run `lab down` first")


def plan_placement(ec2, spec: LabSpec, found: LabResources) -> Placement:
    """Where new nodes of the lab may go, checked against what already runs; before anything is created."""
    offered = zone_offerings(ec2, list(types_of(spec)))
    if spec.subnet:
        elsewhere = sorted({i.subnet_id for i in found.instances if i.subnet_id and i.subnet_id != spec.subnet})
        known = network.subnets_by_id(ec2, spec, [spec.subnet, *elsewhere])
        configured = known[spec.subnet]
        check_configured_subnet(spec, configured, offered)
        placement = Placement(configured.vpc_id, (configured,), known)
    else:
        defaults = network.default_subnets(ec2, spec.region)
        placement = Placement(defaults[0].vpc_id, tuple(candidate_subnets(spec, defaults, offered)),
                              {s.subnet_id: s for s in defaults})
    check_where_it_runs(spec, placement, found)
    return placement
