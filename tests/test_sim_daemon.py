"""The twin's daemon and its client, run for real with the null body layer (no root needed).

The daemon is a real subprocess with a real moto server on 127.0.0.1; only the bodies
are records in a json file instead of containers.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from labcore.errors import LabError
from twin import client, server
from twin.daemon import Daemon
from twin.nullbodies import NullBodies
from twin.server import SIM_IMAGE_NAME
from twin.state import StateFiles

REGION = "ap-northeast-2"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz"


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / "sim"
    yield path
    if client.daemon_pid(path) is not None:  # never leave a daemon behind, whatever failed
        client.stop(path)


def _launch(ec2, node: str) -> str:
    image = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [SIM_IMAGE_NAME]}])["Images"][0]
    subnet = ec2.describe_subnets()["Subnets"][0]
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rocky-lab"]}])["KeyPairs"]:
        ec2.import_key_pair(KeyName="rocky-lab", PublicKeyMaterial=KEY.encode())
    tags = [{"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": node}]
    return ec2.run_instances(ImageId=image["ImageId"], MinCount=1, MaxCount=1, KeyName="rocky-lab",
                             SubnetId=subnet["SubnetId"],
                             BlockDeviceMappings=[{"DeviceName": image["RootDeviceName"], "Ebs": {"VolumeSize": 8}}],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]


def _recorded(state_dir: Path) -> dict:
    path = state_dir / "null-bodies.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_tagged_instance_gets_a_body_and_the_daemon_stops_when_the_lab_is_gone(state_dir):
    url = client.ensure_running(state_dir, REGION, bodies="null")
    assert url.startswith("http://127.0.0.1:")
    assert client.endpoint(state_dir) == url
    assert client.ensure_running(state_dir, REGION, bodies="null") == url  # the running daemon is reused
    ec2 = server.ec2_client(url, REGION)
    iid = _launch(ec2, "controller")

    keys = client.wait_for_bodies(ec2, [iid], state_dir, timeout=10)

    assert keys[iid][0].startswith("ssh-ed25519 ")
    recorded = _recorded(state_dir)[iid]["body"]
    assert (recorded["hostname"], recorded["public_key"], recorded["lab"]) == ("controller", KEY, "rocky-lab")
    pid = client.daemon_pid(state_dir)
    ec2.terminate_instances(InstanceIds=[iid])
    said = []
    client.wait_until_gone(state_dir, timeout=15, progress=said.append)
    assert said == []  # the daemon cleaned up by itself: nothing to say
    assert client.daemon_pid(state_dir) is None
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    assert sorted(p.name for p in state_dir.iterdir()) == ["daemon.log", "start.lock"]
    assert client.endpoint(state_dir) is None


@pytest.fixture(scope="module")
def shared_twin(tmp_path_factory):
    """One daemon for the tests that leave it running (each start costs moto's first-call load)."""
    path = tmp_path_factory.mktemp("shared") / "sim"
    url = client.ensure_running(path, REGION, bodies="null")
    yield path, url
    client.stop(path)


def test_image_is_registered_in_each_region_a_lab_asks_for(shared_twin):
    state_dir, url = shared_twin
    assert client.ensure_running(state_dir, "eu-west-1", bodies="null") == url
    for region in (REGION, "eu-west-1"):
        images = server.ec2_client(url, region).describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [SIM_IMAGE_NAME]}])["Images"]
        assert len(images) == 1, region
    assert StateFiles(state_dir).read_regions() == sorted([REGION, "eu-west-1"])


