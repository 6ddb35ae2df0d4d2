"""What a user sees when a local file is missing or damaged: `lab plan`, `install`, `verify`, `ssh` say so in one line.

Exit 2, no EC2 client built, no host contacted, and the file left as it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from plan_fixtures import inventory

from lab import cli
from lab.keypair import generate_key
from lab.target import Target
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.secrets import ensure_secrets

CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A lab that is up here (config, inventory, secrets, key); EC2 clients and SSH connections are recorded."""
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG)
    paths = LabPaths.for_lab("rocky-lab")
    save_inventory(inventory().model_copy(update={"key_file": str(paths.key_file)}), paths.inventory)
    ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    generate_key(paths.key_file)
    reached = {"ec2": [], "ssh": [], "exec": []}
    monkeypatch.setattr(Target, "ec2_client", lambda self, region: reached["ec2"].append(region))
    monkeypatch.setattr("lab.ssh.fabric_factory", lambda inv: reached["ssh"].append(inv))
    monkeypatch.setattr("os.execvp", lambda file, argv: reached["exec"].append(argv))
    return {"config": str(config), "paths": paths, "reached": reached}


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", lab["config"], "--target", "aws", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


COMMANDS = {"plan": ("plan",), "install": ("install",), "verify": ("verify",), "ssh": ("ssh", "controller")}
DAMAGE = {
    "secrets missing": ("secrets", None, "is missing"),
    "secrets garbage": ("secrets", b"\x00\xff not yaml", "is damaged"),
    "secrets a list": ("secrets", b"- admin_pass\n", "is damaged"),
    "inventory truncated": ("inventory", "half", "is damaged"),
    "inventory not yaml": ("inventory", b"lab: [rocky\n", "is damaged"),
    "inventory wrong shape": ("inventory", b"- a\n- b\n", "is damaged"),
    "key missing": ("key_file", None, "is missing"),
    "key empty": ("key_file", b"", "is damaged"),
    "key garbage": ("key_file", b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64\n", "is damaged"),
    "key truncated": ("key_file", "half", "is damaged"),
}
# `lab plan` touches no host, so it needs no key; `lab ssh` needs no secrets.
NEEDS = {"plan": {"secrets", "inventory"}, "install": {"secrets", "inventory", "key_file"},
         "verify": {"secrets", "inventory", "key_file"}, "ssh": {"inventory", "key_file"}}


@pytest.mark.parametrize("command,damage", [(c, d) for c in sorted(COMMANDS) for d in sorted(DAMAGE)
                                            if DAMAGE[d][0] in NEEDS[c]])
def test_a_missing_or_damaged_state_file_is_one_line_exit_2_touching_nothing(lab, capsys, command, damage):
    which, content, expected = DAMAGE[damage]
    path: Path = getattr(lab["paths"], which)
    if content is None:
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] if content == "half" else content)
    before = path.read_bytes() if path.exists() else None

    code, _, err = run(lab, capsys, *COMMANDS[command])

    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"lab {command}: {path} {expected}")
    assert lab["reached"] == {"ec2": [], "ssh": [], "exec": []}
    assert (path.read_bytes() if path.exists() else None) == before
    if which == "key_file":
        assert f"restore it to {path}" in err and "`lab down`" in err
    if which == "secrets":
        assert "restore it from the checkout that made the lab" in err
    if which == "inventory":
        assert "lab up --no-ssh" in err


def test_ssh_puts_a_key_others_can_read_back_to_0600_with_a_line_and_goes_on(lab, capsys):
    key = lab["paths"].key_file
    os.chmod(key, 0o644)
    code, _, err = run(lab, capsys, "ssh", "controller")
    assert code == 0 and len(lab["reached"]["exec"]) == 1
    assert err == f"{key} was mode 0644: put back to 0600 (only you may read it)\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_plan_json_stays_json_when_a_file_is_put_back_to_0600(lab, capsys):
    import json

    os.chmod(lab["paths"].secrets, 0o640)
    code, out, err = run(lab, capsys, "plan", "--json")
    assert code == 0 and json.loads(out)
    assert "put back to 0600" in err
