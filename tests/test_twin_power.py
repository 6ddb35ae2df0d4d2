"""A twin instance's power, as on EC2: RebootInstances reboots its body, and a body that powers
itself off is an instance-initiated shutdown (stop, or terminate with its DeleteOnTermination
volumes). A real daemon and moto server, with the null body layer (no root)."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from twin import client, server, shutdown
from twin.nullbodies import NullBodies
from twin.target import state_dir

REGION = "ap-northeast-2"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz"


def _launch(ec2, node: str, behaviour: str | None = None) -> str:
    image = server.ensure_image(ec2.meta.endpoint_url, REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rocky-lab"]}])["KeyPairs"]:
        ec2.import_key_pair(KeyName="rocky-lab", PublicKeyMaterial=KEY.encode())
    extra = {"InstanceInitiatedShutdownBehavior": behaviour} if behaviour else {}
    tags = [{"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": node}]
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="rocky-lab", SubnetId=subnet["SubnetId"],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **extra,
                             )["Instances"][0]["InstanceId"]


def _swift_volumes(ec2, iid: str) -> tuple[str, str]:
    """Two volumes attached as `lab up` attaches them; only the first marked DeleteOnTermination."""
    az = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    marked, unmarked = (ec2.create_volume(Size=1, AvailabilityZone=az)["VolumeId"] for _ in range(2))
    ec2.attach_volume(VolumeId=marked, InstanceId=iid, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=unmarked, InstanceId=iid, Device="/dev/sdg")
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    return marked, unmarked


def _state(ec2, iid: str) -> str:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _until(predicate, ec2, timeout: float = 20.0) -> bool:
    """Poll predicate; each poll is a client request, which wakes the daemon as any client's does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        ec2.describe_regions()
        time.sleep(0.3)
    return False


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """One null-layer daemon for this module's tests (each start costs moto's first-call load)."""
    home = tmp_path_factory.mktemp("power") / ".lab"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(home))
        url = client.ensure_running(state_dir(), REGION, bodies="null")
        yield url, server.ec2_client(url, REGION), NullBodies(state_dir()), state_dir()
        client.stop(state_dir())


def test_reboot_instances_reboots_the_body_with_the_same_keys_and_address(twin):
    _, ec2, layer, folder = twin
    iid = _launch(ec2, "controller")
    keys = client.wait_for_bodies(ec2, [iid], folder, timeout=20)[iid]
    before = layer.records()[iid]

    ec2.reboot_instances(InstanceIds=[iid])

    assert _until(lambda: layer.records()[iid].boots == 2, ec2), layer.records()[iid]
    after = layer.records()[iid]
    assert after.host_keys == keys and after.body.private_ip == before.body.private_ip
    assert _state(ec2, iid) == "running"


def test_a_body_that_powers_off_with_shutdown_behaviour_terminate_is_terminated_with_its_volumes(twin):
    _, ec2, layer, folder = twin
    iid = _launch(ec2, "object1", behaviour="terminate")
    marked, unmarked = _swift_volumes(ec2, iid)
    client.wait_for_bodies(ec2, [iid], folder, timeout=20)

    layer.end_from_inside(iid, "poweroff")  # `poweroff`, `shutdown -h`, the expiry timer

    assert _until(lambda: _state(ec2, iid) == "terminated", ec2), _state(ec2, iid)
    volumes = {v["VolumeId"]: v["State"] for v in ec2.describe_volumes(VolumeIds=[unmarked])["Volumes"]}
    assert volumes == {unmarked: "available"}  # as on EC2: only DeleteOnTermination volumes go
    assert marked not in {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert _until(lambda: iid not in layer.records(), ec2)


def test_a_body_that_powers_off_with_shutdown_behaviour_stop_is_stopped_and_kept_then_started(twin):
    _, ec2, layer, folder = twin
    iid = _launch(ec2, "object2")  # EC2's default behaviour: stop
    marked, unmarked = _swift_volumes(ec2, iid)
    keys = client.wait_for_bodies(ec2, [iid], folder, timeout=20)[iid]

    layer.end_from_inside(iid, "poweroff")

    assert _until(lambda: _state(ec2, iid) == "stopped", ec2)
    assert _until(lambda: not layer.records()[iid].body.running, ec2)
    assert {v["State"] for v in ec2.describe_volumes(VolumeIds=[marked, unmarked])["Volumes"]} == {"in-use"}
    ec2.start_instances(InstanceIds=[iid])
    assert _until(lambda: layer.records()[iid].body.running, ec2)
    assert layer.records()[iid].host_keys == keys and layer.records()[iid].boots == 2


def test_a_body_that_died_otherwise_leaves_its_instance_running(twin):
    _, ec2, layer, folder = twin
    iid = _launch(ec2, "object3", behaviour="terminate")
    client.wait_for_bodies(ec2, [iid], folder, timeout=20)

    layer.end_from_inside(iid, "died (systemd-nspawn exit 1)")

    assert _until(lambda: not layer.events.exists() or not any(layer.events.iterdir()), ec2)  # taken by a pass
    ec2.describe_regions()
    time.sleep(1.5)  # a pass that would have acted has run by now
    assert _state(ec2, iid) == "running" and layer.records()[iid].boots == 1


@mock_aws
@pytest.mark.parametrize("behaviour, outcome", [(None, "stopped"), ("stop", "stopped"), ("terminate", "terminated")])
def test_instance_initiated_shutdown_follows_the_instances_shutdown_behaviour(behaviour, outcome):
    ec2 = boto3.client("ec2", region_name=REGION)
    extra = {"InstanceInitiatedShutdownBehavior": behaviour} if behaviour else {}
    iid = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, **extra)["Instances"][0]["InstanceId"]
    assert shutdown.instance_initiated_shutdown(ec2, iid) == outcome
    assert _state(ec2, iid) == outcome
