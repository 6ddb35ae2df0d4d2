"""The lab's instances: launching the missing ones in parallel, where there is capacity, once each.

One RunInstances per node (each carries its own tags and its new Swift volumes as block
device mappings, lab/volumes.py), all sent at once, so launching 50 nodes costs about what
launching 3 does, and a node costs one call whatever its volume count. A node refused with InsufficientInstanceCapacity
tries the next zone of its order (lab/placement.py) until one has room or none is left.

Each request carries a ClientToken that is a digest of the request itself: the lab and the
node (in the tags), the subnet, the image and the security group. A retry of one `up`, and a
second `up` of the same lab running at the same time, send the same token, so EC2 launches
once; a new lab of the same name after `lab down` has a new security group and so a new
token (EC2 remembers a token's answer for a day after the instance is gone). The user data
(lab/userdata.py) is part of the request: it is made from lab:expires-at, which a retry
keeps (lab/expiry.py plan_expiry), so a retry still sends the same token.

What every launch asks for beyond EC2's defaults (launch_options), each a cost or a risk
the README names:
- CPU credits `standard` on burstable types (EC2 launches T3 `unlimited`, billed past the
  baseline); a node with `unlimited: true` in the config asks for `unlimited`.
- IMDSv2 only (HttpTokens=required): a token is needed for the metadata, so an SSRF in a
  service on the host cannot read it with one GET. A hop limit of 1 is enough: only
  processes on the host itself ask (cloud-init, no containers between them and IMDS).
- Encrypted root and Swift volumes (lab/volumes.py), with the account's default EBS key.
- With `subnet:`, a network interface that asks for a public address: a subnet other than a
  default one does not map public IPv4 addresses at launch, and SSH comes from outside.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from lab.config import LabSpec
from lab.ec2 import error_code, with_retry
from lab.expiry import parse_tag
from lab.images import Image
from lab.network import Subnet
from lab.userdata import user_data
from lab.volumes import WantedVolume, launch_mappings
from labcore import tags as tag
from labcore.errors import CloudError
from labcore.tags import lab_tags, tag_spec

POLL_SECONDS = 5.0
RUNNING_TIMEOUT_SECONDS = 600.0
MAX_PARALLEL_CALLS = 32
NO_CAPACITY = "InsufficientInstanceCapacity"
# A token whose instance is already gone (the node was terminated since) is asked again with a
# token derived from that instance: every run derives the same one. Bounded, as a guard.
MAX_TOKEN_RENEWALS = 3


@dataclass(frozen=True)
class Launched:
    node: str
    instance_id: str
    subnet: Subnet
    launch_time: datetime | None


def run_request(spec: LabSpec, node: str, image: Image, subnet: Subnet, group_id: str,
                volumes: Sequence[WantedVolume] = ()) -> dict:
    """The RunInstances request of one node in one subnet, with the node's new Swift volumes,
    its ClientToken included (pure).

    The "volume" TagSpecifications tag every volume of the launch alike. Without Swift
    volumes the root's lab:volume=root is among them; with them, none carries lab:volume and
    `lab up` tags each after the launch (lab/volumes.py tag_names)."""
    node_spec = spec.nodes[node]
    tags = lab_tags(spec.name, node, node_spec.role, extra={**spec.resource_tags, tag.SSH_USER: spec.ssh_user})
    volume_tags = lab_tags(spec.name, node, node_spec.role, extra={
        **spec.resource_tags, **({} if volumes else {tag.VOLUME: tag.ROOT_VOLUME})})
    request = {
        "ImageId": image.image_id, "InstanceType": node_spec.type, "MinCount": 1, "MaxCount": 1,
        "KeyName": spec.name, **network_options(spec, subnet, group_id),
        # A host that powers itself off (its expiry timer, lab/expiry.py) is terminated: it stops costing.
        "InstanceInitiatedShutdownBehavior": "terminate",
        "BlockDeviceMappings": [{"DeviceName": image.root_device, "Ebs": {
            "VolumeSize": node_spec.root_volume_gb or spec.root_volume_gb, "VolumeType": spec.volume_type,
            "DeleteOnTermination": True, "Encrypted": True}}, *launch_mappings(spec, list(volumes))],
        "TagSpecifications": [tag_spec("instance", tags), tag_spec("volume", volume_tags)],
        **launch_options(spec, node)}
    return {**request, "ClientToken": client_token(request)}


def network_options(spec: LabSpec, subnet: Subnet, group_id: str) -> dict:
    """Where the instance's address comes from: a default subnet maps a public IPv4 address by
    itself; `subnet:` is asked for one on the instance's network interface (pure)."""
    if spec.subnet is None:
        return {"SubnetId": subnet.subnet_id, "SecurityGroupIds": [group_id]}
    return {"NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet.subnet_id, "Groups": [group_id],
                                   "AssociatePublicIpAddress": True, "DeleteOnTermination": True}]}


