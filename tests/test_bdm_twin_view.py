"""The twin plugs a volume made by RunInstances into its body like one attached by AttachVolume.

Only twin/desired.py's pure reading of the API's answers (moto here): no daemon, no container.
"""

from __future__ import annotations

import pytest
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    Answers,
    by_node,
    ec2,
    lab_instances,
    moto_images,
    refuse,
    run_up,
    spec_with,
    tags,
    with_fewer_volumes,
)

from labcore.errors import CloudError
from twin.desired import desired_bodies


def _bodies(ec2) -> dict[str, object]:
    bodies = desired_bodies(ec2.describe_instances(), ec2.describe_volumes(), ec2.describe_security_groups(),
                            ec2.describe_key_pairs(IncludePublicKey=True), ec2.describe_subnets())
    return {b.hostname: b for b in bodies}


def _swift_by_device(ec2, node: str) -> list[tuple[str, str, int]]:
    instance = by_node(lab_instances(ec2))[node]["InstanceId"]
    found = [(v["Attachments"][0]["Device"], v["VolumeId"], v["Size"]) for v in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}])["Volumes"]
        if tags(v).get("lab:volume") != "root"]
    return sorted(found)


def test_volumes_launched_with_their_instance_are_plugged_in_device_order_root_left_out(ec2):
    run_up(spec_with(text=with_fewer_volumes(nodes=("object2",))))  # object2's sdc is attached later
    run_up(spec_with())
    bodies = _bodies(ec2)
    assert [v.size_gb for v in bodies["controller"].volumes] == []
    for node in ("object1", "object2"):
        plugged = [(v.attach_device, v.volume_id, v.size_gb, v.nvme_index) for v in bodies[node].volumes]
        assert plugged == [(d, vid, size, n) for n, (d, vid, size) in enumerate(_swift_by_device(ec2, node), 1)]
        assert [p[0] for p in plugged] == ["/dev/sdf", "/dev/sdg"]


def test_volumes_not_tagged_yet_are_plugged_and_the_untagged_root_is_not(ec2, monkeypatch):
    Answers(monkeypatch, "CreateTags", lambda params: refuse("UnauthorizedOperation", "CreateTags"))
    with pytest.raises(CloudError):
        run_up(spec_with())  # stopped between the launch and the tagging
    assert not any("lab:volume" in tags(v) for v in ec2.describe_volumes(
        Filters=[{"Name": "tag:lab:node", "Values": ["object1"]}])["Volumes"])
    plugged = [(v.attach_device, v.size_gb) for v in _bodies(ec2)["object1"].volumes]
    assert plugged == [("/dev/sdf", 10), ("/dev/sdg", 10)]
