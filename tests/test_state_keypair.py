"""The lab's EC2 key pair is never replaced, and `lab up` without the lab's key changes nothing (moto in-process)."""

from __future__ import annotations

import functools
import os
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.session
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto import mock_aws
from tenacity import wait_none

from lab import cli, instances, volumes
from lab import ec2 as lab_ec2
from lab.target import Target
from labcore.paths import LabPaths

REGION = "ap-northeast-2"
LAB = "rocky-lab"
CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()
_BOTOCORE = botocore.session.get_session()


@pytest.fixture
def cloud(monkeypatch, tmp_path):
    """moto with one registered image, and the default config pinned to it (no caller lookup, no SSH)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # Every command builds its own clients: one botocore session spares reading the EC2 model each time.
    monkeypatch.setattr(boto3.session, "Session", functools.partial(boto3.session.Session, botocore_session=_BOTOCORE))
    monkeypatch.setattr(lab_ec2, "WAIT", wait_none())
    monkeypatch.setattr(instances, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(volumes, "POLL_SECONDS", 0.0)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        image = ec2.register_image(Name="bionic", RootDeviceName="/dev/sda1", Architecture="x86_64",
                                   VirtualizationType="hvm",
                                   BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}])
        config = tmp_path / "lab.yaml"
        config.write_text(CONFIG.replace("allow_from: [auto]", "allow_from: [203.0.113.9/32]")
                          + f"\nami: {image['ImageId']}\n")
        yield SimpleNamespace(ec2=ec2, config=str(config), paths=LabPaths.for_lab(LAB))


def up(cloud, capsys) -> tuple[int, str, str]:
    code = cli.main(["up", "--no-ssh", "--config", cloud.config, "--target", "aws"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lab_state(ec2) -> dict:
    """What EC2 holds for the lab: instance ids, Swift volume ids, groups, and the key pair's public key."""
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:lab:name", "Values": [LAB]}])["Reservations"]
    pairs = ec2.describe_key_pairs(Filters=[{"Name": "tag:lab:name", "Values": [LAB]}],
                                   IncludePublicKey=True)["KeyPairs"]
    return {
        "instances": sorted(i["InstanceId"] for r in reservations for i in r["Instances"]
                            if i["State"]["Name"] != "terminated"),
        "volumes": sorted(v["VolumeId"] for v in ec2.describe_volumes(
            Filters=[{"Name": "tag:lab:name", "Values": [LAB]}])["Volumes"]),
        "groups": sorted(g["GroupId"] for g in ec2.describe_security_groups(
            Filters=[{"Name": "tag:lab:name", "Values": [LAB]}])["SecurityGroups"]),
        "key pairs": sorted(" ".join(k.get("PublicKey", "").split()[:2]) for k in pairs),
    }


def another_public_key() -> str:
    key = Ed25519PrivateKey.generate()
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err


def test_up_without_the_key_while_the_lab_has_instances_refuses_and_changes_nothing(cloud, capsys):
    assert up(cloud, capsys)[0] == 0
    before = lab_state(cloud.ec2)
    cloud.paths.key_file.unlink()

    code, _, err = up(cloud, capsys)

    assert code == 1
    line = one_line(err)
    assert f"{cloud.paths.key_file} is missing" in line and "can only be reached with it" in line
    assert f"restore it to {cloud.paths.key_file}" in line and "`lab down`" in line
    assert "controller, object1, object2" in line
    assert lab_state(cloud.ec2) == before  # the key pair still holds the key the instances have
    assert not cloud.paths.key_file.exists()  # no new key that could never reach them


def test_up_with_the_labs_folder_gone_refuses_and_generates_nothing(cloud, capsys):
    assert up(cloud, capsys)[0] == 0
    before = lab_state(cloud.ec2)
    shutil.rmtree(cloud.paths.root)

    code, _, err = up(cloud, capsys)

    assert code == 1
    line = one_line(err)
    assert "already has instances" in line and f"{cloud.paths.secrets} is missing" in line
    assert "restore it from the checkout that made the lab" in line
    assert lab_state(cloud.ec2) == before
    assert not cloud.paths.secrets.exists() and not cloud.paths.key_file.exists()


def test_a_key_pair_holding_another_key_is_never_replaced(cloud, capsys):
    theirs = another_public_key()  # another checkout's `up` imported it and is about to launch
    cloud.ec2.import_key_pair(KeyName=LAB, PublicKeyMaterial=theirs.encode(), TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "lab:name", "Value": LAB}]}])

    code, _, err = up(cloud, capsys)

    assert code == 1
    line = one_line(err)
    assert f"key pair {LAB} in EC2 holds another public key" in line and "never replaced" in line
    assert "checkout that made the lab" in line and "`lab down` then `lab up`" in line
    state = lab_state(cloud.ec2)
    assert state["key pairs"] == [" ".join(theirs.split()[:2])]
    assert state["instances"] == [] and state["groups"] == []  # stopped before creating anything
    assert not cloud.paths.key_file.exists()


