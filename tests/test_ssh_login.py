"""Who `lab up` logs in as, and what it says when SSH does not let it in (issue 20): the config's user
over the lab:ssh-user tag, a refused login ending the run at once in one line, a silent host naming
the addresses the security group allows."""

from __future__ import annotations

import time

import paramiko
import pytest
from launch_fixtures import CALLER, CONFIG, ec2, lab_instances, moto_images, run_up, spec_with, tags  # noqa: F401
from plan_fixtures import inventory

from lab import cli, ssh
from lab.config import parse_config
from lab.ssh import FabricRemote, LoginRefused, wait_for_ssh
from lab.target import AwsTarget
from labcore.errors import RemoteError
from labcore.paths import LabPaths
from labcore.remote import RunResult

ADMIN = CONFIG.replace("ssh: {allow_from: [auto]}", "ssh: {user: admin, allow_from: [auto]}")


class RefusingConnection:
    """fabric's Connection as a host whose sshd refuses the key for the user: no network at all."""

    def __init__(self, host, user=None, connect_timeout=None, connect_kwargs=None):
        self.host, self.user, self.client = host, user, paramiko.SSHClient()

    def run(self, *args, **kwargs):
        raise paramiko.AuthenticationException("Authentication failed.")

    def close(self):
        pass


def test_the_shipped_config_names_no_user_so_the_images_own_is_used():
    spec = parse_config(CONFIG)
    assert spec.ssh.user is None and spec.ssh_user == "ubuntu"
    assert parse_config(CONFIG.replace("os: ubuntu-18.04", "os: debian-12")).ssh_user == "admin"


def test_a_user_the_config_names_wins_over_the_tag_and_the_tag_follows_it(ec2):
    first = run_up(spec_with())
    assert {tags(i)["lab:ssh-user"] for i in lab_instances(ec2)} == {"ubuntu"}
    assert {n.ssh_user for n in first.inventory.nodes} == {"ubuntu"}
    lines: list[str] = []
    second = run_up(spec_with(text=ADMIN), lines)
    assert {n.ssh_user for n in second.inventory.nodes} == {"admin"}
    assert {tags(i)["lab:ssh-user"] for i in lab_instances(ec2)} == {"admin"}
    assert "lab:ssh-user set to admin (ssh.user in the config) on 3 instances" in lines
    # A config that names no user again: the tag says who the instances were last reached as.
    assert {n.ssh_user for n in run_up(spec_with()).inventory.nodes} == {"admin"}


def test_a_refused_login_is_one_line_naming_the_user_the_key_and_what_to_check(tmp_path, monkeypatch):
    monkeypatch.setattr(ssh, "Connection", RefusingConnection)
    inv = inventory().model_copy(update={"known_hosts": str(tmp_path / "known_hosts"), "key_file": "/k/id_ed25519"})
    with pytest.raises(LoginRefused) as refused:
        FabricRemote(inv.controller, inv).run("true")
    assert str(refused.value) == (
        "controller (10.0.0.11) refused SSH login as ubuntu with the key /k/id_ed25519: check that `ssh: {user: ...}` "
        "in the config is the image's login user (ubuntu on Ubuntu, admin on Debian; leave it out for that default) "
        "and that the key is the lab's, then run the command again")
    assert refused.value.exit_code == 1


def test_a_refused_login_ends_the_wait_at_once_while_the_other_hosts_are_still_silent():
    refusing = {"object1"}

    class Host:
        def __init__(self, name):
            self.name = name

        def run(self, *a, **k):
            if self.name in refusing:
                raise LoginRefused(f"{self.name} (10.0.0.51) refused SSH login as ubuntu")
            raise RemoteError("no route")  # not up yet: waited for

        def close(self):
            pass

    started = time.monotonic()
    with pytest.raises(LoginRefused, match="object1 .* refused SSH login as ubuntu"):
        wait_for_ssh(inventory(), lambda node: Host(node.name), progress=lambda m: None, timeout=300, interval=0.05)
    assert time.monotonic() - started < 5


def test_a_silent_host_names_the_address_the_group_allows_and_how_to_change_it():
    class Silent:
        def run(self, *a, **k):
            raise RemoteError("no route")

    with pytest.raises(RemoteError) as silent:
        wait_for_ssh(inventory(), lambda node: Silent(), progress=lambda m: None, timeout=0.2, interval=0.05,
                     allowed=["198.51.100.7/32"])
    assert str(silent.value).endswith(
        "did not answer on SSH within 0 s; the security group allows SSH only from 198.51.100.7/32: if you reach AWS "
        "from another address (a VPN, a proxy, another network), set `ssh: {allow_from: [YOUR.PUBLIC.ADDRESS/32]}` "
        "in the config and run `lab up` again")


def test_lab_up_with_the_wrong_user_stops_in_one_line_without_waiting_out_the_ssh_timeout(
        ec2, tmp_path, capsys, monkeypatch):
    """`os: debian-12` with `user: ubuntu` (the old shipped config): the image has no such user."""
    monkeypatch.setattr(ssh, "Connection", RefusingConnection)
    monkeypatch.setattr(AwsTarget, "pin_host_keys", lambda self, ec2, inventory, progress: None)
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("os: ubuntu-18.04", "os: debian-12").replace(
        "ssh: {allow_from: [auto]}", f"ssh: {{user: ubuntu, allow_from: [{CALLER}]}}"))
    started = time.monotonic()

    assert cli.main(["up", "--config", str(config), "--target", "aws"]) == 1

    assert time.monotonic() - started < 30  # not the 300 s wait
    err = capsys.readouterr().err
    key = LabPaths.for_lab("rocky-lab").key_file.resolve()
    assert err.count("\n") == 1 and err.startswith("lab up: controller (")
    assert f"refused SSH login as ubuntu with the key {key}: check that `ssh: {{user: ...}}`" in err
    assert {tags(i)["lab:ssh-user"] for i in lab_instances(ec2)} == {"ubuntu"}


def test_wait_for_ssh_still_waits_for_a_host_that_is_only_not_up_yet():
    calls = {"n": 0}

    class Late:
        def run(self, *a, **k):
            calls["n"] += 1
            if calls["n"] < 4:
                raise RemoteError("connection refused")
            return RunResult(0)

    wait_for_ssh(inventory().model_copy(update={"nodes": inventory().nodes[:1]}), lambda node: Late(),
                 progress=lambda m: None, timeout=5, interval=0.01)
    assert calls["n"] == 4
