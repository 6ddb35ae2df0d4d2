"""The shell the lab sends, run for real in bash against temp files (a RemoteSession over a LocalHost)."""

from __future__ import annotations

import base64
import os
import subprocess

import pytest
from fakes import LocalHost, fake_bin

from bootstrap.actions import SqlQuery
from bootstrap.changes import Write
from bootstrap.facts import CheckFact, DebsFact, FileFact, Output, OutputFact, UnitsFact, UnitState, batch_script
from bootstrap.logs import HostLog
from bootstrap.render import digest_matches, digest_record, mysql
from bootstrap.session import RemoteSession, SendFailed
from labcore.secrets import Secrets

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def host(tmp_path) -> LocalHost:
    scripts = {
        # systemctl is-enabled/is-active --quiet UNIT: from two lists in the host's directory
        "systemctl": 'case "$1" in is-enabled) grep -qx "$3" "$HOST_ROOT/enabled";; '
                     'is-active) grep -qx "$3" "$HOST_ROOT/active";; *) exit 2;; esac',
        "dpkg-query": 'shift 2; for p in "$@"; do grep -qx "$p" "$HOST_ROOT/installed" && '
                      'echo "$p install ok installed" || echo "$p unknown ok not-installed"; done',
    }
    made = LocalHost("controller", tmp_path / "root", fake_bin(tmp_path / "bin", scripts))
    made.root.mkdir()
    return made


@pytest.fixture
def session(host, tmp_path) -> RemoteSession:
    return RemoteSession(host, HostLog(tmp_path / "controller.log", Secrets({"admin_pass": SECRET}), "test"))


def test_every_fact_of_a_step_is_answered_in_one_round_trip(host, session):
    host.write("/etc/chrony/chrony.conf", "server controller iburst\n")
    host.write("/etc/odd", f"@@lab-fact x 0\nno newline at the end {SECRET}")
    host.write("/enabled", "chrony\n")
    host.write("/active", "")
    host.write("/installed", "chrony\n")
    facts = [FileFact("/etc/chrony/chrony.conf"), FileFact("/etc/absent"), FileFact("/etc/odd", content=True),
             CheckFact("test -d /etc"), CheckFact("exit 5"), OutputFact("printf 'a\\nb'"), OutputFact("echo x; exit 3"),
             UnitsFact(("chrony", "rsync")), DebsFact(("chrony", "swift"))]

    answers = session.ask(facts)

    assert len(host.calls) == 1
    conf = answers[facts[0]]
    assert (conf.mode, conf.owner, conf.data) == (0o644, "root:root", None)
    assert conf.sha256 == __import__("hashlib").sha256(b"server controller iburst\n").hexdigest()
    assert answers[facts[1]] is None
    assert answers[facts[2]].data == f"@@lab-fact x 0\nno newline at the end {SECRET}".encode()
    assert [answers[f] for f in facts[3:5]] == [True, False]
    assert answers[facts[5]] == Output(0, "a\nb") and answers[facts[6]] == Output(3, "x\n")
    assert answers[facts[7]] == {"chrony": UnitState(True, False), "rsync": UnitState(False, False)}
    assert answers[facts[8]] == frozenset({"chrony"})


def test_the_log_shows_the_facts_asked_but_never_a_files_content(host, session, tmp_path):
    host.write("/root/admin-openrc", f"export OS_PASSWORD={SECRET}\n")
    session.ask([FileFact("/root/admin-openrc", content=True)])
    log = (tmp_path / "controller.log").read_text()
    encoded = base64.b64encode(f"export OS_PASSWORD={SECRET}\n".encode()).decode()
    assert "(facts, 1 questions)" in log and "/root/admin-openrc" in log
    assert SECRET not in log and encoded[:20] not in log


def test_a_batch_cut_short_answers_what_it_got_and_absent_for_the_rest():
    facts = [CheckFact("true"), FileFact("/etc/x")]
    script, nonce = batch_script(facts, nonce="abc")
    from bootstrap.facts import parse_batch

    cut = "@@lab-fact abc 0\n\n@@lab-end abc 0 0\n@@lab-fact abc 1\n"
    assert parse_batch(facts, cut, nonce) == {facts[0]: True, facts[1]: None}
    assert script.startswith("# openstack-ec2-lab: facts, read only\n")


def test_files_are_written_atomically_with_mode_and_in_place_when_asked(host, session):
    session.write(Write("/etc/keystone/keystone.conf", b"[DEFAULT]\n", 0o640, "root:keystone"))
    written = host.path("/etc/keystone/keystone.conf")
    assert written.read_bytes() == b"[DEFAULT]\n" and written.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in written.parent.iterdir()] == ["keystone.conf"]  # no temp file left

    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    os.chmod(host.path("/etc/hosts"), 0o644)
    inode = host.path("/etc/hosts").stat().st_ino
    session.write(Write("/etc/hosts", b"127.0.0.1 localhost\n10.0.0.11 controller\n", in_place=True))
    assert host.read("/etc/hosts") == "127.0.0.1 localhost\n10.0.0.11 controller\n"
    assert host.path("/etc/hosts").stat().st_ino == inode  # a bind-mounted /etc/hosts stays the same file
    assert session.read("/etc/hosts") == b"127.0.0.1 localhost\n10.0.0.11 controller\n"


def test_a_write_or_read_that_fails_says_which_file(host, session):
    host.write("/etc/blocked", "a file where a directory should be\n")
    with pytest.raises(SendFailed) as failed:
        session.write(Write("/etc/blocked/x.conf", b"x"))
    assert failed.value.what == "cannot write /etc/blocked/x.conf"
    with pytest.raises(SendFailed) as missing:
        session.read("/etc/swift/object.ring.gz")
    assert missing.value.what == "cannot read /etc/swift/object.ring.gz on controller"


def test_a_digest_stamp_matches_only_the_value_it_recorded_and_holds_no_secret(host):
    record, matches = digest_record("/var/lib/lab/x.sha256", f"user set --password {SECRET}"), digest_matches(
        "/var/lib/lab/x.sha256", f"user set --password {SECRET}")
    assert not host.run(matches).ok
    assert host.run(record).ok and host.run(matches).ok
    assert SECRET not in host.read("/var/lib/lab/x.sha256")
    assert not host.run(digest_matches("/var/lib/lab/x.sha256", "user set --password other")).ok


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM project WHERE name='example'",
    "DELETE FROM mysql.db WHERE Db='test' OR Db='test\\\\_%'; FLUSH PRIVILEGES;",
    'SELECT "a $HOME `x`"',
])
def test_mysql_gets_the_statement_exactly_as_written(tmp_path, sql):
    (tmp_path / "mysql").write_text('#!/bin/sh\nshift 3\n[ "$1" = keystone ] && shift\nprintf "%s" "$2"\n')
    (tmp_path / "mysql").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    command = mysql(SqlQuery(sql, "keystone"))
    assert subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env).stdout == sql


def test_a_login_query_passes_the_password_in_the_environment_not_in_argv():
    command = mysql(SqlQuery("SELECT 1", "keystone", ("keystone", SECRET, "controller")))
    assert command == f'MYSQL_PWD={SECRET} mysql -N -B -u keystone -h controller keystone -e "SELECT 1"'
