"""Decisions as data: an action and what the host answers in, the change (or nothing) out.

Like pyinfra's operation tests: each case is the facts a host gives and what the lab
then says and sends, no host and no shell involved.
"""

from __future__ import annotations

import hashlib

import pytest

from bootstrap.actions import Block, Command, FileSpec, Packages, Reboot, Service, Sql, SqlQuery, Wait
from bootstrap.changes import RebootNow, Refused, Run, WaitFor, Write
from bootstrap.decide import Context, decide, decide_step, facts_for, unified_diff
from bootstrap.facts import CheckFact, DebsFact, FileFact, FileState, Output, OutputFact, UnitsFact, UnitState
from bootstrap.render import POLICY_RC_D


def state(data: bytes, mode: int = 0o644, owner: str = "root:root", content: bool = False) -> FileState:
    return FileState(hashlib.sha256(data).hexdigest(), mode, owner, data if content else None)


CONF = FileSpec("/etc/memcached.conf", "-l 10.0.0.11\n", 0o640, "root:memcache")


@pytest.mark.parametrize("found, says", [
    (None, "write /etc/memcached.conf (0640 root:memcache): absent"),
    (state(b"-l 127.0.0.1\n", 0o640, "root:memcache"),
     "write /etc/memcached.conf (0640 root:memcache): content differs"),
    (state(b"-l 10.0.0.11\n", 0o644, "root:memcache"), "write /etc/memcached.conf (0640 root:memcache): mode 0644"),
    (state(b"-l 10.0.0.11\n", 0o640, "root:root"), "write /etc/memcached.conf (0640 root:memcache): owner root:root"),
    (state(b"-l 10.0.0.11\n", 0o640, "root:memcache"), None),
])
def test_a_file_is_written_when_content_mode_or_owner_differ(found, says):
    change = decide(CONF, {FileFact(CONF.path): found}, Context())
    assert (change.says if change else None) == says
    if change:
        assert change.sends == (Write(CONF.path, b"-l 10.0.0.11\n", 0o640, "root:memcache"),)


def test_an_owner_without_group_keeps_the_files_group():
    spec = FileSpec("/etc/x", "x\n", 0o644, "root")
    assert decide(spec, {FileFact("/etc/x"): state(b"x\n", owner="root:adm")}, Context()) is None


def test_check_mode_reads_files_whole_and_shows_a_unified_diff():
    assert facts_for(CONF, check=True) == [FileFact(CONF.path, content=True)]
    change = decide(CONF, {FileFact(CONF.path, True): state(b"-l 127.0.0.1\n", 0o640, "root:memcache", True)},
                    Context(check=True))
    assert change.diff == ("--- /etc/memcached.conf (on the host)\n+++ /etc/memcached.conf (the plan)\n"
                           "@@ -1 +1 @@\n--l 127.0.0.1\n+-l 10.0.0.11\n")
    absent = decide(CONF, {FileFact(CONF.path, True): None}, Context(check=True))
    assert absent.diff.startswith("--- /dev/null\n") and "+-l 10.0.0.11\n" in absent.diff
    assert unified_diff("/etc/swift/object.ring.gz", b"\x1f\x8b\x08", b"\x1f\x8b\xff\xfe") == (
        "binary file /etc/swift/object.ring.gz differs\n")


HOSTS = Block("/etc/hosts", ("10.0.0.11 controller", "10.0.0.51 object1"), comment_out=("127.0.1.1",))


def test_the_hosts_block_is_merged_by_the_lab_from_the_files_content():
    image = b"127.0.0.1 localhost\n127.0.1.1 ip-10-0-0-11\n"
    change = decide(HOSTS, {FileFact("/etc/hosts", True): state(image, content=True)}, Context())
    merged = (b"127.0.0.1 localhost\n# 127.0.1.1 ip-10-0-0-11\n# BEGIN openstack-ec2-lab\n10.0.0.11 controller\n"
              b"10.0.0.51 object1\n# END openstack-ec2-lab\n")
    assert change.sends == (Write("/etc/hosts", merged, in_place=True),)
    assert "+# 127.0.1.1 ip-10-0-0-11" in change.diff
    assert decide(HOSTS, {FileFact("/etc/hosts", True): state(merged, content=True)}, Context()) is None


def test_only_missing_packages_are_installed_after_the_debconf_answers():
    action = Packages(("keystone", "python3-openstackclient"),
                      debconf=("keystone keystone/configure_db boolean false",))
    debs, no_leftover = facts_for(action)
    answers = {debs: frozenset({"python3-openstackclient"}), no_leftover: True}
    change = decide(action, answers, Context())
    assert change.says == "install packages keystone"
    debconf, install = change.sends
    assert "debconf-set-selections" in debconf.command
    assert "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold keystone;" in (
        install.command)
    answers[debs] = frozenset(action.names)
    assert decide(action, answers, Context()) is None


def test_a_policy_rc_d_left_by_an_interrupted_install_is_removed():
    action = Packages(("chrony",))
    change = decide(action, {DebsFact(("chrony",)): frozenset({"chrony"}), facts_for(action)[1]: False}, Context())
    assert change.says == f"remove the {POLICY_RC_D} an interrupted install left"
    assert f"rm -f {POLICY_RC_D}" in change.sends[0].command


UP = UnitState(True, True)


