"""`lab list`: every lab of the region from its tags, one row each, in a fixed number of API calls."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from lab import cli, expiry
from lab.target import Target
from labcore.tags import lab_tags, tag_spec

REGION = "ap-northeast-2"
CONFIG = """\
name: rocky-lab
region: ap-northeast-2
nodes:
  controller: {role: controller, type: t3.large}
"""


@pytest.fixture
def ec2(monkeypatch):
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture
def calls(monkeypatch):
    """Every EC2 API call the lab's own clients make, by operation."""
    made: list[str] = []
    original = Target.ec2_client

    def counted(self, region):
        client = original(self, region)
        client.meta.events.register("before-call.ec2", lambda model, **_: made.append(model.name))
        return client

    monkeypatch.setattr(Target, "ec2_client", counted)
    return made


def make_lab(ec2, name: str, nodes: int, expires_in: timedelta | None):
    image = ec2.register_image(Name=f"img-{name}", RootDeviceName="/dev/sda1")["ImageId"]
    extra = {"lab:expires-at": expiry.tag_value(expiry.now() + expires_in)} if expires_in is not None else {}
    tags = lab_tags(name, extra=extra)
    for index in range(nodes):
        node_tags = lab_tags(name, f"node{index}", "object", extra=extra)
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
                          TagSpecifications=[tag_spec("instance", node_tags)])
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10, VolumeType="gp3",
                      TagSpecifications=[tag_spec("volume", tags)])
    ec2.create_security_group(GroupName=name, Description=name, TagSpecifications=[tag_spec("security-group", tags)])


def run_list(tmp_path, capsys) -> list[dict]:
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG)
    assert cli.main(["list", "--json", "--config", str(config), "--target", "aws"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_lab_is_one_row_and_foreign_resources_are_not_listed(ec2, tmp_path, capsys):
    make_lab(ec2, "alpha", 3, timedelta(hours=8))
    make_lab(ec2, "beta", 1, timedelta(minutes=-5))
    make_lab(ec2, "gamma", 2, None)
    image = ec2.register_image(Name="theirs", RootDeviceName="/dev/sda1")["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="m5.large")  # a person's, untagged
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=500)
    rows = {r["name"]: r for r in run_list(tmp_path, capsys)}
    assert set(rows) == {"alpha", "beta", "gamma"}
    assert [rows[n]["nodes"] for n in ("alpha", "beta", "gamma")] == [3, 1, 2]
    assert rows["alpha"]["state"] == "running" and not rows["alpha"]["expired"]
    assert rows["beta"]["expired"] and rows["gamma"]["expires_at"] is None and not rows["gamma"]["expired"]
    seoul_medium = 0.052
    assert rows["alpha"]["price_per_hour"] == pytest.approx(3 * seoul_medium + 10 * 0.0912 / 730 + 3 * 0.005)
    assert rows["alpha"]["age"] is not None and rows["alpha"]["volumes"] == 1 and rows["alpha"]["security_groups"] == 1


def test_the_number_of_api_calls_does_not_grow_with_the_number_of_labs(ec2, tmp_path, capsys, calls):
    make_lab(ec2, "alpha", 2, timedelta(hours=1))
    run_list(tmp_path, capsys)
    one_lab = list(calls)
    calls.clear()
    for index in range(6):
        make_lab(ec2, f"lab{index}", 3, timedelta(hours=1))
    assert len(run_list(tmp_path, capsys)) == 7
    assert sorted(calls) == sorted(one_lab)
    assert sorted(set(calls)) == ["DescribeInstances", "DescribeKeyPairs", "DescribeSecurityGroups", "DescribeVolumes"]


def test_the_table_says_which_labs_have_expired(ec2, tmp_path, capsys):
    make_lab(ec2, "old", 1, timedelta(hours=-1))
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG)
    assert cli.main(["list", "--config", str(config), "--target", "aws"]) == 0
    out = capsys.readouterr().out
    assert "old" in out and "expired" in out and "lab down --expired" in out
