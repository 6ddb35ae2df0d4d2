"""The twin's state files are validated when read: a damaged one is one line naming the file
and saying that `lab down` cleans up (exit 1), never a traceback, and `lab down` does."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lab import cli
from twin import client, server
from twin.bodies import HostBodies
from twin.errors import TwinError, TwinStateError
from twin.layers import layers_for_cleanup, open_body_layer
from twin.nullbodies import NullBodies
from twin.state import StateFiles
from twin.target import TwinTarget, state_dir

REGION = "ap-northeast-2"
CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "lab.yaml")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz"


def _one_line_naming(exc: TwinStateError, path: Path) -> None:
    message = str(exc)
    assert str(path) in message and "`lab down`" in message and "\n" not in message
    assert exc.exit_code == 1


@pytest.mark.parametrize("name, content, read", [
    ("endpoint", "http://example.org:80\n", StateFiles.read_endpoint),
    ("endpoint", "\x00\x01garbage", StateFiles.read_endpoint),
    ("daemon.pid", "twelve\n", StateFiles.read_pid),
    ("regions", "ap-northeast-2\n<html>\n", StateFiles.read_regions),
    ("body-layer", "containers\n", StateFiles.read_body_layer),
])
def test_a_damaged_state_file_is_one_line_naming_it(tmp_path, name, content, read):
    (tmp_path / name).write_text(content)
    with pytest.raises(TwinStateError) as damaged:
        read(StateFiles(tmp_path))
    _one_line_naming(damaged.value, tmp_path / name)


def test_missing_state_files_mean_no_daemon_rather_than_damage(tmp_path):
    files = StateFiles(tmp_path)
    assert (files.read_endpoint(), files.read_pid(), files.read_regions(), files.read_body_layer()) == (
        None, None, [], "host")


@pytest.mark.parametrize("content", ["{", '{"instance_id": "i-1"}', '{"instance_id": 7, "lab": []}', "\udcff"])
def test_a_damaged_body_json_is_one_line_naming_it(tmp_path, content):
    saved = tmp_path / "bodies" / "i-0abc" / "body.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(content, errors="surrogateescape")
    with pytest.raises(TwinStateError) as damaged:
        HostBodies(tmp_path).bodies()
    _one_line_naming(damaged.value, saved)


@pytest.mark.parametrize("name", ["null-bodies.json", "null-networks.json"])
def test_a_damaged_null_layer_file_is_one_line_naming_it(tmp_path, name):
    (tmp_path / name).write_text('{"i-1": {"body": "not a body"}}' if name == "null-bodies.json" else "[1, 2")
    layer = NullBodies(tmp_path)
    with pytest.raises(TwinStateError) as damaged:
        layer.bodies() if name == "null-bodies.json" else layer.ensure_network("172.31.0.0/20")
    _one_line_naming(damaged.value, tmp_path / name)


def test_a_damaged_body_layer_file_still_lets_the_clean_up_run(tmp_path):
    (tmp_path / "body-layer").write_text("???\n")
    (tmp_path / "null-bodies.json").write_text("{}")
    with pytest.raises(TwinStateError):
        open_body_layer(tmp_path)
    layers = layers_for_cleanup(tmp_path)
    assert [type(layer).__name__ for layer in layers] == ["NullBodies"]  # no host body left a trace
    assert any("null-bodies.json" in line for layer in layers for line in layer.teardown_all())


# ------------------------------------------------------------------ through the commands
def _launch(url: str) -> str:
    ec2 = server.ec2_client(url, REGION)
    image = server.ensure_image(url, REGION)
    ec2.import_key_pair(KeyName="rocky-lab", PublicKeyMaterial=KEY.encode())
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="rocky-lab",
                             SubnetId=ec2.describe_subnets()["Subnets"][0]["SubnetId"],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": "controller"}]}],
                             )["Instances"][0]["InstanceId"]


def test_a_damaged_endpoint_stops_up_with_one_line_and_down_cleans_up(capsys):
    folder = state_dir()
    client.ensure_running(folder, REGION, bodies="null")
    pid = client.daemon_pid(folder)
    try:
        (folder / "endpoint").write_text("garbage\n")
        with pytest.raises(TwinStateError) as damaged:
            client.ensure_running(folder, REGION, bodies="null")  # what `lab up` does after its host checks
        _one_line_naming(damaged.value, folder / "endpoint")
        assert client.daemon_pid(folder) == pid, "a damaged file must not make up start a second daemon"

        assert cli.main(["--config", CONFIG, "--target", "sim", "down"]) == 0
        out, err = capsys.readouterr()
        assert err == "" and "damaged" in out and "killed the twin's unresponsive daemon" in out
        assert client.daemon_pid(folder) is None
        assert sorted(p.name for p in folder.iterdir()) == ["daemon.log", "start.lock"]
    finally:
        if client.daemon_pid(folder) is not None:
            os.kill(pid, signal.SIGKILL)


def test_a_damaged_pid_file_does_not_hide_the_daemon(tmp_path):
    folder = tmp_path / "sim"
    url = client.ensure_running(folder, REGION, bodies="null")
    pid = client.daemon_pid(folder)
    try:
        (folder / "daemon.pid").write_text("not a pid\n")
        assert client.daemon_pid(folder) == pid  # found by its command line
        assert client.endpoint(folder) == url
    finally:
        client.stop(folder)
    assert client.daemon_pid(folder) is None


def test_down_after_the_daemon_died_says_what_it_removed_on_stdout(capsys):
    folder = state_dir()
    url = client.ensure_running(folder, REGION, bodies="null")
    ec2 = server.ec2_client(url, REGION)
    client.wait_for_bodies(ec2, [_launch(url)], folder, timeout=20)
    os.kill(client.daemon_pid(folder), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while client.daemon_pid(folder) is not None and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not TwinTarget().connect()
    assert cli.main(["--config", CONFIG, "--target", "sim", "down"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "null-bodies.json" in out
    assert not (folder / "null-bodies.json").exists() and not (folder / "endpoint").exists()


# ---------------------------------------------------------------- one twin with real bodies per machine
def _pretend_daemon(state: Path, bodies: str):
    """A process whose command line is a twin daemon's (it only sleeps): what another lab home's twin shows."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "twin.daemon",
                             "--state-dir", str(state), "--region", REGION, "--bodies", bodies])


