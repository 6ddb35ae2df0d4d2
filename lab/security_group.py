"""The lab's security group: who may talk to its hosts.

desired_ingress is pure: the whole rule set follows from the group id and the addresses
allowed to SSH and HTTPS, so it is tested without EC2 and reconciled in one authorize and one revoke.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from lab.config import LabSpec
from lab.discovery import LabResources
from lab.ec2 import error_code, with_retry
from lab.ports import HTTPS_PORT, SSH_PORT, ports_for
from labcore import tags as tag
from labcore.errors import CloudError, CloudStateError
from labcore.tags import lab_tags, tag_spec, tags_of


def desired_ingress(group_id: str, ssh_cidrs: list[str], auth: str = "keystone",
                    https_cidrs: list[str] = ()) -> list[dict]:
    """All ICMP and the service ports of the lab's auth mode from the group itself; SSH from the caller
    only; HTTPS (the front door) from https_cidrs only, when there are any (none: a TempAuth lab)."""
    self_ref = [{"GroupId": group_id}]
    rules = [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": self_ref}]
    seen = set()
    for port in ports_for(auth):
        key = (port.protocol, port.from_port, port.to_port)
        if key not in seen:
            seen.add(key)
            rules.append({"IpProtocol": port.protocol, "FromPort": port.from_port, "ToPort": port.to_port,
                          "UserIdGroupPairs": self_ref})
    rules.append({"IpProtocol": "tcp", "FromPort": SSH_PORT, "ToPort": SSH_PORT,
                  "IpRanges": [{"CidrIp": c} for c in sorted(set(ssh_cidrs))]})
    if https_cidrs:
        rules.append({"IpProtocol": "tcp", "FromPort": HTTPS_PORT, "ToPort": HTTPS_PORT,
                      "IpRanges": [{"CidrIp": c} for c in sorted(set(https_cidrs))]})
    return rules


def _flatten(rules: list[dict]) -> set[tuple]:
    """One (protocol, from, to, source) tuple per source: the unit EC2 authorizes and revokes."""
    out = set()
    for r in rules:
        key = (r["IpProtocol"], r.get("FromPort"), r.get("ToPort"))
        out |= {key + ("group", p["GroupId"]) for p in r.get("UserIdGroupPairs", [])}
        out |= {key + ("cidr", c["CidrIp"]) for c in r.get("IpRanges", [])}
        out |= {key + ("cidr6", c["CidrIpv6"]) for c in r.get("Ipv6Ranges", [])}
    return out


def _permissions(flat: set[tuple]) -> list[dict]:
    perms = []
    for proto, low, high, kind, source in sorted(flat, key=str):
        perm = {"IpProtocol": proto}
        if low is not None:
            perm.update(FromPort=low, ToPort=high)
        if kind == "group":
            perm["UserIdGroupPairs"] = [{"GroupId": source}]
        elif kind == "cidr":
            perm["IpRanges"] = [{"CidrIp": source}]
        else:
            perm["Ipv6Ranges"] = [{"CidrIpv6": source}]
        perms.append(perm)
    return perms


def ensure_security_group(ec2, spec: LabSpec, vpc_id: str, ssh_cidrs: list[str], found: LabResources,
                          progress, https_cidrs: list[str] = ()) -> tuple[str, list[str]]:
    """The lab's group in vpc_id with exactly the desired rules; returns (group id, what was created).

    A lab made before the front door existed gets its 443 rule here, at its next `lab up`."""
    created = []
    if found.security_groups:
        group_id = _the_labs_group(spec, vpc_id, found)
    else:
        group_id = with_retry(_create_or_none, ec2, spec, vpc_id)
        if group_id is None:
            group_id = _made_by_another_run(ec2, spec, vpc_id, progress)
        else:
            created.append(f"security group {group_id}")
            progress(f"security group {group_id} created in {vpc_id}")
    current = with_retry(ec2.describe_security_groups, GroupIds=[group_id], retry_not_found=True)["SecurityGroups"][0]
    have = _flatten(current["IpPermissions"])
    want = _flatten(desired_ingress(group_id, ssh_cidrs, spec.auth, https_cidrs))
    if want - have:
        with_retry(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=_permissions(want - have),
                   retry_not_found=True)
        progress(f"security group {group_id}: {len(want - have)} ingress rules added")
    if have - want:
        with_retry(ec2.revoke_security_group_ingress, GroupId=group_id, IpPermissions=_permissions(have - want))
        progress(f"security group {group_id}: {len(have - want)} ingress rules removed")
    return group_id, created


def _the_labs_group(spec: LabSpec, vpc_id: str, found: LabResources) -> str:
    """The lab's group found by tag; it must be in the VPC the lab's subnets are in."""
    for group in found.security_groups:
        if group.vpc_id == vpc_id:
            return group.group_id
    group = found.security_groups[0]
    raise CloudStateError(f"the security group of lab {spec.name} ({group.group_id}) is in {group.vpc_id}, the lab's "
                          f"subnets are in {vpc_id}; set `subnet:` to a subnet of {group.vpc_id} or run `lab down` "
                          f"first")


def _create_or_none(ec2, spec: LabSpec, vpc_id: str) -> str | None:
    """The new group's id; None when a group of that name exists in the VPC (InvalidGroup.Duplicate)."""
    try:
        return ec2.create_security_group(
            GroupName=spec.name, VpcId=vpc_id, Description=f"openstack-ec2-lab {spec.name}",
            TagSpecifications=[tag_spec("security-group", lab_tags(spec.name, extra=spec.resource_tags))])["GroupId"]
    except ClientError as exc:
        if error_code(exc) == "InvalidGroup.Duplicate":
            return None
        raise


def _made_by_another_run(ec2, spec: LabSpec, vpc_id: str, progress) -> str:
    """The group of the lab's name that appeared since discovery: used only if it carries the lab's tag.

    Another `lab up` of the same lab made it a moment ago (tags come with the create, so a
    group of the lab's without its tag is never the lab's); a group of that name without the
    tag belongs to someone else and is never touched.
    """
    groups = with_retry(ec2.describe_security_groups, Filters=[
        {"Name": "group-name", "Values": [spec.name]}, {"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    if not groups:
        raise CloudError(f"EC2 says a security group named {spec.name} exists in {vpc_id} but does not list it; "
                         f"run `lab up` again")
    group = groups[0]
    if tags_of(group).get(tag.NAME) != spec.name:
        raise CloudError(f"a security group named {spec.name} already exists in {vpc_id} ({group['GroupId']}) "
                         f"without the tag {tag.NAME}={spec.name}: it is not this lab's and is left alone; rename "
                         f"that group or pick another lab name (`name:` in the config)")
    progress(f"security group {group['GroupId']} was just created by another `lab up` of {spec.name}: using it")
    return group["GroupId"]
