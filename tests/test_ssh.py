"""SSH plumbing that needs no host: sudo wrapping, which host keys are trusted, the wait's error."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from lab.errors import RemoteError
from lab.remote import RunResult
from lab.ssh import FabricRemote, known_host_names, sudo_wrap, wait_for_ssh
from plan_fixtures import inventory


def test_sudo_runs_the_whole_command_as_root_without_a_password_prompt():
    wrapped = sudo_wrap("echo 'a b' > /etc/x && cat /etc/x")
    assert wrapped.startswith("sudo -n sh -c ")
    assert subprocess.run(["sh", "-c", wrapped.replace("sudo -n ", "", 1).replace("/etc/x", "/dev/null")],
                          capture_output=True).returncode == 0


def test_a_pinned_host_is_checked_strictly_and_an_unknown_one_is_recorded(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    inv = inventory().model_copy(update={"known_hosts": str(known), "key_file": str(tmp_path / "key")})
    pinned = FabricRemote(inv.controller, inv)
    assert isinstance(pinned.conn.client._policy, paramiko.RejectPolicy)
    assert known_host_names(known) == {"10.0.0.11"}
    other = FabricRemote(inv.node("object1"), inv)
    assert not isinstance(other.conn.client._policy, (paramiko.RejectPolicy, paramiko.AutoAddPolicy))


class Silent:
    name = "x"

    def run(self, *a, **k):
        raise RemoteError("no route")

    def close(self):
        pass


def test_wait_for_ssh_names_every_node_that_never_answered():
    inv = inventory()
    answering = {"controller"}

    class Host(Silent):
        def __init__(self, name):
            self.name = name

        def run(self, *a, **k):
            if self.name in answering:
                return RunResult(0)
            raise RemoteError("no route")

    with pytest.raises(RemoteError, match=r"object1 \(10.0.0.51\), object2 \(10.0.0.52\) did not answer on SSH"):
        wait_for_ssh(inv, lambda node: Host(node.name), progress=lambda m: None, timeout=0.3, interval=0.1)
