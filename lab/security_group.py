"""The lab's security group: who may talk to its hosts.

desired_ingress is pure: the whole rule set follows from the group id and the caller's
address, so it is tested without EC2 and reconciled in one authorize and one revoke.
"""

from __future__ import annotations

from lab.config import LabSpec
from lab.discovery import LabResources
from lab.ec2 import with_retry
from lab.network import Subnet
from lab.ports import SERVICE_PORTS, SSH_PORT
from labcore.tags import lab_tags, tag_spec


def desired_ingress(group_id: str, ssh_cidrs: list[str]) -> list[dict]:
    """All ICMP and the service ports from the group itself; SSH from the caller only."""
    self_ref = [{"GroupId": group_id}]
    rules = [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": self_ref}]
    seen = set()
    for port in SERVICE_PORTS:
        key = (port.protocol, port.from_port, port.to_port)
        if key not in seen:
            seen.add(key)
            rules.append({"IpProtocol": port.protocol, "FromPort": port.from_port, "ToPort": port.to_port,
                          "UserIdGroupPairs": self_ref})
    rules.append({"IpProtocol": "tcp", "FromPort": SSH_PORT, "ToPort": SSH_PORT,
                  "IpRanges": [{"CidrIp": c} for c in sorted(set(ssh_cidrs))]})
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


def ensure_security_group(ec2, spec: LabSpec, subnet: Subnet, ssh_cidrs: list[str], found: LabResources,
                          progress) -> tuple[str, list[str]]:
    """The lab's group with exactly the desired rules; returns (group id, what was created)."""
    created = []
    if found.security_groups:
        group_id = found.security_groups[0].group_id
    else:
        group_id = with_retry(ec2.create_security_group, GroupName=spec.name, VpcId=subnet.vpc_id,
                              Description=f"openstack-ec2-lab {spec.name}",
                              TagSpecifications=[tag_spec("security-group", lab_tags(spec.name, extra=spec.tags))])["GroupId"]
        created.append(f"security group {group_id}")
        progress(f"security group {group_id} created in {subnet.vpc_id}")
    current = with_retry(ec2.describe_security_groups, GroupIds=[group_id], retry_not_found=True)["SecurityGroups"][0]
    have, want = _flatten(current["IpPermissions"]), _flatten(desired_ingress(group_id, ssh_cidrs))
    if want - have:
        with_retry(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=_permissions(want - have),
                   retry_not_found=True)
        progress(f"security group {group_id}: {len(want - have)} ingress rules added")
    if have - want:
        with_retry(ec2.revoke_security_group_ingress, GroupId=group_id, IpPermissions=_permissions(have - want))
        progress(f"security group {group_id}: {len(have - want)} ingress rules removed")
    return group_id, created
