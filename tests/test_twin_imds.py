"""The twin's instance metadata service: paths, the IMDSv2 token flow, user data, one instance per address.

Answers are checked through a real HTTP server on 127.0.0.1 (the same server the daemon
runs on the bridge), with instances launched in moto, so what is served is what the EC2
API holds: the instance by the address a request comes from.
"""

from __future__ import annotations

import http.client
import socket

import boto3
import pytest
from moto import mock_aws

from twin.imds import Tokens, handle
from twin.imds_server import MetadataService, instance_meta, moto_lookup

REGION = "us-east-1"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbmW0dYjzJ4y0A1w2RbOtiSP0lOGz1nPlyHH2mVJbrz lab"
CLOUD_CONFIG = b"#cloud-config\nwrite_files:\n- path: /run/twin-proof\n  content: from user data\n"


@pytest.fixture
def ec2():
    with mock_aws():
        client = boto3.client("ec2", region_name=REGION)
        client.import_key_pair(KeyName="lab", PublicKeyMaterial=KEY.encode())
        yield client


def launch(ec2, *, tokens: str = "optional", user_data: bytes | None = None) -> dict:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    extra = {"UserData": user_data.decode()} if user_data is not None else {}  # boto3 encodes it in base64
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium", KeyName="lab",
                             MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
                             BlockDeviceMappings=[{"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 10}}],
                             **extra)["Instances"][0]


class Imds:
    """The metadata service on 127.0.0.1, asked as if from the address `as_address`."""

    def __init__(self, ec2, port: int):
        self.ec2, self.port = ec2, port
        self.as_address = ""
        real = moto_lookup(lambda: [(ec2, REGION)])
        self.service = MetadataService(lambda _address: real(self.as_address), port=port)
        self.service.serve_on({"127.0.0.1"})

    def request(self, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def token(self, ttl: str = "60") -> str:
        status, _, body = self.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
        assert status == 200
        return body.decode()

    def get(self, path: str, token: str | None = None) -> tuple[int, str]:
        status, _, body = self.request("GET", path, {"X-aws-ec2-metadata-token": token} if token else {})
        return status, body.decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def imds(ec2):
    service = Imds(ec2, _free_port())
    yield service
    service.service.stop()


def test_the_paths_cloud_init_reads_answer_from_the_api_state(ec2, imds):
    instance = launch(ec2)
    imds.as_address = instance["PrivateIpAddress"]
    token = imds.token()
    meta = {path: imds.get(f"/latest/meta-data/{path}", token)[1] for path in (
        "instance-id", "ami-id", "instance-type", "local-ipv4", "public-ipv4", "local-hostname",
        "placement/availability-zone", "public-keys/0/openssh-key", "mac")}
    assert meta["instance-id"] == instance["InstanceId"]
    assert meta["ami-id"] == instance["ImageId"]
    assert meta["instance-type"] == "t3.medium"
    assert meta["local-ipv4"] == instance["PrivateIpAddress"]
    assert meta["public-ipv4"] == instance["PublicIpAddress"]
    assert meta["local-hostname"] == instance["PrivateDnsName"]
    assert meta["placement/availability-zone"] == instance["Placement"]["AvailabilityZone"]
    assert meta["public-keys/0/openssh-key"].split()[:2] == KEY.split()[:2]
    assert meta["mac"] == instance["NetworkInterfaces"][0]["MacAddress"]
    # Folders list their entries, sub-folders with a slash; public-keys/ lists "0=keyname".
    listing = imds.get("/latest/meta-data/", token)[1].split("\n")
    assert {"instance-id", "block-device-mapping/", "public-keys/", "network/"} <= set(listing)
    assert imds.get("/latest/meta-data/public-keys/", token)[1] == "0=lab"
    assert imds.get("/latest/meta-data/block-device-mapping/", token)[1].split("\n") == ["ami", "root", "ebs1"]
    assert imds.get("/latest/meta-data/block-device-mapping/ebs1", token)[1] == "sdb"
    mac = meta["mac"]
    assert imds.get(f"/latest/meta-data/network/interfaces/macs/{mac}/local-ipv4s", token)[1] == \
        instance["PrivateIpAddress"]
    # cloud-init asks for a dated API version first.
    assert imds.get("/2021-03-23/meta-data/instance-id", token)[1] == instance["InstanceId"]
    assert imds.get("/latest/meta-data/no-such-thing", token)[0] == 404


def test_user_data_is_served_as_given_and_404_without(ec2, imds):
    with_data = launch(ec2, user_data=CLOUD_CONFIG)
    without = launch(ec2)
    imds.as_address = with_data["PrivateIpAddress"]
    assert imds.get("/latest/user-data", imds.token()) == (200, CLOUD_CONFIG.decode())
    imds.as_address = without["PrivateIpAddress"]
    assert imds.get("/latest/user-data", imds.token())[0] == 404


def test_a_token_is_needed_only_when_the_instance_requires_it(ec2, imds):
    optional, required = launch(ec2), launch(ec2, tokens="required")
    imds.as_address = optional["PrivateIpAddress"]
    assert imds.get("/latest/meta-data/instance-id") == (200, optional["InstanceId"])  # IMDSv1 allowed
    imds.as_address = required["PrivateIpAddress"]
    assert imds.get("/latest/meta-data/instance-id")[0] == 401
    assert imds.get("/latest/user-data")[0] == 401
    assert imds.get("/latest/meta-data/instance-id", imds.token()) == (200, required["InstanceId"])
    # A wrong token is refused even where none is needed.
    imds.as_address = optional["PrivateIpAddress"]
    assert imds.get("/latest/meta-data/instance-id", "not-a-token")[0] == 401


def test_the_token_request_checks_its_ttl_and_refuses_proxies(ec2, imds):
    imds.as_address = launch(ec2)["PrivateIpAddress"]
    status, headers, _ = imds.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    assert status == 200 and headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
    for bad in ("0", "21601", "soon"):
        assert imds.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": bad})[0] == 400
    assert imds.request("PUT", "/latest/api/token", {})[0] == 400
    assert imds.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                                      "X-Forwarded-For": "10.0.0.9"})[0] == 403


