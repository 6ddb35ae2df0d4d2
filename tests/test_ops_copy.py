"""`lab copy SRC NODE:DST` and `lab copy NODE:SRC DST`: one file, one direction, as root, checked by sha256.

The hosts are LocalHosts (tests/fakes.py): a directory as /, so the shell `lab copy`
sends really runs in bash and writes real files there.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from fakes import FakeRemote, LocalHost, fake_bin
from invoke.exceptions import CommandTimedOut
from invoke.runners import Result
from test_ops_support import SECRET, AsSshdWould, up_lab

from lab import cli
from lab.filecopy import MAX_BYTES, RemotePath, upload_target
from labcore.remote import RunResult

CONF = "[swift-hash]\nswift_hash_path_suffix = x\n"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    bin_dir = fake_bin(tmp_path / "bin", {})
    hosts = {name: LocalHost(name, tmp_path / "hosts" / name, bin_dir) for name in ("controller", "object1", "object2")}
    for host in hosts.values():
        host.write("/etc/swift/swift.conf", CONF)
    made = up_lab(tmp_path, monkeypatch, hosts)
    monkeypatch.chdir(tmp_path)
    return made


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_file_copied_into_a_folder_on_a_node_keeps_its_name_and_mode(lab, tmp_path, capsys):
    local = tmp_path / "proxy-server.conf"
    local.write_text("[DEFAULT]\nbind_port = 8080\n")
    local.chmod(0o640)
    assert cli.main(lab.argv("copy", str(local), "controller:/etc/swift/")) == 0
    landed = lab.hosts["controller"].path("/etc/swift/proxy-server.conf")
    assert landed.read_bytes() == local.read_bytes() and _mode(landed) == 0o640
    out = capsys.readouterr().out
    assert f"controller:/etc/swift/proxy-server.conf: {local.stat().st_size} bytes, sha256 " \
           f"{_sha(local.read_bytes())}" in out


def test_an_existing_folder_without_a_slash_takes_the_files_name_too(lab, tmp_path):
    local = tmp_path / "object.ring.gz"
    local.write_bytes(bytes(range(256)) * 10)
    assert cli.main(lab.argv("copy", str(local), "object1:/etc/swift")) == 0
    assert lab.hosts["object1"].path("/etc/swift/object.ring.gz").read_bytes() == local.read_bytes()


def test_a_file_copied_in_under_another_name_with_mode_gets_that_mode(lab, tmp_path):
    local = tmp_path / "x"
    local.write_text("hello\n")
    assert cli.main(lab.argv("copy", "--mode", "0600", str(local), "object2:/etc/swift/renamed.conf")) == 0
    landed = lab.hosts["object2"].path("/etc/swift/renamed.conf")
    assert landed.read_text() == "hello\n" and _mode(landed) == 0o600


def test_a_file_copied_in_replaces_the_old_one_keeping_its_owner(lab, tmp_path):
    fake = FakeRemote("controller")
    fake.answer(r"^if \[ -d /etc/swift/swift.conf \]", RunResult(0, "file root:swift\nmissing no\n"))
    fake.answer(r"base64 -d", RunResult(0, f"{_sha(b'new')}  /etc/swift/swift.conf\n"))
    lab.hosts["controller"] = fake
    local = tmp_path / "swift.conf"
    local.write_bytes(b"new")
    assert cli.main(lab.argv("copy", str(local), "controller:/etc/swift/swift.conf")) == 0
    [write] = fake.ran("base64 -d")
    assert "chown root:swift" in write and "mv -f -- \"$t\" /etc/swift/swift.conf" in write
    assert fake.stdins[-1] == "bmV3"  # the bytes on stdin as base64, never in the command


def test_the_owner_of_a_new_file_is_root_and_a_replaced_one_keeps_its_owner():
    assert upload_target("/etc/swift/", "a.conf", "c", [RemotePath("dir"), RemotePath("missing")]) == \
        ("/etc/swift/a.conf", "root:root")
    assert upload_target("/etc/swift/a.conf", "a.conf", "c", [RemotePath("file", "root:swift"),
                                                              RemotePath("missing", folder_exists=False)]) == \
        ("/etc/swift/a.conf", "root:swift")


def test_copying_into_a_folder_that_does_not_exist_is_exit_2_and_writes_nothing(lab, tmp_path, capsys):
    local = tmp_path / "a.conf"
    local.write_text("a\n")
    assert cli.main(lab.argv("copy", str(local), "controller:/etc/nowhere/")) == 2
    assert "controller:/etc/nowhere/: no such folder on controller" in capsys.readouterr().err
    assert cli.main(lab.argv("copy", str(local), "controller:/etc/nowhere/a.conf")) == 2
    assert "its folder /etc/nowhere does not exist on controller" in capsys.readouterr().err
    assert not lab.hosts["controller"].path("/etc/nowhere").exists()


def test_a_file_copied_out_lands_here_0600_with_its_bytes_and_hash(lab, tmp_path, capsys):
    (tmp_path / "got").mkdir()
    assert cli.main(lab.argv("copy", "object1:/etc/swift/swift.conf", str(tmp_path / "got"))) == 0
    local = tmp_path / "got" / "swift.conf"
    assert local.read_text() == CONF and _mode(local) == 0o600
    out = capsys.readouterr().out
    assert f"{local}: {len(CONF)} bytes, sha256 {_sha(CONF.encode())}" in out


def test_a_file_copied_out_with_mode_gets_that_mode(lab, tmp_path):
    assert cli.main(lab.argv("copy", "--mode", "644", "controller:/etc/swift/swift.conf", str(tmp_path / "s"))) == 0
    assert _mode(tmp_path / "s") == 0o644


def test_an_existing_local_file_is_only_overwritten_with_force(lab, tmp_path, capsys):
    local = tmp_path / "swift.conf"
    local.write_text("mine\n")
    assert cli.main(lab.argv("copy", "controller:/etc/swift/swift.conf", str(tmp_path) + "/")) == 2
    assert f"{local} exists: --force to overwrite it" in capsys.readouterr().err
    assert local.read_text() == "mine\n" and lab.hosts["controller"].calls == []  # refused before any SSH
    assert cli.main(lab.argv("copy", "--force", "controller:/etc/swift/swift.conf", str(local))) == 0
    assert local.read_text() == CONF


@pytest.mark.parametrize("source, destination, expected", [
    ("a.conf", "b.conf", "SRC, DST or both must be NODE:PATH, neither is"),
    ("object9:/etc/hosts", "here", "no node named 'object9' in lab rocky-lab (nodes: controller, object1, object2"),
    ("controller:/etc/swift/", "here", "/etc/swift/: name a file on the node, not a folder"),
])
def test_bad_directions_and_names_are_exit_2(lab, capsys, source, destination, expected):
    assert cli.main(lab.argv("copy", source, destination)) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_a_bad_mode_is_exit_2(lab, tmp_path, capsys):
    assert cli.main(lab.argv("copy", "--mode", "rw-r--r--", "controller:/etc/swift/swift.conf", "x")) == 2
    assert "--mode 'rw-r--r--': expected an octal mode" in capsys.readouterr().err


def test_a_missing_or_folder_source_on_the_node_is_exit_2_and_nothing_is_written_here(lab, tmp_path, capsys):
    assert cli.main(lab.argv("copy", "controller:/etc/swift/nope.conf", str(tmp_path / "out"))) == 2
    assert "controller:/etc/swift/nope.conf: no such file" in capsys.readouterr().err
    assert cli.main(lab.argv("copy", "controller:/etc/swift", str(tmp_path / "out"))) == 2
    assert "controller:/etc/swift is a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_files_over_the_bound_are_refused_both_ways(lab, tmp_path, capsys):
    big = tmp_path / "big.img"
    with big.open("wb") as f:
        f.truncate(MAX_BYTES + 1)
    assert cli.main(lab.argv("copy", str(big), "object1:/etc/swift/")) == 2
    assert "more than lab copy moves (64 MiB)" in capsys.readouterr().err
    assert lab.hosts["object1"].calls == []
    with lab.hosts["object2"].path("/etc/swift/big.img").open("wb") as f:
        f.truncate(MAX_BYTES + 1)
    assert cli.main(lab.argv("copy", "object2:/etc/swift/big.img", str(tmp_path / "got.img"))) == 2
    assert "more than lab copy moves (64 MiB)" in capsys.readouterr().err
    assert not (tmp_path / "got.img").exists()


def test_bytes_that_do_not_match_the_hosts_hash_are_a_failure_and_write_nothing(lab, tmp_path, capsys):
    fake = FakeRemote("controller").answer(r"^if \[ ! -e", RunResult(0, f"file 3 {'0' * 64}\nYWJj\n"))
    lab.hosts["controller"] = fake
    assert cli.main(lab.argv("copy", "controller:/etc/swift/swift.conf", str(tmp_path / "s"))) == 1
    assert "the bytes that arrived are not the file's" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_hosts_error_is_one_line_with_secrets_masked(lab, tmp_path, capsys):
    fake = FakeRemote("controller").answer(r"^if \[ ! -e", RunResult(1, "", f"cat: {SECRET}: Input/output error\n"))
    lab.hosts["controller"] = fake
    assert cli.main(lab.argv("copy", "controller:/etc/swift/swift.conf", str(tmp_path / "s"))) == 1
    err = capsys.readouterr().err
    assert SECRET not in err and "cat: ********: Input/output error" in err and err.count("\n") == 1


def test_a_round_trip_through_a_node_gives_back_the_same_bytes(lab, tmp_path):
    data = os.urandom(300_000)
    (tmp_path / "blob").write_bytes(data)
    lab.hosts["object2"].path("/srv/node/sdb").mkdir(parents=True)
    assert cli.main(lab.argv("copy", str(tmp_path / "blob"), "object2:/srv/node/sdb/")) == 0
    assert cli.main(lab.argv("copy", "object2:/srv/node/sdb/blob", str(tmp_path / "back"))) == 0
    assert (tmp_path / "back").read_bytes() == data


def test_without_the_labs_key_no_host_is_asked(lab, tmp_path, capsys):
    lab.paths.key_file.unlink()
    (tmp_path / "a").write_text("a\n")
    assert cli.main(lab.argv("copy", str(tmp_path / "a"), "controller:/etc/swift/")) == 2
    assert "id_ed25519 is missing" in capsys.readouterr().err and lab.hosts["controller"].calls == []


def test_both_directions_work_through_the_sudo_wrapping_every_command_gets(lab, tmp_path):
    lab.hosts["object1"] = host = AsSshdWould("object1")
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    data = os.urandom(200_000)
    (tmp_path / "blob").write_bytes(data)
    assert cli.main(lab.argv("copy", str(tmp_path / "blob"), f"object1:{remote_dir}/")) == 0
    assert (remote_dir / "blob").read_bytes() == data and _mode(remote_dir / "blob") == _mode(tmp_path / "blob")
    assert cli.main(lab.argv("copy", f"object1:{remote_dir}/blob", str(tmp_path / "back"))) == 0
    assert (tmp_path / "back").read_bytes() == data
    assert all(str(remote_dir) not in argv for argv in host.calls)  # paths and bytes on stdin only


def test_a_host_that_stops_answering_mid_copy_is_one_line_exit_1(lab, tmp_path, capsys):
    def hang(command, _stdin):
        raise CommandTimedOut(Result(command=command, exited=-1), timeout=600)

    lab.hosts["controller"] = FakeRemote("controller").answer(r"^if \[ ! -e", hang)
    assert cli.main(lab.argv("copy", "controller:/etc/swift/swift.conf", str(tmp_path / "s"))) == 1
    err = capsys.readouterr().err
    assert "controller did not finish the copy within 600 s" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()