def test_a_second_twin_with_real_bodies_is_refused_naming_the_lab_home_that_runs_one(tmp_path):
    other = _pretend_daemon(tmp_path / "other" / ".lab" / "sim", "host")
    try:
        time.sleep(0.2)  # its command line is there once python has started
        mine = tmp_path / "mine" / ".lab" / "sim"
        with pytest.raises(TwinError) as refused:
            client.ensure_running(mine, REGION)
    finally:
        other.kill()
        other.wait()
    message = str(refused.value)
    assert message.startswith(f"the twin already runs on this machine for the lab home {tmp_path / 'other' / '.lab'} "
                              f"(daemon pid {other.pid})")
    assert "take that lab down first" in message and "\n" not in message and refused.value.exit_code == 1
    assert not (mine / "daemon.log").exists() and not (mine / "endpoint").exists()  # nothing was started


def test_only_other_folders_daemons_with_real_bodies_count(tmp_path):
    from twin.state import host_twins_elsewhere

    nulls = _pretend_daemon(tmp_path / "null-home" / "sim", "null")
    ours = _pretend_daemon(tmp_path / "mine" / "sim", "host")
    try:
        time.sleep(0.2)
        mine = {pid for pid, _ in host_twins_elsewhere(tmp_path / "mine" / "sim")}
        elsewhere = host_twins_elsewhere(tmp_path / "elsewhere" / "sim")
        assert ours.pid not in mine and nulls.pid not in mine
        assert (ours.pid, str(tmp_path / "mine" / "sim")) in elsewhere and nulls.pid not in dict(elsewhere)
    finally:
        for proc in (nulls, ours):
            proc.kill()
            proc.wait()
