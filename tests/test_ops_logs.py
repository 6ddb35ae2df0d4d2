"""`lab logs`: every host's service logs in one 0600 archive under .lab/<name>/, secrets masked."""

from __future__ import annotations

import re
import stat
import tarfile

import pytest
from fakes import LocalHost, fake_bin
from invoke.exceptions import CommandTimedOut
from invoke.runners import Result
from test_ops_support import SECRET, SudoRemote, Unreachable, up_lab

from bootstrap.profiles import profile_for
from lab import cli
from lab.logbundle import FILE_BYTES, candidate_units, discover_command, file_text, parse_discovery
from labcore.errors import RemoteError
from labcore.remote import RunResult

CONTROLLER_UNITS = ["apache2", "chrony", "etcd", "memcached", "mysql", "rabbitmq-server", "swift-proxy"]
OBJECT_UNITS = ["chrony", "swift-account", "swift-container", "swift-object", "swift-object-replicator"]


def _host(name: str, units: list[str], files: dict[str, str]) -> SudoRemote:
    listing = "--lab-units--\n" + "".join(f"{u}.service\n" for u in units) + "--lab-files--\n" + \
        "".join(f"{path}\n" for path in files)
    host = SudoRemote(name).answer(r"^echo --lab-units--", RunResult(0, listing))
    host.answer(r"^journalctl -u (\S+)\.service --no-pager -o short-iso -n \d+$",
                lambda command, _stdin: RunResult(0, f"{name} journal of {command.split()[2]}\n"))
    for path, text in files.items():
        host.answer(rf"^stat -c %s -- {re.escape(path)} && tail -c {FILE_BYTES} -- {re.escape(path)}$",
                    RunResult(0, f"{len(text)}\n{text}"))
    return host


def _hosts() -> dict:
    return {
        "controller": _host("controller", CONTROLLER_UNITS, {
            "/var/log/keystone/keystone-wsgi-public.log": f"POST /v3/auth/tokens password={SECRET}\n",
            "/var/log/rabbitmq/rabbit@controller.log": "accepting AMQP connection\n"}),
        "object1": _host("object1", OBJECT_UNITS, {"/var/log/swift/storage.log": "object PUT 201\n"}),
        "object2": _host("object2", OBJECT_UNITS, {}),
    }


@pytest.fixture
def lab(tmp_path, monkeypatch):
    made = up_lab(tmp_path, monkeypatch, _hosts())
    made.paths.logs.mkdir()
    (made.paths.logs / "controller.log").write_text("install: step keystone done\n")
    return made


def _archive(lab) -> tarfile.TarFile:
    [path] = lab.paths.root.glob("logs-*.tar.gz")
    return tarfile.open(path)


def _texts(lab) -> dict[str, str]:
    with _archive(lab) as archive:
        return {m.name: archive.extractfile(m).read().decode() for m in archive.getmembers()}


def test_lab_logs_writes_one_archive_with_a_member_per_host_and_source_and_prints_its_path(lab, capsys):
    assert cli.main(lab.argv("logs")) == 0
    [path] = lab.paths.root.glob("logs-*.tar.gz")
    assert re.fullmatch(r"logs-\d{8}T\d{6}Z\.tar\.gz", path.name)
    assert str(path) in capsys.readouterr().out
    texts = _texts(lab)
    assert texts["object1/journal-swift-object.log"] == "object1 journal of swift-object.service\n"
    assert texts["controller/journal-apache2.log"] == "controller journal of apache2.service\n"
    assert texts["object1/var/log/swift/storage.log"] == "object PUT 201\n"
    assert "controller/var/log/rabbitmq/rabbit@controller.log" in texts
    assert texts["_lab/logs/controller.log"] == "install: step keystone done\n"
    assert {name.split("/")[0] for name in texts} == {"controller", "object1", "object2", "_lab"}
    on_object2 = sorted(n for n in texts if n.startswith("object2/"))
    assert on_object2 == sorted(f"object2/journal-{u}.log" for u in OBJECT_UNITS)


def test_the_archive_is_0600(lab):
    assert cli.main(lab.argv("logs")) == 0
    [path] = lab.paths.root.glob("logs-*.tar.gz")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_secret_in_a_hosts_log_does_not_reach_the_archive(lab):
    (lab.paths.logs / "object1.log").write_text(f"a line with {SECRET} in it\n")
    assert cli.main(lab.argv("logs")) == 0
    [path] = lab.paths.root.glob("logs-*.tar.gz")
    texts = _texts(lab)
    assert all(SECRET not in text for text in texts.values())
    assert "password=********" in texts["controller/var/log/keystone/keystone-wsgi-public.log"]
    assert "a line with ******** in it" in texts["_lab/logs/object1.log"]
    with tarfile.open(path) as archive:  # nor anywhere in the members' raw bytes
        assert all(SECRET.encode() not in archive.extractfile(m).read() for m in archive.getmembers())


def test_the_journal_is_read_as_root_with_a_bounded_number_of_lines(lab):
    assert cli.main(lab.argv("logs", "--lines", "200")) == 0
    asked = lab.hosts["object2"].ran("^journalctl")
    assert asked[0] == "journalctl -u chrony.service --no-pager -o short-iso -n 200" and len(asked) == 5
    assert all(call["sudo"] for call in lab.hosts["object2"].asked)


