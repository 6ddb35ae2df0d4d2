"""Two `lab up` of one lab at the same time, from two folders, against one moto server on 127.0.0.1.

Each run is its own process (`python -m lab up --no-ssh --target aws`, its own LAB_HOME), as
two checkouts would be; the server is a moto_server process holding the official images
(MOTO_AMIS_PATH). Whatever the interleaving, the end state is one set of resources.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from launch_fixtures import CALLER, CONFIG, REGION, write_images

ROOT = Path(__file__).resolve().parent.parent
LAB = "race-lab"
RUN_TIMEOUT_SECONDS = 240


@pytest.fixture
def moto_server(tmp_path):
    """A moto server process on a free loopback port; its endpoint URL. Stopped by its pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MOTO_AMIS_PATH": str(write_images(tmp_path / "amis.json"))}
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not answer") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _checkout(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A folder with its own config and its own .lab; (config, LAB_HOME)."""
    folder = tmp_path / name
    folder.mkdir()
    config = folder / "lab.yaml"
    config.write_text(CONFIG.replace("name: rocky-lab", f"name: {LAB}")
                      .replace("allow_from: [auto]", f"allow_from: [{CALLER}]"))
    return config, folder / ".lab"


def _env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(home.parent / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home.parent / "no-aws-credentials"), "LAB_HOME": str(home),
            "PYTHONPATH": str(ROOT)}


def _up_at_once(url: str, checkouts: list[tuple[Path, Path]]) -> list[subprocess.CompletedProcess]:
    runs = [subprocess.Popen([sys.executable, "-m", "lab", "up", "--no-ssh", "--target", "aws", "--config",
                              str(config)], cwd=ROOT, env=_env(url, home), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for config, home in checkouts]
    done = []
    for run in runs:
        out, err = run.communicate(timeout=RUN_TIMEOUT_SECONDS)
        done.append(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    return done


def _one_set(url: str) -> dict[str, int]:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url)
    lab = [{"Name": "tag:lab:name", "Values": [LAB]}]
    instances = [i for r in ec2.describe_instances(Filters=lab)["Reservations"] for i in r["Instances"]
                 if i["State"]["Name"] not in ("terminated", "shutting-down")]
    volumes = [v for v in ec2.describe_volumes(Filters=lab + [{"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])[
        "Volumes"] if v["State"] not in ("deleting", "deleted")]
    assert all(v["State"] == "in-use" for v in volumes)
    nodes = sorted(t["Value"] for i in instances for t in i["Tags"] if t["Key"] == "lab:node")
    assert nodes == ["controller", "object1", "object2"]
    return {"instances": len(instances), "volumes": len(volumes),
            "groups": len(ec2.describe_security_groups(Filters=lab)["SecurityGroups"]),
            "key pairs": len(ec2.describe_key_pairs(Filters=lab)["KeyPairs"])}


ONE_SET = {"instances": 3, "volumes": 4, "groups": 1, "key pairs": 1}


def test_two_checkouts_racing_leave_one_lab_and_the_one_that_lost_the_key_pair_says_so(moto_server, tmp_path):
    runs = _up_at_once(moto_server, [_checkout(tmp_path, "first"), _checkout(tmp_path, "second")])
    assert _one_set(moto_server) == ONE_SET
    codes = sorted(r.returncode for r in runs)
    assert codes == [0, 1], [r.stderr for r in runs]
    loser = next(r for r in runs if r.returncode == 1)
    assert loser.stderr.count("\n") == 1 and loser.stderr.startswith("lab up: "), loser.stderr
    assert "Traceback" not in loser.stderr


def test_two_folders_sharing_the_labs_key_racing_leave_one_lab(moto_server, tmp_path, monkeypatch):
    first, second = _checkout(tmp_path, "first"), _checkout(tmp_path, "second")
    # The second folder holds a copy of the first's key and secrets (a copied checkout): the
    # key pair check lets both runs on, so they race for the group, the instances and volumes.
    from lab.keypair import generate_key
    from labcore.paths import LabPaths
    from labcore.secrets import ensure_secrets

    monkeypatch.setenv("LAB_HOME", str(first[1]))
    paths = LabPaths.for_lab(LAB).ensure()
    generate_key(paths.key_file)
    ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    shutil.copytree(first[1], second[1])
    runs = _up_at_once(moto_server, [first, second])
    assert _one_set(moto_server) == ONE_SET
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    again = _up_at_once(moto_server, [first])[0]
    assert again.returncode == 0 and "nothing to create" in again.stdout
    assert _one_set(moto_server) == ONE_SET
