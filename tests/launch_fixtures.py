"""What the `lab up` tests share: moto holding the official images of both OSes, one `up`, and
botocore hooks that make EC2 answer what moto never does (no capacity, a launch that went
through but answered an error, images hidden for being deprecated).

moto loads the images of MOTO_AMIS_PATH (a JSON list that replaces its default images) when
its EC2 backend is made; the list is read when moto is imported, so the fixture sets both the
variable (for a moto server started later) and the list moto already read.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ec2.models import amis as moto_amis
from moto.ec2.models import subnets as moto_subnets
from tenacity import wait_none

from lab import ec2 as lab_ec2
from lab import instances, provision, volumes
from lab.config import parse_config
from lab.images import CANONICAL_OWNER, DEBIAN_OWNER
from lab.target import AwsTarget, Target
from labcore.paths import LabPaths

REGION = "ap-northeast-2"
CALLER = "198.51.100.7/32"
CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()
BIONIC = "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-{}"
# An object node the default config does not have: what a grow adds.
OBJECT3 = "  object3: {role: object, type: t3.medium, volumes: {sdb: 20, sdc: 30}}\n"


def moto_image(ami_id: str, name: str, owner: str, created: str, *, arch: str = "x86_64", virt: str = "hvm",
               root_type: str = "ebs", root: str = "/dev/sda1", state: str = "available") -> dict:
    """One entry of MOTO_AMIS_PATH, as moto's own amis.json writes them."""
    return {"ami_id": ami_id, "name": name, "owner_id": owner, "creation_date": created, "state": state,
            "architecture": arch, "virtualization_type": virt, "root_device_type": root_type,
            "root_device_name": root, "public": True, "image_type": "machine", "hypervisor": "xen",
            "description": name}


NEWEST_BIONIC = "ami-0b10000000000531"
NEWEST_DEBIAN = "ami-0deb000000000717"
IMAGES = [
    moto_image(NEWEST_BIONIC, BIONIC.format("20230531"), CANONICAL_OWNER, "2023-05-31T10:00:00.000Z"),
    moto_image("ami-0b10000000000101", BIONIC.format("20230101"), CANONICAL_OWNER, "2023-01-01T10:00:00.000Z"),
    # Newer than the right one, each wrong in one way the lookup filters on:
    moto_image("ami-0b10000000000601", BIONIC.format("20230601"), CANONICAL_OWNER, "2023-06-01T10:00:00.000Z",
               arch="arm64"),
    moto_image("ami-0b10000000000602", BIONIC.format("20230602"), CANONICAL_OWNER, "2023-06-02T10:00:00.000Z",
               root_type="instance-store"),
    moto_image("ami-0b10000000000603", BIONIC.format("20230603"), CANONICAL_OWNER, "2023-06-03T10:00:00.000Z",
               virt="paravirtual"),
    moto_image("ami-0b10000000000604", BIONIC.format("20230604"), CANONICAL_OWNER, "2023-06-04T10:00:00.000Z",
               state="pending"),
    moto_image("ami-0bad000000000101", BIONIC.format("20240101"), "123456789012", "2024-01-01T10:00:00.000Z"),
    moto_image("ami-0a1e000000000101", "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20240101",
               CANONICAL_OWNER, "2024-01-01T10:00:00.000Z"),
    moto_image(NEWEST_DEBIAN, "debian-12-amd64-20240717-1811", DEBIAN_OWNER, "2024-07-17T18:11:00.000Z",
               root="/dev/xvda"),
    moto_image("ami-0deb000000000201", "debian-12-amd64-20240201-1647", DEBIAN_OWNER, "2024-02-01T16:47:00.000Z",
               root="/dev/xvda"),
    moto_image("ami-0deb000000000801", "debian-12-backports-amd64-20240801-1850", DEBIAN_OWNER,
               "2024-08-01T18:50:00.000Z", root="/dev/xvda"),
    moto_image("ami-0deb110000000801", "debian-11-amd64-20240801-1850", DEBIAN_OWNER, "2024-08-01T18:50:00.000Z",
               root="/dev/xvda"),
]

_BOTOCORE = botocore.session.get_session()


def write_images(path: Path, images: list[dict] = IMAGES) -> Path:
    path.write_text(json.dumps(images))
    return path


def use_images(monkeypatch, path: Path, images: list[dict] = IMAGES) -> Path:
    """moto's images are these from the next EC2 backend it makes (before a test's first call)."""
    write_images(path, images)
    monkeypatch.setenv("MOTO_AMIS_PATH", str(path))
    monkeypatch.setattr(moto_amis, "AMIS", json.loads(path.read_text()))  # a copy: moto edits what it loads
    return path


