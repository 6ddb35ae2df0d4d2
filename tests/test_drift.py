"""A config `lab up` has not taken is never passed over in silence (lab/drift.py).

Each difference between the config and the inventory is named in one line with the command
that takes it; install, verify and reboot stop there (exit 1) before any SSH, plan and
install --check go on with the line as a warning.
"""

from __future__ import annotations

import pytest
from plan_fixtures import inventory
from test_ops_support import CONFIG, up_lab

from lab import cli
from lab.config import parse_config
from lab.drift import differences, drift_line
from labcore.errors import RemoteError
from labcore.inventory import save_inventory

SHRUNK = CONFIG.replace("  object2: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}\n", "")
GROWN = CONFIG + "  object3: {role: object, type: t3.medium, volumes: {sdb: 10}}\n"
MORE_VOLUMES = CONFIG.replace("object1: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}",
                              "object1: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10, sdd: 10}}")
FEWER_VOLUMES = CONFIG.replace("object2: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}",
                               "object2: {role: object, type: t3.medium, volumes: {sdb: 10}}")
DEBIAN = CONFIG.replace("os: ubuntu-18.04", "os: debian-12")
TEMPAUTH = CONFIG + "auth: tempauth\n"
GUIDE_PIPELINE = CONFIG + "swift: {pipeline: guide}\n"


def test_the_config_lab_up_applied_has_no_difference():
    assert differences(parse_config(CONFIG), inventory()) == []
    assert drift_line(parse_config(CONFIG), inventory(), "lab.yaml") is None


@pytest.mark.parametrize("text, expected", [
    (SHRUNK, ["node object2 removed"]),
    (GROWN, ["node object3 added"]),
    (MORE_VOLUMES, ["volume object1/sdd added"]),
    (FEWER_VOLUMES, ["volume object2/sdc removed"]),
    (DEBIAN, ["os ubuntu-18.04 -> debian-12"]),
    (TEMPAUTH, ["auth keystone -> tempauth"]),
    (GUIDE_PIPELINE, ["swift pipeline full -> guide"]),
])
def test_each_difference_is_named(text, expected):
    assert differences(parse_config(text), inventory()) == expected


def test_the_line_names_every_difference_and_lab_up():
    spec = parse_config(SHRUNK.replace("object1: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}",
                                       "object1: {role: object, type: t3.medium, volumes: {sdb: 10}}"))
    line = drift_line(spec, inventory(), "configs/lab.yaml")
    assert line == ("configs/lab.yaml differs from what `lab up` applied to lab rocky-lab: node object2 removed, "
                    "volume object1/sdc removed; `lab up` takes it (then `lab install`)")


def test_an_auth_change_is_not_offered_to_lab_up_but_refused():
    line = drift_line(parse_config(TEMPAUTH), inventory(), "lab.yaml")
    assert "auth keystone -> tempauth" in line and "does not switch" in line and "lab down" in line


def test_what_lab_up_already_marked_leaving_is_no_difference():
    inv = inventory()
    leaving = inv.model_copy(update={"nodes": [n.model_copy(update={"leaving": n.name == "object2"})
                                               for n in inv.nodes]})
    assert differences(parse_config(SHRUNK), leaving) == []
    one = leaving.nodes[1]
    gone = one.model_copy(update={"volumes": [v.model_copy(update={"leaving": v.name == "sdc"}) for v in one.volumes]})
    fewer = leaving.model_copy(update={"nodes": [leaving.nodes[0], gone, leaving.nodes[2]]})
    spec = parse_config(SHRUNK.replace("object1: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}",
                                       "object1: {role: object, type: t3.medium, volumes: {sdb: 10}}"))
    assert differences(spec, fewer) == []


def test_the_twins_own_os_is_not_a_difference():
    """On the twin the hosts run debian-12 whatever `os:` says: the target decides, not the config."""
    assert differences(parse_config(CONFIG), inventory("debian-12"), host_os="debian-12") == []


# ------------------------------------------------------------------ the commands
class NoSsh:
    def __init__(self):
        self.asked = []

    def __call__(self, node):
        self.asked.append(node.name)
        raise RemoteError(f"{node.name}: this test allows no SSH")


@pytest.fixture
def shrunk_lab(tmp_path, monkeypatch):
    lab = up_lab(tmp_path, monkeypatch, {})
    no_ssh = NoSsh()
    monkeypatch.setattr("lab.ssh.fabric_factory", lambda _inventory, warn=None: no_ssh)
    (tmp_path / "lab.yaml").write_text(SHRUNK)
    lab.no_ssh = no_ssh
    return lab


@pytest.mark.parametrize("command", [["install"], ["verify"], ["reboot"], ["reboot", "object1"]])
def test_install_verify_and_reboot_stop_before_any_host_naming_the_difference(shrunk_lab, capsys, command):
    assert cli.main(shrunk_lab.argv(*command, "--target", "aws")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "node object2 removed; `lab up` takes it (then `lab install`); nothing was changed on any host" in err
    assert shrunk_lab.no_ssh.asked == []


def test_plan_goes_on_with_the_line_as_a_warning(shrunk_lab, capsys):
    assert cli.main(shrunk_lab.argv("plan", "--target", "aws")) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: ") and "node object2 removed; `lab up` takes it" in err
    assert "object2" in out  # the plan is the inventory's: what `lab install` would do now


def test_plan_json_keeps_stdout_json_and_warns_on_stderr(shrunk_lab, capsys):
    import json

    assert cli.main(shrunk_lab.argv("plan", "--json", "--target", "aws")) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert "node object2 removed" in err


def test_install_check_warns_then_reads_the_hosts(shrunk_lab, capsys):
    """--check changes nothing, so it goes on (here to the first host, which this test refuses)."""
    cli.main(shrunk_lab.argv("install", "--check", "--target", "aws"))
    err = capsys.readouterr().err
    assert "warning: " in err and "node object2 removed" in err
    assert shrunk_lab.no_ssh.asked


def test_lab_up_refuses_to_switch_an_existing_lab_between_keystone_and_tempauth(tmp_path, monkeypatch, capsys):
    lab = up_lab(tmp_path, monkeypatch, {})
    (tmp_path / "lab.yaml").write_text(TEMPAUTH)
    assert cli.main(lab.argv("up", "--dry-run", "--target", "aws")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "auth: tempauth, but lab rocky-lab was made with auth: keystone; a lab does not switch" in err


def test_lab_up_of_a_new_tempauth_lab_is_not_refused(tmp_path, monkeypatch, capsys):
    lab = up_lab(tmp_path, monkeypatch, {})
    lab.paths.inventory.unlink()
    (tmp_path / "lab.yaml").write_text(TEMPAUTH)
    assert cli.main(lab.argv("up", "--dry-run", "--target", "aws")) == 0


def test_an_inventory_of_a_tempauth_lab_keeps_its_mode(tmp_path, monkeypatch, capsys):
    lab = up_lab(tmp_path, monkeypatch, {})
    save_inventory(inventory().model_copy(update={"auth": "tempauth"}), lab.paths.inventory)
    assert cli.main(lab.argv("up", "--dry-run", "--target", "aws")) == 2
    assert "was made with auth: tempauth" in capsys.readouterr().err
