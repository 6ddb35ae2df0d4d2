"""`lab ssh NODE [-- CMD]` hands over to OpenSSH with the lab's ssh_config, as the README says."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_fixtures import inventory

from lab import cli
from lab.keypair import generate_key
from labcore.inventory import save_inventory
from labcore.paths import LabPaths

CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()


@pytest.fixture
def lab(tmp_path, monkeypatch) -> dict:
    """A lab that is up (config and inventory on disk); os.execvp records instead of replacing the process."""
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG)
    paths = LabPaths.for_lab("rocky-lab").ensure()
    save_inventory(inventory(), paths.inventory)
    generate_key(paths.key_file)  # `lab ssh` requires the lab's key, as `lab up` left it
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("os.execvp", lambda file, argv: calls.append((file, list(argv))))
    return {"config": str(config), "paths": paths, "calls": calls}


def test_lab_ssh_runs_the_command_on_the_node_through_the_labs_ssh_config(lab):
    assert cli.main(["--config", lab["config"], "ssh", "object1", "--", "df", "-h", "/srv/node"]) == 0
    ssh_config = str(lab["paths"].ssh_config)
    assert ssh_config.endswith(".lab/rocky-lab/ssh_config")
    assert lab["calls"] == [("ssh", ["ssh", "-F", ssh_config, "object1", "df", "-h", "/srv/node"])]


def test_lab_ssh_without_a_command_opens_a_shell_on_the_node(lab):
    assert cli.main(["--config", lab["config"], "ssh", "controller"]) == 0
    assert lab["calls"] == [("ssh", ["ssh", "-F", str(lab["paths"].ssh_config), "controller"])]


def test_lab_ssh_to_an_unknown_node_exits_2_naming_the_nodes_and_runs_nothing(lab, capsys):
    assert cli.main(["--config", lab["config"], "ssh", "object9", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no node named 'object9'" in err and "controller, object1, object2" in err
    assert lab["calls"] == []