def test_a_host_that_cannot_be_reached_gets_an_unreachable_member_and_the_archive_is_still_written(
        tmp_path, monkeypatch, capsys):
    hosts = _hosts()
    hosts["object2"] = Unreachable("object2")
    lab = up_lab(tmp_path, monkeypatch, hosts)
    assert cli.main(lab.argv("logs")) == 1
    captured = capsys.readouterr()
    texts = _texts(lab)
    assert "No route to host" in texts["object2/unreachable.txt"]
    assert "object1/journal-swift-object.log" in texts
    assert "object2 (10.0.0.52) could not be read" in captured.err and captured.err.count("\n") == 1
    assert "the archive holds what was read" in captured.err and "logs-" in captured.out


def test_a_host_lost_half_way_keeps_what_was_read_and_says_so(tmp_path, monkeypatch):
    hosts = _hosts()

    def drop(command, _stdin):
        raise RemoteError("object1: SSH failed: EOF")

    hosts["object1"].answer(r"^journalctl -u swift-container", drop)
    lab = up_lab(tmp_path, monkeypatch, hosts)
    assert cli.main(lab.argv("logs")) == 1
    texts = _texts(lab)
    assert "object1/journal-swift-account.log" in texts and "object1/journal-swift-container.log" not in texts
    assert "after 2 logs, kept in the archive" in texts["object1/unreachable.txt"]


def test_a_journal_that_fails_on_the_host_is_kept_with_what_it_said(tmp_path, monkeypatch):
    hosts = _hosts()
    hosts["object1"].answer(r"^journalctl -u swift-object\.service", RunResult(1, "", "Failed to get journal"))
    lab = up_lab(tmp_path, monkeypatch, hosts)
    assert cli.main(lab.argv("logs")) == 0
    assert "[journalctl exited 1: Failed to get journal]" in _texts(lab)["object1/journal-swift-object.log"]


def test_without_the_labs_key_no_host_is_asked_and_no_archive_written(lab, capsys):
    lab.paths.key_file.unlink()
    assert cli.main(lab.argv("logs")) == 2
    assert list(lab.paths.root.glob("logs-*")) == [] and lab.hosts["controller"].commands == []


def test_the_units_asked_for_follow_the_os():
    ubuntu, debian = candidate_units(profile_for("ubuntu-18.04")), candidate_units(profile_for("debian-12"))
    assert "apache2" in ubuntu and "keystone" not in ubuntu and "mysql" in ubuntu
    assert "keystone" in debian and "apache2" not in debian and "mariadb" in debian
    for units in (ubuntu, debian):
        assert {"rabbitmq-server", "memcached", "etcd", "chrony"} <= set(units)


def test_the_end_of_a_large_log_file_is_kept_and_the_cut_said():
    assert file_text(f"{FILE_BYTES + 10}\nthe end\n") == f"[the first 10 of {FILE_BYTES + 10} bytes are left out]\n" \
                                                        "the end\n"
    assert file_text("8\nsmall\n\n") == "small\n\n"


SYSTEMCTL = r'''
case "$1" in
  list-unit-files) shift 2; for p in "$@"; do case "$p" in
      swift-\*.service) printf 'swift-object.service enabled enabled\nswift-object@.service static -\n'
                        printf 'swift-account.service enabled enabled\n';;
      mariadb.service) echo "mariadb.service enabled enabled";;
      mysql.service) echo "mysql.service alias -";;
      chrony.service) echo "chrony.service enabled enabled";;
    esac; done;;
  show) case "$5" in mysql.service) echo mariadb.service;; *) echo "$5";; esac;;
esac
'''


def test_the_discovery_script_finds_every_unit_once_and_the_plain_log_files(tmp_path):
    host = LocalHost("controller", tmp_path / "root", fake_bin(tmp_path / "bin", {"systemctl": SYSTEMCTL}))
    host.write("/var/log/swift/storage.log", "x\n")
    host.write("/var/log/swift/storage.log.2.gz", "old\n")
    host.write("/var/log/mysql/error.log", "y\n")
    result = host.run(discover_command(candidate_units(profile_for("debian-12"))))
    found = parse_discovery(result.stdout)
    assert found.units == ("chrony", "mariadb", "swift-account", "swift-object")
    assert [f.split("/root", 1)[1] for f in found.files] == ["/var/log/mysql/error.log", "/var/log/swift/storage.log"]


def test_a_host_that_stops_answering_is_named_and_the_others_are_still_archived(tmp_path, monkeypatch):
    hosts = _hosts()

    def hang(command, _stdin):
        raise CommandTimedOut(Result(command=command, exited=-1), timeout=120)

    hosts["controller"].answer(r"^journalctl -u etcd", hang)
    lab = up_lab(tmp_path, monkeypatch, hosts)
    assert cli.main(lab.argv("logs")) == 1
    texts = _texts(lab)
    assert "did not answer within 120 s" in texts["controller/unreachable.txt"]
    assert "object2/journal-chrony.log" in texts