def test_down_after_the_daemon_died_removes_what_it_left(state_dir):
    url = client.ensure_running(state_dir, REGION, bodies="null")
    ec2 = server.ec2_client(url, REGION)
    iid = _launch(ec2, "object1")
    client.wait_for_bodies(ec2, [iid], state_dir, timeout=10)
    os.kill(client.daemon_pid(state_dir), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while client.daemon_pid(state_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.1)

    assert client.endpoint(state_dir) is None
    removed = client.cleanup_without_daemon(state_dir)

    assert any("null-bodies.json" in line for line in removed)
    assert any(line.endswith("endpoint") for line in removed)
    assert _recorded(state_dir) == {} and not (state_dir / "daemon.pid").exists()


def test_daemon_that_fails_at_start_shows_its_log(state_dir):
    with pytest.raises(LabError, match="exited at start.*invalid choice") as failed:
        client.ensure_running(state_dir, REGION, bodies="no-such-layer")
    assert failed.value.exit_code == 1  # a failure of this machine, not bad input
    assert "\n" not in str(failed.value) and "lab up" in str(failed.value)


def test_waiting_for_a_terminated_instance_fails_at_once_naming_it(shared_twin):
    state_dir, url = shared_twin
    ec2 = server.ec2_client(url, REGION)
    keep, gone = _launch(ec2, "controller"), _launch(ec2, "object2")
    ec2.terminate_instances(InstanceIds=[gone])
    with pytest.raises(LabError, match=gone):
        client.wait_for_bodies(ec2, [keep, gone], state_dir, timeout=30)


# ------------------------------------------------------------------ when the daemon stops (in process)
@pytest.fixture
def moto_endpoint():
    moto, url = server.start_server()
    requests.post(f"{url}/moto-api/reset", timeout=10)  # moto's state is global to this process
    yield url
    moto.stop()


class StuckBodies(NullBodies):
    """Bodies that cannot be stopped (yet): the daemon must not leave them behind."""

    def stop(self, instance_id):
        raise OSError("device busy")


def _daemon(tmp_path, url: str, grace: float, layer: NullBodies | None = None) -> Daemon:
    files = StateFiles(tmp_path)
    server.ensure_image(url, REGION)
    files.add_region(REGION)
    return Daemon(files, layer or NullBodies(tmp_path), url, idle_grace=grace)


def test_idle_daemon_waits_for_a_first_lab_during_the_grace_period(tmp_path, moto_endpoint):
    patient = _daemon(tmp_path, moto_endpoint, grace=600)
    assert patient.one_pass() is False
    impatient = _daemon(tmp_path, moto_endpoint, grace=0)
    assert impatient.one_pass() is True


def test_daemon_stops_once_the_lab_it_served_is_gone(tmp_path, moto_endpoint):
    daemon = _daemon(tmp_path, moto_endpoint, grace=600)
    ec2 = server.ec2_client(moto_endpoint, REGION)
    iid = _launch(ec2, "controller")
    assert daemon.one_pass() is False
    assert iid in _recorded(tmp_path)
    ec2.terminate_instances(InstanceIds=[iid])
    assert daemon.one_pass() is True  # the pass removed the body, and a lab had existed
    assert _recorded(tmp_path) == {}


def test_daemon_stays_while_a_lab_still_owns_something_after_its_instances_went(tmp_path, moto_endpoint):
    """An expired lab's instances terminate themselves; its security group stays (until
    `lab down --expired`), and so must the API that holds it."""
    daemon = _daemon(tmp_path, moto_endpoint, grace=0)
    ec2 = server.ec2_client(moto_endpoint, REGION)
    iid = _launch(ec2, "controller")
    group = ec2.create_security_group(GroupName="rocky-lab", Description="lab", TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "lab:name", "Value": "rocky-lab"}]}])["GroupId"]
    daemon.one_pass()
    ec2.terminate_instances(InstanceIds=[iid])
    assert daemon.one_pass() is False and _recorded(tmp_path) == {}
    ec2.delete_security_group(GroupId=group)
    assert daemon.one_pass() is True


def test_daemon_stays_while_a_body_is_left_on_disk(tmp_path, moto_endpoint):
    daemon = _daemon(tmp_path, moto_endpoint, grace=0, layer=StuckBodies(tmp_path))
    ec2 = server.ec2_client(moto_endpoint, REGION)
    iid = _launch(ec2, "controller")
    daemon.one_pass()
    ec2.terminate_instances(InstanceIds=[iid])
    assert daemon.one_pass() is False
    assert iid in _recorded(tmp_path)


def test_a_new_client_resets_the_wait_for_a_lab(tmp_path, moto_endpoint):
    daemon = _daemon(tmp_path, moto_endpoint, grace=600)
    ec2 = server.ec2_client(moto_endpoint, REGION)
    iid = _launch(ec2, "controller")
    daemon.one_pass()
    ec2.terminate_instances(InstanceIds=[iid])
    time.sleep(0.01)
    StateFiles(tmp_path).add_region(REGION)  # `lab up` of a new lab came by just now
    assert daemon.one_pass() is False


# ------------------------------------------------------------------ passes when a client asks, not every second
def test_the_server_tells_about_client_requests_but_not_the_reconcilers_own(tmp_path):
    poked = []
    moto, url = server.start_server(on_request=lambda: poked.append(1))
    try:
        server.ec2_client(url, REGION, reconciler=True).describe_instances()
        assert poked == []
        server.ec2_client(url, REGION).describe_instances()
        assert poked == [1]
    finally:
        moto.stop()


def test_a_quiet_daemon_makes_no_api_calls_and_a_client_request_wakes_it_at_once(tmp_path, monkeypatch):
    import threading

    from twin import daemon as daemon_module

    monkeypatch.setattr(daemon_module, "QUIET_PASS_SECONDS", 60.0)
    poked = threading.Event()
    requests_seen: list[str] = []
    moto, url = server.start_server(on_request=poked.set)
    try:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        daemon = _daemon(tmp_path, url, grace=600)
        daemon.poked = poked
        original = daemon.one_pass
        daemon.one_pass = lambda: requests_seen.append("pass") or original()
        loop = threading.Thread(target=daemon.run, daemon=True)
        loop.start()
        time.sleep(3)
        assert len(requests_seen) <= 2, "the daemon polls although nothing asked it to"
        iid = _launch(server.ec2_client(url, REGION), "controller")
        deadline = time.monotonic() + 5
        while iid not in _recorded(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert iid in _recorded(tmp_path), "the launch did not wake the daemon"
        daemon.stop()
        loop.join(timeout=10)
        assert not loop.is_alive()
    finally:
        moto.stop()


def test_the_makefiles_host_packages_are_the_ones_the_twin_checks_for():
    """Two lists of the same packages: scripts/host-deps.sh installs, client.HOST_TOOLS checks.
    They must not drift apart (a package only one of them knows is a CI that installs
    too little, or a `lab up` that asks for what nobody installs)."""
    import re

    script = (Path(__file__).resolve().parent.parent / "scripts" / "host-deps.sh").read_text()
    installed = set(re.search(r"^need=\(([^)]*)\)", script, re.MULTILINE).group(1).split())
    assert installed == set(client.HOST_TOOLS.values())
