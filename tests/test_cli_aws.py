"""The CLI end to end against a moto server, reached only through AWS_ENDPOINT_URL as on AWS."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lab import cli, instances, teardown, volumes
from lab.keypair import generate_key
from labcore.paths import LabPaths
from labcore.secrets import ensure_secrets

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def endpoint(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    for module, name in ((instances, "POLL_SECONDS"), (volumes, "POLL_SECONDS"),
                         (teardown, "TERMINATE_POLL_SECONDS"), (teardown, "GONE_POLL_SECONDS")):
        monkeypatch.setattr(module, name, 0.1)
    yield url
    server.stop()


def config_with_image(tmp_path: Path, url: str) -> str:
    ec2 = boto3.client("ec2", region_name="ap-northeast-2", endpoint_url=url)
    base = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    text = (ROOT / "configs" / "lab.yaml").read_text().replace("allow_from: [auto]", "allow_from: [203.0.113.9/32]")
    path = tmp_path / "lab.yaml"
    path.write_text(text + f"\nami: {base}\n")
    return str(path)


def test_up_status_down_through_the_cli(endpoint, tmp_path, capsys):
    config = config_with_image(tmp_path, endpoint)
    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 0
    out = capsys.readouterr().out
    assert "created 9 resources" in out and "--no-ssh" in out
    paths = LabPaths.for_lab("rocky-lab")
    assert paths.inventory.exists() and paths.ssh_config.exists()

    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 0
    assert "nothing to create" in capsys.readouterr().out

    assert cli.main(["status", "--json", "--config", config, "--target", "aws"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert sorted(i["node"] for i in status["instances"]) == ["controller", "object1", "object2"]
    assert len([v for v in status["volumes"] if v["name"] in ("sdb", "sdc")]) == 4

    assert cli.main(["status", "--config", config, "--target", "aws"]) == 0
    table = capsys.readouterr().out
    for node in ("controller", "object1", "object2"):
        assert node in table
    assert "running" in table and "sdb=vol-" in table

    assert cli.main(["down", "--config", config, "--target", "aws"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not paths.inventory.exists() and not paths.key_file.exists()
    assert cli.main(["down", "--config", config, "--target", "aws"]) == 0
    assert "nothing" in capsys.readouterr().out


def config_named(tmp_path: Path, url: str, lab: str) -> str:
    """The default config under another lab name: moto's state outlives each test's server."""
    path = Path(config_with_image(tmp_path, url))
    path.write_text(path.read_text().replace("name: rocky-lab", f"name: {lab}"))
    return str(path)


def _lab_tags(lab: str, node: str, role: str) -> list[dict]:
    tags = {"lab:name": lab, "lab:node": node, "lab:role": role, "Name": f"{lab}-{node}"}
    return [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def test_lab_found_in_another_subnet_is_a_cloud_failure_exit_1(endpoint, tmp_path, capsys):
    config = config_named(tmp_path, endpoint, "moved-lab")
    ec2 = boto3.client("ec2", region_name="ap-northeast-2", endpoint_url=endpoint)
    # Not a default subnet: `up` never puts nodes there (another zone's default subnet is where capacity may move them).
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    elsewhere = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.96.0/20")["Subnet"]["SubnetId"]
    # This checkout made the lab (its key and secrets are here, its key pair is in EC2): only the subnet is wrong.
    paths = LabPaths.for_lab("moved-lab")
    ensure_secrets(paths.ensure(), lambda line: None, hosts_exist=lambda: False)
    ec2.import_key_pair(KeyName="moved-lab", PublicKeyMaterial=generate_key(paths.key_file).encode(),
                        TagSpecifications=[{"ResourceType": "key-pair",
                                            "Tags": [{"Key": "lab:name", "Value": "moved-lab"}]}])
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=elsewhere, KeyName="moved-lab",
                      TagSpecifications=_lab_tags("moved-lab", "controller", "controller"))

    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moved-lab" in err and elsewhere in err
    lab = [{"Name": "tag:lab:name", "Values": ["moved-lab"]}]
    assert ec2.describe_security_groups(Filters=lab)["SecurityGroups"] == []  # nothing was created


def test_lab_volume_attached_to_a_stranger_is_a_cloud_failure_exit_1(endpoint, tmp_path, capsys):
    config = config_named(tmp_path, endpoint, "robbed-lab")
    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 0
    ec2 = boto3.client("ec2", region_name="ap-northeast-2", endpoint_url=endpoint)
    volume = ec2.describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": ["robbed-lab"]},
                                           {"Name": "tag:lab:node", "Values": ["object1"]},
                                           {"Name": "tag:lab:volume", "Values": ["sdb"]}])["Volumes"][0]
    ec2.detach_volume(VolumeId=volume["VolumeId"], InstanceId=volume["Attachments"][0]["InstanceId"],
                      Device=volume["Attachments"][0]["Device"])
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    stranger = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, Placement={
        "AvailabilityZone": volume["AvailabilityZone"]})["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=stranger, Device="/dev/sdf")
    capsys.readouterr()

    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is attached to {stranger}, not to object1" in err
