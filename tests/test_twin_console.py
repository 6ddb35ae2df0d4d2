"""GetConsoleOutput on the twin: what cloud-init prints on EC2, with the body's own host keys,
and `lab up` on the twin pins the keys from there, as on AWS (null body layer, no root)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lab.hostkeys import decode_console, host_keys_from_console
from labcore.inventory import Inventory, NodeRecord
from twin import client, console, server
from twin.target import TwinTarget, state_dir

REGION = "ap-northeast-2"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz"


def _launch(ec2, node: str) -> str:
    image = server.ensure_image(ec2.meta.endpoint_url, REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rocky-lab"]}])["KeyPairs"]:
        ec2.import_key_pair(KeyName="rocky-lab", PublicKeyMaterial=KEY.encode())
    tags = [{"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": node}]
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="rocky-lab", SubnetId=subnet["SubnetId"],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One null-layer daemon for the module (each start costs moto's first-call load)."""
    home = tmp_path_factory.mktemp("console") / ".lab"
    url = client.ensure_running(home / "sim", REGION, bodies="null")
    yield home, url
    client.stop(home / "sim")


@pytest.fixture
def twin(shared_home, monkeypatch):
    """The shared daemon, in this test's LAB_HOME: where TwinTarget looks for it."""
    home, url = shared_home
    monkeypatch.setenv("LAB_HOME", str(home))
    return url, server.ec2_client(url, REGION)


def _raw_console(url: str, instance_id: str) -> requests.Response:
    return requests.post(url + "/", timeout=10, data={"Action": "GetConsoleOutput", "InstanceId": instance_id,
                                                      "Version": "2016-11-15"},
                         headers={"Authorization": f"AWS4-HMAC-SHA256 Credential=sim/20260101/{REGION}/ec2/aws4_request, "
                                                   "SignedHeaders=host, Signature=x"})


def test_console_shows_cloud_inits_key_blocks_with_the_bodys_own_keys(twin):
    url, ec2 = twin
    iid = _launch(ec2, "controller")
    keys = client.wait_for_bodies(ec2, [iid], state_dir(), timeout=20)[iid]

    text = ec2.get_console_output(InstanceId=iid)["Output"]  # botocore decodes the base64

    for marker in ("-----BEGIN SSH HOST KEY FINGERPRINTS-----", "-----END SSH HOST KEY FINGERPRINTS-----"):
        assert re.search(rf"^<14>\w{{3}} [ \d]\d \d\d:\d\d:\d\d cloud-init: {marker}$", text, re.M), marker
    for marker in ("-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----"):
        assert re.search(rf"^{marker}$", text, re.M), marker  # echoed, as cloud-init 22.4 does
    assert host_keys_from_console(text) == keys
    assert "SHA256:" in text and "root@controller (ED25519)" in text
    raw = re.search(r"<output>([^<]*)</output>", _raw_console(url, iid).text).group(1)
    assert base64.b64decode(raw, validate=True).decode() == text  # base64 on the wire, as AWS sends it
    assert host_keys_from_console(decode_console(raw)) == keys


def test_console_of_an_instance_without_a_body_has_no_output_and_an_unknown_one_is_not_found():
    moto, url = server.start_server(console=lambda instance_id: None)
    try:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        ec2 = server.ec2_client(url, REGION)
        iid = _launch(ec2, "object1")
        assert "Output" not in ec2.get_console_output(InstanceId=iid)
        with pytest.raises(ClientError, match="InvalidInstanceID.NotFound"):
            ec2.get_console_output(InstanceId="i-0123456789abcdef0")
    finally:
        moto.stop()


def test_lab_up_on_the_twin_pins_the_keys_its_consoles_show(twin, tmp_path):
    url, ec2 = twin
    ids = {node: _launch(ec2, node) for node in ("controller", "object1")}
    described = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=list(ids.values()))["Reservations"]
                 for i in r["Instances"]}
    nodes = [NodeRecord(name=node, role="controller" if node == "controller" else "object", instance_id=iid,
                        instance_type="t3.medium", az="ap-northeast-2a", private_ip=described[iid]["PrivateIpAddress"],
                        ssh_host=described[iid]["PrivateIpAddress"], ssh_user="admin") for node, iid in ids.items()]
    inventory = Inventory(lab="rocky-lab", target="sim", region=REGION, os="debian-12", release="rocky",
                          subnet_cidr="172.31.0.0/20", key_file=str(tmp_path / "key"),
                          known_hosts=str(tmp_path / "known_hosts"), nodes=nodes)
    said: list[str] = []

    TwinTarget(url).pin_host_keys(ec2, inventory, said.append)

    pinned = sorted((tmp_path / "known_hosts").read_text().splitlines())
    layer_keys = client.wait_for_bodies(ec2, list(ids.values()), state_dir(), timeout=5)
    assert pinned == sorted(f"{n.ssh_host} {k}" for n in nodes for k in layer_keys[n.instance_id])
    assert any("GetConsoleOutput" in line for line in said) and not any("warning" in line for line in said)


# ------------------------------------------------------------------ the body's script and the null layer's rendering
def _host_keys(folder: Path) -> list[str]:
    """Three real host keys, as ssh-keygen -A would write them."""
    made = {"ed25519": ed25519.Ed25519PrivateKey.generate(), "ecdsa": ec.generate_private_key(ec.SECP256R1()),
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=3072)}
    lines = []
    for kind, key in sorted(made.items()):
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode() + " root@object1"
        (folder / f"ssh_host_{kind}_key.pub").write_text(line + "\n")
        lines.append(line)
    return lines


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client), as the bodies have")
def test_the_null_console_renders_what_debian_12s_cloud_init_prints():
    """A real cloud-init 22.4 console (a twin body's, Debian 12) and the null layer's render have
    the same markers and lines for the same keys, and the lab's parser finds the keys in both."""
    real = (Path(__file__).parent / "data" / "cloud_init_22_4_console.txt").read_text()
    keys = [line for line in real.splitlines() if line.startswith(("ssh-", "ecdsa-"))]
    assert len(keys) == 3 and sorted(host_keys_from_console(real)) == sorted(" ".join(k.split()[:2]) for k in keys)
    rendered = console.key_blocks(keys, datetime.now(timezone.utc))
    stamp = re.compile(r"^<14>\w{3} [ \d]\d \d\d:\d\d:\d\d cloud-init: ")
    block = real[real.rindex("\n", 0, real.index("#" * 61)) + 1:].splitlines()
    unstamped = [stamp.sub("", line) for line in block]
    assert [line for line in unstamped if line.startswith(("#", "-----"))] == \
        [stamp.sub("", line) for line in rendered if stamp.sub("", line).startswith(("#", "-----"))]
    # every line the render prints is one cloud-init printed (its fingerprints computed the same way)
    assert set(stamp.sub("", line) for line in rendered) <= set(unstamped)
    assert all(stamp.match(line) for line in block[:block.index("-----BEGIN SSH HOST KEY KEYS-----")])
    assert sorted(host_keys_from_console("\n".join(rendered))) == sorted(host_keys_from_console(real))


def test_console_tail_keeps_the_last_64_kib_as_ec2_does(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"x" * 70000 + b"\nlast line\n")
    text = console.tail(log)
    assert len(text.encode()) == console.CONSOLE_LIMIT_BYTES and text.endswith("last line\n")
    assert console.tail(tmp_path / "none.log") is None