@pytest.fixture
def moto_images(monkeypatch, tmp_path) -> Path:
    return use_images(monkeypatch, tmp_path / "amis.json")


def _one_at_a_time(method):
    """moto hands out a subnet's private IPs from a generator, which two threads must not step at
    once ("generator already executing"); the lab launches nodes in parallel, as EC2 allows."""
    lock = threading.Lock()

    @functools.wraps(method)
    def locked(*args, **kwargs):
        with lock:
            return method(*args, **kwargs)

    return locked


@pytest.fixture
def ec2(monkeypatch, moto_images):
    """In-process moto with the images above; no sleeping in retries and waits."""
    monkeypatch.setattr(moto_subnets.Subnet, "get_available_subnet_ip",
                        _one_at_a_time(moto_subnets.Subnet.get_available_subnet_ip))
    # Every `up` builds its own client; sharing one botocore session spares re-reading the EC2 model each time.
    monkeypatch.setattr(boto3.session, "Session", functools.partial(boto3.session.Session, botocore_session=_BOTOCORE))
    monkeypatch.setattr(lab_ec2, "WAIT", wait_none())
    monkeypatch.setattr(instances, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(volumes, "POLL_SECONDS", 0.0)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def with_internet_route(ec2, vpc_id: str | None = None) -> str:
    """The VPC's (default: the default VPC's) main route table sends 0.0.0.0/0 to a new internet
    gateway, as an AWS default VPC's does: moto makes its default VPC without one, and `subnet:`
    is refused without it. The gateway's id."""
    vpc_id = vpc_id or ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    return gateway


def spec_with(extra: str = "", text: str = CONFIG):
    """The default config (SSH from a fixed address: no test asks the internet who it is), plus extra."""
    return parse_config(text.replace("allow_from: [auto]", f"allow_from: [{CALLER}]") + extra, "configs/lab.yaml")


def with_fewer_volumes(text: str = CONFIG, nodes: tuple[str, ...] = ("object1", "object2")) -> str:
    """The config with only sdb on these nodes: run `up` with it, then with the config, and sdc is a
    volume added to a node that runs already (CreateVolume, AttachVolume, DeleteOnTermination)."""
    for node in nodes:
        old = f"{node}: {{role: object, type: t3.medium, volumes: {{sdb: 10, sdc: 10}}}}"
        assert old in text, node
        text = text.replace(old, f"{node}: {{role: object, type: t3.medium, volumes: {{sdb: 10}}}}")
    return text


def run_up(spec, lines=None):
    paths = LabPaths.for_lab(spec.name).ensure()
    return provision.up(spec, AwsTarget(), paths, resolve_caller=lambda cidr: CALLER,
                        progress=(lines if lines is not None else []).append)


def lab_instances(ec2, lab: str = "rocky-lab") -> list[dict]:
    return [i for r in ec2.describe_instances(Filters=[{"Name": "tag:lab:name", "Values": [lab]}])["Reservations"]
            for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]


def swift_volumes(ec2, lab: str = "rocky-lab") -> list[dict]:
    return [v for v in ec2.describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": [lab]},
                                                     {"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])["Volumes"]
            if v["State"] not in ("deleting", "deleted")]


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def by_node(items: list[dict]) -> dict[str, dict]:
    return {tags(i)["lab:node"]: i for i in items}


def subnet_of_zone(ec2, zone: str) -> dict:
    return ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]},
                                         {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]


def on_every_client(monkeypatch, register) -> None:
    """register(client) on every EC2 client a target builds from now on (the lab's own clients)."""
    real = Target.ec2_client

    def client(target, region):
        c = real(target, region)
        register(c)
        return c

    monkeypatch.setattr(Target, "ec2_client", client)


def refuse(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


class Answers:
    """EC2 answering an operation differently, decided per call on the caller's own parameters.

    decide(params) returns None (let the call reach moto), an exception to raise instead, or
    a dict: EC2's answer. It may act first (launch through `side`, a client without hooks),
    like EC2 carrying out a request whose answer is lost. Every call's parameters are kept
    in `calls`.
    """

    def __init__(self, monkeypatch, operation: str, decide):
        self.operation, self.decide, self.calls = operation, decide, []
        self.side = boto3.client("ec2", region_name=REGION)
        on_every_client(monkeypatch, self._register)

    def _register(self, client) -> None:
        client.meta.events.register(f"before-parameter-build.ec2.{self.operation}", self._remember)
        client.meta.events.register(f"before-call.ec2.{self.operation}", self._answer)

    def _remember(self, params, context, **_):
        context["lab_params"] = dict(params)

    def _answer(self, context, **_):
        params = context.get("lab_params", {})
        self.calls.append(params)
        answer = self.decide(params)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, dict):
            return SimpleNamespace(status_code=200, headers={}), answer
        return None
