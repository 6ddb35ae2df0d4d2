"""What the `lab run` / `lab copy` / `lab logs` tests share (no tests here): a lab that is up on disk,
and hosts that are fakes, never a network.

`up_lab` leaves what `lab up` leaves in .lab/rocky-lab/ (inventory, secrets with one known
value, the key) and makes lab.ssh.fabric_factory hand out the test's hosts by node name.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from fakes import FakeRemote
from plan_fixtures import inventory

from lab.keypair import generate_key
from lab.ssh import sudo_wrap
from labcore.errors import RemoteError
from labcore.inventory import Inventory, save_inventory
from labcore.paths import LabPaths, write_atomic
from labcore.remote import RunResult
from labcore.secrets import generate

CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()
SECRET = "0ps5ecret0ps5ecret"  # the lab's admin password in these tests: never in what a user sees


@dataclass
class SudoRemote(FakeRemote):
    """A FakeRemote that also records how each command was asked for (sudo, timeout)."""

    asked: list[dict] = field(default_factory=list)

    def run(self, command, *, sudo=True, stdin=None, timeout=None):
        self.asked.append({"sudo": sudo, "timeout": timeout, "stdin": stdin})
        return super().run(command, sudo=sudo, stdin=stdin, timeout=timeout)


class Unreachable:
    """A host whose SSH fails as FabricRemote reports it."""

    def __init__(self, name: str, why: str = "SSH failed: [Errno 113] No route to host"):
        self.name, self.why, self.calls, self.closed = name, why, 0, False

    def run(self, command, *, sudo=True, stdin=None, timeout=None):
        self.calls += 1
        raise RemoteError(f"{self.name} (10.0.0.52): {self.why}; check that it runs (`lab status`)")

    def close(self):
        self.closed = True


class AsSshdWould:
    """A host reached as FabricRemote reaches one: the command wrapped by sudo_wrap (the script on stdin,
    ahead of its own input), run by sh as sshd would, without the sudo (these tests are not root)."""

    def __init__(self, name: str):
        self.name, self.calls = name, []

    def run(self, command, *, sudo=True, stdin=None, timeout=None):
        argv, data = sudo_wrap(command, stdin)
        self.calls.append(argv)
        done = subprocess.run(["sh", "-c", argv.replace("sudo -n ", "", 1)], input=data, capture_output=True,
                              text=True, timeout=60)
        return RunResult(done.returncode, done.stdout, done.stderr)

    def close(self):
        pass



@dataclass
class Lab:
    config: str
    paths: LabPaths
    inventory: Inventory
    hosts: dict

    def argv(self, *words: str) -> list[str]:
        return ["--config", self.config, *words]


def up_lab(tmp_path, monkeypatch, hosts: dict, os_name: str = "ubuntu-18.04") -> Lab:
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG)
    paths = LabPaths.for_lab("rocky-lab").ensure()
    inv = inventory(os_name)
    save_inventory(inv, paths.inventory)
    values = dict(generate().values, admin_pass=SECRET)
    write_atomic(paths.secrets, yaml.safe_dump(values, sort_keys=True))
    generate_key(paths.key_file)
    monkeypatch.setattr("lab.ssh.fabric_factory", lambda _inventory, warn=None: (lambda node: hosts[node.name]))
    return Lab(str(config), paths, inv, hosts)