@pytest.mark.parametrize("units, changed_before, says, commands", [
    ({"chrony": UP}, False, None, []),
    ({"chrony": UP}, True, "restart chrony (its configuration changes)", ["systemctl restart chrony"]),
    ({"chrony": UnitState(True, False)}, False, "restart chrony (not running: chrony)", ["systemctl restart chrony"]),
    ({"chrony": UnitState(False, True)}, False, "enable chrony", ["systemctl enable chrony"]),
])
def test_a_service_is_enabled_and_restarted_only_when_needed(units, changed_before, says, commands):
    action = Service(("chrony",))
    change = decide(action, {UnitsFact(("chrony",)): units}, Context(earlier_changed=changed_before))
    assert (change.says if change else None) == says
    assert [s.command for s in (change.sends if change else ())] == commands


def test_a_start_only_service_is_started_when_stopped_and_never_restarted_for_a_change():
    action = Service(("rabbitmq-server",), start_only=True)
    fact = UnitsFact(action.units)
    assert decide(action, {fact: {"rabbitmq-server": UP}}, Context(earlier_changed=True)) is None
    stopped = decide(action, {fact: {"rabbitmq-server": UnitState(True, False)}}, Context())
    assert [s.command for s in stopped.sends] == ["systemctl start rabbitmq-server"]


def test_a_watching_service_restarts_when_what_it_reads_changed_and_records_it():
    action = Service(("memcached", "swift-proxy"), watch=("/etc/swift/proxy-server.conf",),
                     stamp="/var/lib/lab/swift-proxy.sha256", daemon_reload=True)
    units, stamp = facts_for(action)
    change = decide(action, {units: {"memcached": UP, "swift-proxy": UP}, stamp: False}, Context())
    assert [s.command for s in change.sends] == [
        "systemctl daemon-reload", "systemctl restart memcached swift-proxy",
        "mkdir -p -m 0700 /var/lib/lab && sha256sum /etc/swift/proxy-server.conf > /var/lib/lab/swift-proxy.sha256"]
    assert decide(action, {units: {"memcached": UP, "swift-proxy": UP}, stamp: True}, Context()) is None


def test_sql_runs_unless_its_query_answers_what_done_looks_like():
    action = Sql("DROP DATABASE IF EXISTS test;", SqlQuery("SELECT count(*) FROM x"), "0", "remove the test database")
    (fact,) = facts_for(action)
    assert decide(action, {fact: Output(0, "0\n")}, Context()) is None
    change = decide(action, {fact: Output(0, "1\n")}, Context())
    assert change.says == "remove the test database (SQL): the database answers '1'"
    assert change.sends == (Run('mysql -N -B -e "DROP DATABASE IF EXISTS test;"'),)
    assert decide(action, {fact: Output(1, "")}, Context()).says.endswith("the database does not say so")


@pytest.mark.parametrize("done, changed_before, after_change, runs", [
    (True, False, True, False), (False, False, True, True), (True, True, True, True), (True, True, False, False)])
def test_a_command_runs_unless_done_and_after_an_earlier_change_when_it_reads_that(done, changed_before, after_change,
                                                                                   runs):
    action = Command(("keystone-manage db_sync",), "test -f /etc/keystone/fernet-keys/0", after_change)
    change = decide(action, {CheckFact(action.unless): done}, Context(earlier_changed=changed_before))
    assert (change is not None) is runs


def test_a_step_knows_what_changed_before_each_of_its_actions():
    conf, service = FileSpec("/etc/chrony/chrony.conf", "server controller iburst\n"), Service(("chrony",))
    decision = decide_step((conf, service), {FileFact(conf.path): None, UnitsFact(("chrony",)): {"chrony": UP}},
                           Context())
    assert [c.says for c in decision.changes] == ["write /etc/chrony/chrony.conf (0644 root:root): absent",
                                                  "restart chrony (its configuration changes)"]
    assert [type(s) for s in decision.sends] == [Write, Run]


KEYSTONE = Wait("keystone answers on :5000", ("python3", "wait_http.py", "http://controller:5000/v3", "{seconds}"))


def test_a_wait_holds_only_after_a_change_or_while_its_probe_says_late():
    (fact,) = facts_for(KEYSTONE)
    assert fact == OutputFact("python3 wait_http.py http://controller:5000/v3 0")  # asks once
    assert decide(KEYSTONE, {fact: Output(0)}, Context()) is None
    after = decide(KEYSTONE, {fact: Output(0)}, Context(earlier_changed=True))
    assert after.sends == (WaitFor(KEYSTONE),) and not after.changes_host
    assert decide(KEYSTONE, {fact: Output(1)}, Context()).says == (
        "wait until keystone answers on :5000 (at most 60 s): now exit 1")


def test_first_boot_on_another_os_is_refused_in_one_line():
    wait = Wait("first boot", ("python3", "first_boot.py", "ubuntu", "18.04"), "first-boot", 900)
    found = '{"os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)", ' \
            '"matches": false}, "cloud_init": "absent", "locks": []}'
    with pytest.raises(Refused) as refused:
        decide(wait, {facts_for(wait)[0]: Output(0, found)}, Context())
    assert str(refused.value) == ("runs Debian GNU/Linux 12 (bookworm) (debian 12), but the lab's config says os: "
                                  "ubuntu-18.04; set `openstack: {os: ...}` to what the image runs, or use an image "
                                  "of ubuntu-18.04")


def test_a_reboot_is_asked_for_only_when_the_flag_is_there():
    (fact,) = facts_for(Reboot())
    assert decide(Reboot(), {fact: Output(0, "")}, Context()) is None
    change = decide(Reboot(), {fact: Output(0, "required\nlinux-image-4.15.0-213-generic\n")}, Context())
    assert change.sends == (RebootNow("/var/run/reboot-required (asked by linux-image-4.15.0-213-generic)"),)
