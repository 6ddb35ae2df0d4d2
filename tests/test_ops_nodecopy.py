"""`lab copy NODE:SRC NODE:DST`: one file between two nodes, through this machine (lab/nodecopy.py).

The hosts are LocalHosts (tests/fakes.py): a directory as /, so the shell both ends are
sent really runs in bash and writes real files there.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from fakes import FakeRemote, LocalHost, fake_bin
from test_ops_support import SECRET, up_lab

from lab import cli
from lab.nodecopy import parse_read_with_mode, read_with_mode_command
from labcore.remote import RunResult

RING = bytes(range(256)) * 40


@pytest.fixture
def lab(tmp_path, monkeypatch):
    bin_dir = fake_bin(tmp_path / "bin", {})
    hosts = {name: LocalHost(name, tmp_path / "hosts" / name, bin_dir) for name in ("controller", "object1", "object2")}
    for host in hosts.values():
        host.path("/etc/swift").mkdir(parents=True)
    ring = hosts["controller"].path("/etc/swift/object.ring.gz")
    ring.write_bytes(RING)
    ring.chmod(0o640)
    made = up_lab(tmp_path, monkeypatch, hosts)
    monkeypatch.chdir(tmp_path)
    return made


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_file_copied_between_nodes_keeps_its_bytes_mode_and_name_and_says_how(lab, capsys):
    assert cli.main(lab.argv("copy", "controller:/etc/swift/object.ring.gz", "object1:/etc/swift/")) == 0
    landed = lab.hosts["object1"].path("/etc/swift/object.ring.gz")
    assert landed.read_bytes() == RING and _mode(landed) == 0o640
    out = capsys.readouterr().out
    assert (f"copied controller:/etc/swift/object.ring.gz -> object1:/etc/swift/object.ring.gz (through this "
            f"machine: the hosts hold no key to each other): {len(RING)} bytes, sha256 "
            f"{hashlib.sha256(RING).hexdigest()}") in out
    assert lab.hosts["controller"].closed and lab.hosts["object1"].closed


def test_a_file_copied_between_nodes_under_another_name_with_mode(lab):
    assert cli.main(lab.argv("copy", "--mode", "600", "controller:/etc/swift/object.ring.gz",
                             "object2:/etc/swift/copy.gz")) == 0
    landed = lab.hosts["object2"].path("/etc/swift/copy.gz")
    assert landed.read_bytes() == RING and _mode(landed) == 0o600


def test_a_copy_within_one_node_works_too(lab):
    assert cli.main(lab.argv("copy", "controller:/etc/swift/object.ring.gz", "controller:/etc/swift/backup.gz")) == 0
    assert lab.hosts["controller"].path("/etc/swift/backup.gz").read_bytes() == RING


def test_a_replaced_file_keeps_its_owner_and_is_written_as_root():
    """The destination's write is filecopy's: chown to the owner the file had (root:swift), then mv."""
    from lab.nodecopy import RelayRequest, relay
    from plan_fixtures import inventory

    inv = inventory()
    source = FakeRemote("controller").answer(r"^stat -L -c %a", RunResult(
        0, f"640\nfile 3 {hashlib.sha256(b'new').hexdigest()}\nbmV3\n"))
    destination = FakeRemote("object1")
    destination.answer(r"^if \[ -d /etc/swift/a.conf \]", RunResult(0, "file root:swift\nmissing no\n"))
    destination.answer(r"base64 -d", RunResult(0, f"{hashlib.sha256(b'new').hexdigest()}  /etc/swift/a.conf\n"))
    done = relay(RelayRequest(inv.node("controller"), "/etc/swift/a.conf", inv.node("object1"), "/etc/swift/a.conf"),
                 source, destination)
    [write] = destination.ran("base64 -d")
    assert "chown root:swift \"$t\"; chmod 0640 \"$t\"" in write
    assert done.where == "object1:/etc/swift/a.conf" and done.size == 3


@pytest.mark.parametrize("source, destination, expected", [
    ("object9:/etc/hosts", "object1:/tmp/", "no node named 'object9' in lab rocky-lab"),
    ("controller:/etc/hosts", "object9:/tmp/", "no node named 'object9' in lab rocky-lab"),
    ("controller:/etc/swift/", "object1:/tmp/", "/etc/swift/: name a file on the node, not a folder"),
    ("controller:", "object1:/tmp/", ".: name a file on the node, not a folder"),
])
def test_bad_node_to_node_arguments_are_exit_2_before_any_ssh(lab, capsys, source, destination, expected):
    assert cli.main(lab.argv("copy", source, destination)) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert all(host.calls == [] for host in lab.hosts.values())


def test_force_is_for_a_local_destination_only(lab, capsys):
    assert cli.main(lab.argv("copy", "--force", "controller:/etc/swift/object.ring.gz", "object1:/etc/swift/")) == 2
    assert "--force is for a local destination" in capsys.readouterr().err
    assert not lab.hosts["object1"].path("/etc/swift/object.ring.gz").exists()


def test_a_missing_source_or_destination_folder_is_exit_2_and_writes_nothing(lab, capsys):
    assert cli.main(lab.argv("copy", "controller:/etc/swift/nope", "object1:/etc/swift/")) == 2
    assert "controller:/etc/swift/nope: no such file" in capsys.readouterr().err
    assert cli.main(lab.argv("copy", "controller:/etc/swift/object.ring.gz", "object1:/etc/nowhere/")) == 2
    assert "object1:/etc/nowhere/: no such folder on object1" in capsys.readouterr().err
    assert not lab.hosts["object1"].path("/etc/nowhere").exists()


def test_a_source_over_the_bound_is_refused_and_nothing_is_written(lab, capsys):
    from lab.filecopy import MAX_BYTES

    with lab.hosts["object2"].path("/etc/swift/big.img").open("wb") as f:
        f.truncate(MAX_BYTES + 1)
    assert cli.main(lab.argv("copy", "object2:/etc/swift/big.img", "object1:/etc/swift/")) == 2
    assert "more than lab copy moves (64 MiB)" in capsys.readouterr().err
    assert not lab.hosts["object1"].path("/etc/swift/big.img").exists()


def test_the_source_hosts_error_is_one_line_with_secrets_masked(lab, capsys):
    lab.hosts["controller"] = FakeRemote("controller").answer(
        r"^stat -L", RunResult(1, "", f"cat: {SECRET}: Input/output error\n"))
    assert cli.main(lab.argv("copy", "controller:/etc/swift/object.ring.gz", "object1:/etc/swift/")) == 1
    err = capsys.readouterr().err
    assert SECRET not in err and "could not read controller:/etc/swift/object.ring.gz" in err
    assert err.count("\n") == 1


def test_the_read_command_answers_the_mode_first(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    path.chmod(0o604)
    import subprocess

    done = subprocess.run(["sh", "-c", read_with_mode_command(str(path))], capture_output=True, text=True)
    assert parse_read_with_mode(done.stdout, "n:f") == (0o604, b"abc")
