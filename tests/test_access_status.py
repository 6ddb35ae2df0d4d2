"""The lab's CA lives as long as the lab, and `lab status` says how to reach its dashboard.

Through the CLI against a moto server, as on AWS: `lab up` makes the CA once (a Keystone lab
only), `lab status` of an installed lab names the dashboard's URL, who logs in and where the
password is (never the password), and `lab down` takes the CA with the lab's other state.
`lab install` needs hosts, so the tests write what it writes here (_write_rc_files).
"""

from __future__ import annotations

import json
import os
import stat

import boto3
from test_cli_aws import config_named, endpoint  # noqa: F401 - endpoint is a fixture

from lab import cli
from lab.commands.install import _write_rc_files
from labcore.inventory import load_inventory
from labcore.paths import LabPaths
from labcore.secrets import load_secrets


def lab(config: str, *argv: str) -> int:
    return cli.main([*argv, "--config", config, "--target", "aws"])


def test_up_makes_the_ca_once_status_shows_the_dashboard_and_down_takes_the_ca(endpoint, tmp_path, capsys):
    config = config_named(tmp_path, endpoint, "door-lab")
    paths = LabPaths.for_lab("door-lab")
    assert lab(config, "up", "--no-ssh") == 0
    out = capsys.readouterr().out
    assert out.count("the lab's CA made") == 1 and str(paths.ca_cert) in out
    assert stat.S_IMODE(os.stat(paths.ca_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.ca_cert).st_mode) == 0o644
    first = paths.ca_key.read_bytes()
    assert lab(config, "up", "--no-ssh") == 0
    assert "CA made" not in capsys.readouterr().out and paths.ca_key.read_bytes() == first

    assert lab(config, "status") == 0
    assert "dashboard" not in capsys.readouterr().out  # not installed yet

    inventory = load_inventory(paths.inventory)
    secrets = load_secrets(paths.secrets, print)
    _write_rc_files(paths, inventory, secrets)
    assert lab(config, "status") == 0
    out = capsys.readouterr().out
    ec2 = boto3.client("ec2", region_name="ap-northeast-2", endpoint_url=endpoint)
    controller = next(i for r in ec2.describe_instances(Filters=[{"Name": "tag:lab:name", "Values": ["door-lab"]},
                                                                  {"Name": "tag:lab:node", "Values": ["controller"]}])
                      ["Reservations"] for i in r["Instances"])
    url = f"https://{controller['PublicDnsName']}/dashboard/"
    assert f"dashboard: {url}" in out and str(paths.ca_cert) in out
    assert (f"log in as demo: domain Default, user myuser, password: OS_PASSWORD in {paths.openrc('demo')}; "
            f"secrets.yaml: demo_pass") in out
    assert f"log in as admin: domain Default, user admin, password: OS_PASSWORD in {paths.openrc('admin')}" in out
    assert not any(value in out for value in secrets.values.values())

    assert lab(config, "status", "--json") == 0
    access = json.loads(capsys.readouterr().out)["access"]
    assert access["dashboard"] == url and [login["user"] for login in access["logins"]] == ["myuser", "admin"]

    assert lab(config, "down") == 0
    capsys.readouterr()
    assert not paths.ca_key.exists() and not paths.ca_cert.exists() and not paths.openrc("demo").exists()


def test_a_tempauth_lab_gets_no_ca_and_status_says_it_has_no_front_door(endpoint, tmp_path, capsys):
    config = config_named(tmp_path, endpoint, "swift-door-lab")
    with open(config, "a") as handle:
        handle.write("auth: tempauth\n")
    paths = LabPaths.for_lab("swift-door-lab")
    assert lab(config, "up", "--no-ssh") == 0
    assert "CA" not in capsys.readouterr().out
    assert not paths.ca_key.exists() and not paths.ca_cert.exists()
    _write_rc_files(paths, load_inventory(paths.inventory), load_secrets(paths.secrets, print))
    assert lab(config, "status") == 0
    out = capsys.readouterr().out
    assert "no dashboard or HTTPS front door (443 stays closed)" in out and "log in as" not in out
    assert lab(config, "down") == 0


def test_forget_takes_the_ca_and_the_front_doors_files_and_keeps_the_rest(tmp_path):
    from labcore.front_door_cert import paths as door_files

    paths = LabPaths.for_lab("kept-lab").ensure()
    ours = [paths.ca_key, paths.ca_cert, *door_files(paths.root)]
    for path in ours:
        path.write_text("x")
    (paths.root / "my-own.pem").write_text("a person's certificate\n")
    paths.logs.mkdir()
    assert sorted(paths.forget()) == sorted(ours)
    assert sorted(p.name for p in paths.root.iterdir()) == ["logs", "my-own.pem"]