def test_one_instance_cannot_read_another_ones_data_even_with_its_token(ec2, imds):
    first = launch(ec2, tokens="required", user_data=b"#!/bin/sh\necho first\n")
    second = launch(ec2, tokens="required")
    imds.as_address = first["PrivateIpAddress"]
    first_token = imds.token()
    imds.as_address = second["PrivateIpAddress"]
    # The second instance sees itself, and the first one's token is not good for it.
    assert imds.get("/latest/meta-data/instance-id", imds.token()) == (200, second["InstanceId"])
    assert imds.get("/latest/user-data", first_token)[0] == 401
    assert imds.get("/latest/meta-data/instance-id", first_token)[0] == 401
    imds.as_address = "172.31.99.99"  # no instance there
    assert imds.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 403


def test_a_token_ends_with_its_ttl(ec2):
    now = [1000.0]
    tokens = Tokens(clock=lambda: now[0])
    meta = instance_meta(ec2, launch(ec2, tokens="required"), REGION)
    status, _, token = handle("PUT", "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "5"}, meta, tokens)
    assert status == 200
    headers = {"x-aws-ec2-metadata-token": token.decode()}
    assert handle("GET", "/latest/meta-data/instance-id", headers, meta, tokens)[0] == 200
    now[0] += 6
    assert handle("GET", "/latest/meta-data/instance-id", headers, meta, tokens)[0] == 401


def test_the_identity_document_names_the_instance(ec2, imds):
    instance = launch(ec2)
    imds.as_address = instance["PrivateIpAddress"]
    status, body = imds.get("/latest/dynamic/instance-identity/document", imds.token())
    assert status == 200
    assert f'"instanceId": "{instance["InstanceId"]}"' in body and f'"region": "{REGION}"' in body


def test_each_body_namespace_sends_the_metadata_address_to_the_gateway_server():
    from twin.netns import metadata_rules

    rules = metadata_rules("172.31.0.0/20")
    assert "ip daddr 169.254.169.254 tcp dport 80 dnat to 172.31.0.1:18169" in rules
    assert rules.startswith("table ip lab_sim_imds\ndelete table ip lab_sim_imds\n")  # applied again: replaced


def test_a_lookup_is_remembered_for_two_seconds_so_a_metadata_walk_asks_moto_once():
    """cloud-init walks the tree one path a request; each lookup is five calls to moto."""
    from twin.imds_server import LOOKUP_TTL_SECONDS, remembered

    asked, now = [], [100.0]

    def lookup(address):
        asked.append(address)
        return None if address == "172.31.0.9" else f"meta of {address}"

    answer = remembered(lookup, clock=lambda: now[0])
    assert [answer("172.31.0.5") for _ in range(50)] == ["meta of 172.31.0.5"] * 50
    assert answer("172.31.0.9") is None and answer("172.31.0.9") is None  # no instance: remembered too
    assert asked == ["172.31.0.5", "172.31.0.9"]
    now[0] += LOOKUP_TTL_SECONDS
    answer("172.31.0.5")
    assert asked == ["172.31.0.5", "172.31.0.9", "172.31.0.5"]  # a change shows two seconds late at most
