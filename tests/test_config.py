"""A bad lab description costs nothing: one line naming file and key, exit 2, no EC2 call."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lab import cli
from lab.config import ConfigError, load_config, parse_config
from lab.target import Target

GOOD = """\
name: rocky-lab
region: ap-northeast-2
nodes:
  controller: {role: controller, type: t3.large}
  object1: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}
"""

BAD_CONFIGS = {
    "yaml syntax": ("name: [rocky\n", "line", "invalid YAML"),
    "unknown key": (GOOD + "colour: blue\n", "colour", "unknown key"),
    "unknown nested key": (GOOD.replace("type: t3.large", "type: t3.large, disk: 3"), "nodes.controller.disk",
                           "unknown key"),
    "missing role": (GOOD.replace("role: controller, ", ""), "nodes.controller.role", "required"),
    "unknown role": (GOOD.replace("role: object", "role: compute"), "nodes.object1.role", "'controller' or 'object'"),
    "no controller": (GOOD.replace("role: controller", "role: object"), "nodes", "exactly one node with role controller"),
    "two controllers": (GOOD.replace("role: object", "role: controller").replace(", volumes: {sdb: 10, sdc: 10}", ""),
                        "nodes", "exactly one"),
    "duplicate node names": (GOOD + "  object1: {role: object, type: t3.medium}\n", "line 6", "duplicate key 'object1'"),
    "volume size zero": (GOOD.replace("sdb: 10", "sdb: 0"), "nodes.object1.volumes", "size in GiB"),
    "negative volume size": (GOOD.replace("sdb: 10", "sdb: -5"), "nodes.object1.volumes", "size in GiB"),
    "volume size not a number": (GOOD.replace("sdb: 10", "sdb: big"), "nodes.object1.volumes", "size in GiB"),
    "invalid cidr": (GOOD + "ssh: {allow_from: [10.0.0.0/33]}\n", "ssh.allow_from", "IPv4 CIDR"),
    "ssh open to the world": (GOOD + "ssh: {allow_from: [0.0.0.0/0]}\n", "ssh.allow_from", "whole internet"),
    "volumes on the controller": (GOOD.replace("type: t3.large}", "type: t3.large, volumes: {sdb: 5}}"),
                                  "nodes.controller", "role object"),
    "bad node name": (GOOD.replace("object1:", "Object_1:"), "nodes", "hostnames"),
    "missing region": (GOOD.replace("region: ap-northeast-2\n", ""), "region", "required"),
    "unsupported release": (GOOD + "openstack: {release: stein}\n", "openstack.release", "'rocky'"),
    "unsupported os": (GOOD + "openstack: {os: centos-7}\n", "openstack.os", "ubuntu-18.04"),
    "reserved tag": (GOOD + "tags: {'lab:name': other}\n", "tags", "reserved"),
    "reserved lab name": (GOOD.replace("name: rocky-lab", "name: sim"), "name", "reserved"),
    "not a mapping": ("- just\n- a list\n", "", "expected a mapping"),
    "unknown region": (GOOD.replace("ap-northeast-2", "ap-northeast-9"), "region", "did you mean"),
    "ssh open to all of IPv4 in two halves": (GOOD + "ssh: {allow_from: [0.0.0.0/1, 128.0.0.0/1]}\n",
                                              "ssh.allow_from", "more than a /8"),
    "allow_wide not a boolean": (GOOD + "ssh: {allow_wide: 'please', allow_from: [0.0.0.0/0]}\n", "ssh.allow_wide",
                                 "boolean"),
    "expires_after without a unit": (GOOD + "expires_after: 8\n", "expires_after", "say the unit"),
    "expires_after negative": (GOOD + "expires_after: -1h\n", "expires_after", "before it starts"),
    "expires_after over 30 days": (GOOD + "expires_after: 31d\n", "expires_after", "longer than 30 days"),
    "unknown swift pipeline": (GOOD + "swift: {pipeline: fast}\n", "swift.pipeline", "'full' or 'guide'"),
    "expires_after unparsable": (GOOD + "expires_after: soon\n", "expires_after", "such as 45m, 8h"),
}


def test_default_config_is_the_guides_reference_layout():
    spec = load_config(Path(__file__).parent.parent / "configs" / "lab.yaml")
    assert spec.controller == "controller"
    assert spec.nodes_with_role("object") == ["object1", "object2"]
    assert {n: s.volumes for n, s in spec.nodes.items() if s.volumes} == {
        "object1": {"sdb": 10, "sdc": 10}, "object2": {"sdb": 10, "sdc": 10}}
    assert (spec.openstack.release, spec.openstack.os) == ("rocky", "ubuntu-18.04")
    assert spec.ssh.allow_from == ["auto"] and spec.volume_type == "gp3"
    assert (spec.expires_after, spec.expiry) == ("8h", timedelta(hours=8)) and spec.ssh.allow_wide is False
    assert spec.swift.pipeline == "full"


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_names_file_and_key(case):
    text, key, expected = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "configs/broken.yaml")
    message = str(raised.value)
    assert message.startswith("configs/broken.yaml: ")
    assert key in message and expected in message
    assert "\n" not in message


@pytest.fixture
def ec2_calls(monkeypatch):
    """Every EC2 client the code would build; a bad config must build none."""
    calls = []
    monkeypatch.setattr(Target, "ec2_client", lambda self, region: calls.append(region))
    return calls


@pytest.mark.parametrize("command", ["up", "down", "status"])
@pytest.mark.parametrize("case", ["unknown key", "volume size zero", "no controller", "yaml syntax", "unknown region",
                                  "ssh open to all of IPv4 in two halves", "expires_after over 30 days"])
def test_bad_config_exits_2_with_no_ec2_call(tmp_path, capsys, ec2_calls, command, case):
    code, err = run_lab(tmp_path, capsys, BAD_CONFIGS[case][0], command)
    assert code == 2
    assert ec2_calls == []
    assert err.count("\n") == 0 and str(tmp_path / "lab.yaml") in err
    assert not (tmp_path / ".lab" / "rocky-lab").exists()


def run_lab(tmp_path: Path, capsys, config: str | bytes, command: str = "up") -> tuple[int, str]:
    """`lab --target aws --config <tmp>/lab.yaml COMMAND` with config as the file; (exit code, stderr stripped).

    tests/test_config_*.py use it with the ec2_calls fixture (imported from here).
    """
    path = tmp_path / "lab.yaml"
    path.write_bytes(config if isinstance(config, bytes) else config.encode())
    code = cli.main(["--target", "aws", "--config", str(path), command])
    return code, capsys.readouterr().err.strip()


def test_missing_config_file_is_one_line_exit_2(tmp_path, capsys, ec2_calls):
    code = cli.main(["up", "--target", "aws", "--config", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and ec2_calls == []
    assert "nope.yaml" in err and "file not found" in err and "\n" not in err


def test_options_work_before_and_after_the_command(tmp_path):
    parser = cli.build_parser()
    before = parser.parse_args(["--target", "aws", "-c", "x.yaml", "status"])
    after = parser.parse_args(["status", "--target", "aws", "-c", "x.yaml", "--json"])
    assert (before.target, before.config) == (after.target, after.config) == ("aws", "x.yaml")


def test_sim_up_without_root_says_in_one_line_what_it_needs(capsys, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    config = str(Path(__file__).resolve().parent.parent / "configs" / "lab.yaml")
    assert cli.main(["up", "--config", config, "--target", "sim"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs root" in err and "TARGET=aws" in err
