"""`lab plan` (the guide's words), `--shell` (the raw text), `--json` (masked); no host is touched."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from plan_fixtures import inventory

from lab import cli
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.secrets import ensure_secrets

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "lab.yaml")


def saved_lab(os_name: str = "ubuntu-18.04"):
    paths = LabPaths.for_lab("rocky-lab").ensure()
    save_inventory(inventory(os_name), paths.inventory)
    return paths, ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)


def lab_plan(capsys, *flags: str) -> str:
    assert cli.main(["plan", *flags, "--config", CONFIG, "--target", "aws"]) == 0
    return capsys.readouterr().out


def test_lab_plan_json_lists_every_step_per_host_with_its_actions_and_secrets_masked(capsys):
    paths, secrets = saved_lab()
    rows = json.loads(lab_plan(capsys, "--json"))
    assert {r["host"] for r in rows} == {"controller", "object1", "object2"}
    for row in rows:
        assert {"host", "phase", "step", "guide", "after", "actions"} <= set(row)
        assert all("action" in a for a in row["actions"])
    files = [a for r in rows for a in r["actions"] if a["action"] == "FileSpec"]
    assert files and all({"path", "mode", "owner", "content"} <= set(f) for f in files)
    shown = json.dumps(rows)
    for value in secrets.values.values():
        assert value not in shown
    assert "35357" not in shown


def test_lab_plan_says_each_step_in_the_guides_words_with_its_section(capsys):
    saved_lab("debian-12")
    out = lab_plan(capsys)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 200
    assert "phase base (9 steps)" in out
    assert "phase controller-services (6 steps; after packages on the same host)" in out
    assert "phase keystone (4 steps; after controller-services, service-packages, front-door on the same host)" in out
    for line in ("    - install packages chrony",
                 "    - write /etc/chrony/chrony.conf (0644 root:root)",
                 "    - create the openstack user `swift` unless it exists; set its password again when the secret "
                 "changes",
                 "      guide: https://docs.openstack.org/swift/rocky/install/initial-rings.html",
                 "    - wait until keystone answers on :5000 (at most 60 s)"):
        assert line in lines, line


def test_lab_plan_shell_is_the_raw_text_every_line_of_it_posix_sh(capsys):
    paths, secrets = saved_lab("ubuntu-18.04")
    out = lab_plan(capsys, "--shell")
    assert "# ---- base/hosts-file on controller, object1, object2" in out
    assert "add-apt-repository -y cloud-archive:rocky" in out
    assert all(value not in out for value in secrets.values.values()) and "********" in out
    shell = "\n".join(line.split("    # stdin:")[0].split("    # asked until")[0] for line in out.splitlines())
    result = subprocess.run(["dash", "-n", "-c", shell], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_lab_plan_json_and_shell_do_not_go_together(capsys):
    saved_lab()
    with pytest.raises(SystemExit) as stopped:
        cli.main(["plan", "--json", "--shell", "--config", CONFIG, "--target", "aws"])
    assert stopped.value.code == 2
    assert re.search(r"not allowed with argument", capsys.readouterr().err)


def test_lab_plan_without_an_inventory_says_to_run_lab_up_first(capsys):
    assert cli.main(["plan", "--config", CONFIG, "--target", "aws"]) == 2
    err = capsys.readouterr().err
    assert "lab up" in err and len(err.strip().splitlines()) == 1