def launch_options(spec: LabSpec, node: str) -> dict:
    """The expiry from the first boot, IMDSv2 only, and CPU credits as the config says (pure)."""
    node_spec = spec.nodes[node]
    options: dict = {"MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled",
                                         "HttpPutResponseHopLimit": 1}}
    if node_spec.burstable:
        options["CreditSpecification"] = {"CpuCredits": "unlimited" if node_spec.unlimited else "standard"}
    data = user_data(parse_tag(spec.resource_tags.get(tag.EXPIRES_AT)))
    if data is not None:
        options["UserData"] = data  # botocore sends it base64-encoded
    return options


def client_token(request: dict) -> str:
    """A digest of the request (64 hex characters: EC2's limit): equal requests, equal tokens."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def launch(ec2, spec: LabSpec, orders: dict[str, list[Subnet]], image: Image, group_id: str,
           progress, volumes: dict[str, list[WantedVolume]] | None = None) -> dict[str, Launched]:
    """Start every node of orders at once, each in the first subnet of its order with capacity,
    with volumes[node] made with it (its volumes go wherever capacity puts it)."""
    if not orders:
        return {}
    nodes, volumes = list(orders), volumes or {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(nodes))) as pool:
        launched = list(pool.map(lambda node: _launch_one(ec2, spec, node, orders[node], image, group_id,
                                                          volumes.get(node, []), progress), nodes))
    return {one.node: one for one in launched}


def _launch_one(ec2, spec: LabSpec, node: str, order: list[Subnet], image: Image, group_id: str,
                volumes: list[WantedVolume], progress) -> Launched:
    instance_type = spec.nodes[node].type
    for index, subnet in enumerate(order):
        instance = _run(ec2, run_request(spec, node, image, subnet, group_id, volumes))
        if instance is not None:
            return Launched(node, instance["InstanceId"], subnet, instance.get("LaunchTime"))
        if index + 1 < len(order):
            progress(f"{node}: no {instance_type} capacity in {subnet.az}; trying {order[index + 1].az}")
    raise CloudError(f"EC2 has no {instance_type} capacity for {node} in {', '.join(s.az for s in order)}; "
                     f"run `lab up` again later (it launches only what is missing), or pick another instance type")


def _run(ec2, request: dict) -> dict | None:
    """The launched instance, or None when the zone has no capacity for the type.

    InvalidGroup.NotFound right after the group was made is retried (retry_not_found).
    """
    for _ in range(MAX_TOKEN_RENEWALS + 1):
        answer = with_retry(_run_or_no_capacity, ec2, request, retry_not_found=True)
        if answer is None:
            return None
        instance = answer["Instances"][0]
        if instance.get("State", {}).get("Name") not in ("terminated", "shutting-down"):
            return instance
        # EC2 answered the token's old instance, gone since: ask again with a token of its own.
        request = {**request, "ClientToken": client_token({"after": instance["InstanceId"], **request})}
    raise CloudError(f"EC2 kept answering terminated instances to RunInstances (last {instance['InstanceId']}); "
                     f"run `lab up` again")


def _run_or_no_capacity(ec2, request: dict) -> dict | None:
    try:
        return ec2.run_instances(**request)
    except ClientError as exc:
        if error_code(exc) == NO_CAPACITY:
            return None
        raise


def wait_running(ec2, instance_ids: list[str], progress) -> None:
    """One DescribeInstances per round for all of them, until every one is running."""
    deadline = time.monotonic() + RUNNING_TIMEOUT_SECONDS
    while instance_ids:
        reservations = with_retry(ec2.describe_instances, InstanceIds=instance_ids, retry_not_found=True)["Reservations"]
        found = [i for r in reservations for i in r["Instances"]]
        states = {i["InstanceId"]: i["State"]["Name"] for i in found}
        bad = sorted(f"{i['InstanceId']}{_reason(i)}" for i in found if i["State"]["Name"] not in ("pending", "running"))
        if bad:
            raise CloudError(f"instances stopped or terminated while starting: {', '.join(bad)}; "
                             f"run `lab up` again (it launches the nodes that are missing)")
        waiting = [i for i in instance_ids if states.get(i) != "running"]
        if not waiting:
            progress(f"{len(instance_ids)} instances running")
            return
        if time.monotonic() > deadline:
            raise CloudError(f"instances not running after {RUNNING_TIMEOUT_SECONDS:.0f} s: {', '.join(waiting)}; "
                             f"run `lab up` again")
        time.sleep(POLL_SECONDS)


def _reason(instance: dict) -> str:
    """EC2's reason for a state change, e.g. " (Client.InternalError: Client error on launch)": an
    encrypted volume whose KMS key the caller may not use ends the launch this way (README, IAM)."""
    reason = instance.get("StateReason") or {}
    text = reason.get("Message") or reason.get("Code") or ""  # EC2's message starts with the code
    if reason.get("Code") == "Client.InternalError":
        text += "; with encrypted volumes, check that you may use the account's default EBS KMS key"
    return f" ({text})" if text else ""
