"""SSH plumbing that needs no host: sudo wrapping, which host keys are trusted, the wait's error."""

from __future__ import annotations

import subprocess

import paramiko
import pytest
from plan_fixtures import inventory

from lab.ssh import FabricRemote, known_host_names, sudo_wrap, wait_for_ssh
from labcore.errors import RemoteError
from labcore.remote import RunResult


def _as_sshd_would(wrapped: tuple[str, str]) -> subprocess.CompletedProcess:
    argv, stdin = wrapped
    assert argv.startswith("sudo -n sh -c ")
    return subprocess.run(["sh", "-c", argv.replace("sudo -n ", "", 1)], input=stdin, capture_output=True, text=True)


def test_sudo_runs_the_whole_command_as_root_without_a_password_prompt():
    done = _as_sshd_would(sudo_wrap("echo 'a b' > /dev/null && printf '%s|' ok; exit 3"))
    assert (done.returncode, done.stdout) == (3, "ok|")


def test_the_command_never_appears_in_sudos_argv_which_hosts_log():
    argv, _ = sudo_wrap("mysql -pS3cret -e 'SELECT 1'")
    assert "S3cret" not in argv


def test_the_commands_own_stdin_follows_the_command_untouched():
    data = "line one\n  'quoted' $HOME `x`\nno newline at the end"
    done = _as_sshd_would(sudo_wrap("cat; echo; echo ünïcode", data))
    assert done.stdout == data + "\nünïcode\n"


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


def test_stdin_reaches_the_command_in_one_write_not_byte_by_byte(monkeypatch):
    """invoke sends a non-terminal stream one byte per 10 ms nap: a 4 KB file took 40 s."""
    from invoke import Context
    from invoke.runners import Local

    from lab.ssh import _WholeStream

    writes = []
    original = Local.write_proc_stdin
    monkeypatch.setattr(Local, "write_proc_stdin", lambda self, data: (writes.append(len(data)), original(self, data)))
    result = Context().run("wc -c", in_stream=_WholeStream("x" * 4096), hide=True)
    assert result.stdout.strip() == "4096"
    assert writes == [4096]


def _ed25519_key() -> paramiko.PKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                    serialization.PublicFormat.OpenSSH).decode()
    import base64

    return paramiko.PKey.from_type_string("ssh-ed25519", base64.b64decode(public.split()[1]))


def test_a_host_answering_with_another_key_than_the_pinned_one_is_named_at_once(tmp_path, monkeypatch):
    from lab.ssh import HostKeyChanged

    pinned, shown = _ed25519_key(), _ed25519_key()
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.11 ssh-ed25519 {pinned.get_base64()}\n")
    inv = inventory().model_copy(update={"known_hosts": str(known), "key_file": str(tmp_path / "key")})
    remote = FabricRemote(inv.controller, inv)

    def connect_sees_another_key(*args, **kwargs):
        raise paramiko.BadHostKeyException("10.0.0.11", shown, pinned)

    monkeypatch.setattr(remote.conn, "run", connect_sees_another_key)
    with pytest.raises(HostKeyChanged) as failure:
        remote.run("true")
    text = str(failure.value)
    assert text.startswith(f"controller (10.0.0.11) answered with host key ssh-ed25519 {shown.fingerprint}, not "
                           f"the one pinned for it in {known}")
    assert text.endswith("run the command again") and failure.value.exit_code == 1


def test_wait_for_ssh_does_not_wait_out_a_changed_host_key(monkeypatch):
    import time

    from lab.ssh import HostKeyChanged

    class Impostor(Silent):
        def run(self, *a, **k):
            raise HostKeyChanged("controller (10.0.0.11) answered with host key SHA256:x, not the one pinned")

    started = time.monotonic()
    with pytest.raises(HostKeyChanged, match="not the one pinned"):
        wait_for_ssh(inventory(), lambda node: Impostor(), progress=lambda m: None, timeout=60, interval=0.05)
    assert time.monotonic() - started < 10


def test_a_key_learnt_on_first_use_is_written_0600_whatever_the_umask_and_said(tmp_path):
    import os

    from lab.ssh import _RecordFirstContact

    known = tmp_path / "known_hosts"
    inv = inventory().model_copy(update={"known_hosts": str(known), "key_file": str(tmp_path / "key")})
    warnings: list[str] = []
    remote = FabricRemote(inv.node("object1"), inv, warn=warnings.append)
    policy = remote.conn.client._policy
    assert isinstance(policy, _RecordFirstContact)
    key = _ed25519_key()
    old = os.umask(0)
    try:
        policy.missing_host_key(remote.conn.client, "10.0.0.51", key)
    finally:
        os.umask(old)
    assert known.read_text() == f"10.0.0.51 ssh-ed25519 {key.get_base64()}\n"
    assert oct(os.stat(known).st_mode & 0o777) == "0o600"
    assert warnings == [f"warning: object1 (10.0.0.51): its host key was not known in advance; trusting "
                        f"ssh-ed25519 {key.fingerprint} on first use and pinning it in {known}"]
