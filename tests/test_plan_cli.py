"""`lab plan --json`: the install plan for the saved inventory, secrets masked, no host touched."""

from __future__ import annotations

import json
import os
from pathlib import Path

from plan_fixtures import inventory

from lab import cli
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.secrets import load_or_create

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "lab.yaml")


def test_lab_plan_json_lists_every_step_per_host_with_secrets_masked(capsys):
    paths = LabPaths.for_lab("rocky-lab").ensure()
    save_inventory(inventory("ubuntu-18.04"), paths.inventory)
    assert cli.main(["plan", "--json", "--config", CONFIG, "--target", "aws"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["host"] for r in rows} == {"controller", "object1", "object2"}
    for row in rows:
        assert {"host", "phase", "step", "commands", "files"} <= set(row)
        assert all(isinstance(c, str) for c in row["commands"])
        for f in row["files"]:
            assert {"path", "mode", "owner", "content"} <= set(f)
    shown = json.dumps(rows)
    secrets = load_or_create(paths.secrets)
    assert oct(os.stat(paths.secrets).st_mode & 0o777) == "0o600"
    for value in secrets.values.values():
        assert value not in shown
    assert "35357" not in shown


def test_lab_plan_without_an_inventory_says_to_run_lab_up_first(capsys):
    assert cli.main(["plan", "--config", CONFIG, "--target", "aws"]) == 2
    err = capsys.readouterr().err
    assert "lab up" in err and len(err.strip().splitlines()) == 1


def test_lab_plan_says_which_phases_each_phase_waits_for(capsys):
    paths = LabPaths.for_lab("rocky-lab").ensure()
    save_inventory(inventory("debian-12"), paths.inventory)
    assert cli.main(["plan", "--config", CONFIG, "--target", "aws"]) == 0
    out = capsys.readouterr().out
    assert "phase base (5 steps)" in out
    assert "phase controller-services (5 steps; after packages on the same host)" in out
    assert "phase keystone (5 steps; after controller-services, service-packages on the same host)" in out
