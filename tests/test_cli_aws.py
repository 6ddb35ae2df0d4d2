"""The CLI end to end against a moto server, reached only through AWS_ENDPOINT_URL as on AWS."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lab import cli, instances, teardown, volumes
from lab.paths import LabPaths

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