def test_another_checkouts_lab_is_refused_from_this_one(cloud, capsys, tmp_path, monkeypatch):
    assert up(cloud, capsys)[0] == 0
    before = lab_state(cloud.ec2)
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "other-checkout" / ".lab"))

    code, _, err = up(cloud, capsys)

    assert code == 1 and "restore it from the checkout that made the lab" in one_line(err)
    assert lab_state(cloud.ec2) == before
    monkeypatch.setenv("LAB_HOME", str(tmp_path / ".lab"))
    code, out, _ = up(cloud, capsys)
    assert code == 0 and "nothing to create" in out


def _racing_import(monkeypatch, public_key_of):
    """Another run imports the lab's key pair just before this run's ImportKeyPair reaches EC2."""
    original = Target.ec2_client

    def client(target, region):
        real = original(target, region)

        def another_run_imports(params, **_):
            boto3.client("ec2", region_name=REGION).import_key_pair(
                KeyName=params["KeyName"], PublicKeyMaterial=public_key_of(params["PublicKeyMaterial"]),
                TagSpecifications=params["TagSpecifications"])

        real.meta.events.register("before-parameter-build.ec2.ImportKeyPair", another_run_imports)
        return real

    monkeypatch.setattr(Target, "ec2_client", client)


def test_a_duplicate_import_of_the_same_key_is_fine(cloud, capsys, monkeypatch):
    _racing_import(monkeypatch, lambda mine: mine)

    code, out, err = up(cloud, capsys)

    assert code == 0, err
    assert "imported meanwhile by another run" in out
    assert "created 8 resources" in out and "key pair" not in out.split("created 8 resources")[1].splitlines()[0]
    local = cloud.paths.public_key.read_text().split()[:2]
    assert lab_state(cloud.ec2)["key pairs"] == [" ".join(local)]


def test_a_duplicate_import_of_another_key_is_refused_not_a_raw_error(cloud, capsys, monkeypatch):
    theirs = another_public_key()
    _racing_import(monkeypatch, lambda mine: theirs.encode())

    code, _, err = up(cloud, capsys)

    assert code == 1
    line = one_line(err)
    assert "holds another public key" in line and "InvalidKeyPair.Duplicate" not in line
    state = lab_state(cloud.ec2)
    assert state["key pairs"] == [" ".join(theirs.split()[:2])] and state["instances"] == []


@pytest.mark.parametrize("content", [b"", b"garbage, not a key\n", "cut"])
def test_a_damaged_private_key_is_one_line_and_nothing_is_created(cloud, capsys, content):
    if content == "cut":  # a real key cut short
        key = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        content = key[: len(key) // 2]
    cloud.paths.ensure()
    cloud.paths.key_file.write_bytes(content)

    code, _, err = up(cloud, capsys)

    assert code == 2
    line = one_line(err)
    assert f"{cloud.paths.key_file} is damaged" in line and "`lab down`" in line and "Traceback" not in line
    assert lab_state(cloud.ec2) == {"instances": [], "volumes": [], "groups": [], "key pairs": []}
    assert cloud.paths.key_file.read_bytes() == content  # never replaced by a new key


def test_a_private_key_others_can_read_is_put_back_to_0600_with_a_line(cloud, capsys):
    assert up(cloud, capsys)[0] == 0
    os.chmod(cloud.paths.key_file, 0o644)

    code, out, _ = up(cloud, capsys)

    assert code == 0
    assert f"{cloud.paths.key_file} was mode 0644: put back to 0600 (only you may read it)" in out
    assert stat.S_IMODE(cloud.paths.key_file.stat().st_mode) == 0o600


def test_up_under_umask_0_leaves_every_state_file_private(cloud, capsys):
    old = os.umask(0)
    try:
        code, _, err = up(cloud, capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    paths = cloud.paths
    assert stat.S_IMODE(paths.root.stat().st_mode) == stat.S_IMODE(paths.root.parent.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths.root.iterdir()}
    assert modes == {"id_ed25519": 0o600, "id_ed25519.pub": 0o644, "secrets.yaml": 0o600,
                     "inventory.yaml": 0o600, "ssh_config": 0o600, "lock": 0o600,
                     "ca-key.pem": 0o600, "ca.pem": 0o644}  # the lab's CA: its certificate is public
