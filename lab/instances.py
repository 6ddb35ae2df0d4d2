"""The lab's instances: which image, launching the missing ones in parallel, waiting for them.

One RunInstances per node (each carries its own tags), all sent at once, so launching
50 nodes costs about what launching 3 does.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from lab.config import LabSpec
from lab.ec2 import with_retry
from lab.images import Image
from lab.network import Subnet
from labcore import tags as tag
from labcore.errors import CloudError
from labcore.tags import lab_tags, tag_spec

POLL_SECONDS = 5.0
RUNNING_TIMEOUT_SECONDS = 600.0
MAX_PARALLEL_CALLS = 32


def launch(ec2, spec: LabSpec, nodes: list[str], image: Image, subnet: Subnet, group_id: str) -> dict[str, str]:
    """Start every node in nodes at once; node -> instance id."""
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(nodes))) as pool:
        ids = list(pool.map(lambda node: _run_one(ec2, spec, node, image, subnet, group_id), nodes))
    return dict(zip(nodes, ids))


def _run_one(ec2, spec: LabSpec, node: str, image: Image, subnet: Subnet, group_id: str) -> str:
    node_spec = spec.nodes[node]
    tags = lab_tags(spec.name, node, node_spec.role, extra={**spec.tags, tag.SSH_USER: spec.ssh_user})
    root_tags = lab_tags(spec.name, node, node_spec.role, extra={**spec.tags, tag.VOLUME: tag.ROOT_VOLUME})
    # The same token on every retry: if a throttled-looking answer hid a launch, EC2 does not launch twice.
    answer = with_retry(
        ec2.run_instances, ClientToken=uuid.uuid4().hex, ImageId=image.image_id, InstanceType=node_spec.type,
        MinCount=1, MaxCount=1, KeyName=spec.name, SubnetId=subnet.subnet_id, SecurityGroupIds=[group_id],
        BlockDeviceMappings=[{"DeviceName": image.root_device, "Ebs": {
            "VolumeSize": node_spec.root_volume_gb or spec.root_volume_gb, "VolumeType": spec.volume_type,
            "DeleteOnTermination": True}}],
        TagSpecifications=[tag_spec("instance", tags), tag_spec("volume", root_tags)])
    return answer["Instances"][0]["InstanceId"]


def wait_running(ec2, instance_ids: list[str], progress) -> None:
    """One DescribeInstances per round for all of them, until every one is running."""
    deadline = time.monotonic() + RUNNING_TIMEOUT_SECONDS
    while instance_ids:
        reservations = with_retry(ec2.describe_instances, InstanceIds=instance_ids, retry_not_found=True)["Reservations"]
        states = {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}
        bad = sorted(i for i, s in states.items() if s not in ("pending", "running"))
        if bad:
            raise CloudError(f"instances stopped or terminated while starting: {', '.join(bad)}; "
                             f"run `lab down` then `lab up`")
        waiting = [i for i in instance_ids if states.get(i) != "running"]
        if not waiting:
            progress(f"{len(instance_ids)} instances running")
            return
        if time.monotonic() > deadline:
            raise CloudError(f"instances not running after {RUNNING_TIMEOUT_SECONDS:.0f} s: {', '.join(waiting)}; "
                             f"run `lab up` again")
        time.sleep(POLL_SECONDS)
