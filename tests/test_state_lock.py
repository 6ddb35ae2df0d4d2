"""One run per lab at a time: a second `up`/`install`/`down` of the same lab exits 1 at once naming the holder.

The holder is always another real process (flock is per open file, and the lab is locked
by processes): a small Python holding the lock, or a second `python -m lab up`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from plan_fixtures import inventory

import lab as lab_package
from lab import cli
from lab.lock import take_lock
from lab.target import Target
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.secrets import ensure_secrets

PROJECT = Path(lab_package.__file__).resolve().parent.parent
CONFIG = (PROJECT / "configs" / "lab.yaml").read_text()
HOLD = """
import sys
from lab.lock import take_lock
from labcore.paths import LabPaths
lock = take_lock(LabPaths.for_lab(sys.argv[1]), sys.argv[2], print)
print("held", flush=True)
sys.stdin.read()
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT)}


@pytest.fixture
def holder():
    """Start a process that holds a lab's lock as `lab <command>`; it is killed at the end."""
    started: list[subprocess.Popen] = []

    def start(lab: str = "rocky-lab", command: str = "up") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, lab, command], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env())
        started.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def ec2_calls(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(Target, "ec2_client", lambda self, region: calls.append(region))
    return calls


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "lab.yaml"
    path.write_text(CONFIG.replace("allow_from: [auto]", "allow_from: [203.0.113.9/32]"))
    return str(path)


@pytest.mark.parametrize("command", ["up", "install", "down"])
def test_a_second_run_of_the_same_lab_exits_1_at_once_naming_the_run_that_holds_it(
        holder, ec2_calls, config, capsys, command):
    running = holder(command="up")
    started = time.monotonic()

    code = cli.main([command, "--config", config, "--target", "aws"])

    assert code == 1 and time.monotonic() - started < 2  # at once, not after a wait
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"lab {command}: lab rocky-lab is in use by `lab up` (pid {running.pid} on ")
    assert "wait for it to finish, then run this command again" in err
    assert ec2_calls == []


def test_another_labs_lock_does_not_stop_this_lab(holder, config, capsys):
    holder(lab="other-lab")
    code = cli.main(["install", "--config", config, "--target", "aws"])
    assert code == 2 and "no inventory yet" in capsys.readouterr().err  # got past the lock


def test_reading_commands_do_not_need_the_lock(holder, config, capsys):
    paths = LabPaths.for_lab("rocky-lab")
    save_inventory(inventory(), paths.inventory)
    ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    holder()
    assert cli.main(["plan", "--json", "--config", config, "--target", "aws"]) == 0
    assert json.loads(capsys.readouterr().out)


def test_the_lock_goes_with_its_holder_even_when_it_is_killed(holder):
    paths = LabPaths.for_lab("rocky-lab")
    running = holder()
    running.send_signal(signal.SIGKILL)
    running.wait()
    lock = take_lock(paths, "down", print)  # never stale: nothing to clear by hand
    record = json.loads(paths.lock.read_text())
    assert record["command"] == "lab down" and record["pid"] == os.getpid()
    lock.release()
    assert paths.lock.read_text() == ""  # a finished run leaves no name behind


def test_a_command_releases_the_lock_when_it_ends_even_on_failure(config, capsys):
    assert cli.main(["install", "--config", config, "--target", "aws"]) == 2  # no inventory: after the lock
    capsys.readouterr()
    probe = subprocess.run([sys.executable, "-c", HOLD, "rocky-lab", "install"], input="", capture_output=True,
                           text=True, env=env(), timeout=60, check=False)
    assert probe.returncode == 0 and probe.stdout.strip() == "held", probe.stderr


@pytest.fixture
def endpoint(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    yield url
    server.stop()


def test_two_ups_of_the_same_lab_at_once_end_with_one_set_of_resources(endpoint, tmp_path):
    ec2 = boto3.client("ec2", region_name="ap-northeast-2", endpoint_url=endpoint)
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("name: rocky-lab", "name: race-lab")
                      .replace("allow_from: [auto]", "allow_from: [203.0.113.9/32]") + f"\nami: {image}\n")
    argv = [sys.executable, "-m", "lab", "up", "--no-ssh", "--config", str(config), "--target", "aws"]

    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                             cwd=tmp_path) for _ in range(2)]
    results = [(proc, *proc.communicate(timeout=120)) for proc in runs]

    assert sorted(proc.returncode for proc, _, _ in results) == [0, 1], results
    (winner, out, _), = [r for r in results if r[0].returncode == 0]
    (_, _, err), = [r for r in results if r[0].returncode == 1]
    assert "created 9 resources" in out
    assert err.count("\n") == 1 and f"is in use by `lab up` (pid {winner.pid} on " in err
    lab = [{"Name": "tag:lab:name", "Values": ["race-lab"]}]
    live = [i for r in ec2.describe_instances(Filters=lab)["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    swift = [v for v in ec2.describe_volumes(Filters=lab)["Volumes"]
             if {"Key": "lab:volume", "Value": "root"} not in v.get("Tags", [])]
    assert len(live) == 3 and len(swift) == 4
    assert len(ec2.describe_security_groups(Filters=lab)["SecurityGroups"]) == 1
    assert len(ec2.describe_key_pairs(Filters=lab)["KeyPairs"]) == 1
