"""`lab install --check` changes nothing and says what would change; a second install asks few questions.

The hosts are `converged` FakeHosts (everything the plan wants is so, as after `lab
install`) that are read-only for --check: any send fails the test. The same check runs
for real in bash on LocalHosts, whose every file is compared before and after.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fakes import HostFleet, base_hosts
from plan_fixtures import IPS, base_phase, converged, inventory, plan_for
from rich.console import Console

from bootstrap import runner
from bootstrap.report import render_check, summary_line
from bootstrap.runner import execute, run_plan
from lab import cli
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.remote import RunResult
from labcore.secrets import MASK, Secrets

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "lab.yaml")


def lab_of(os_name: str, read_only: bool = False):
    ctx, plan = plan_for(os_name)
    fleet = HostFleet({name: converged(plan, name) for name in IPS})
    for host in fleet.hosts.values():
        host.read_only = read_only
        host.answer(r"^systemctl (restart|enable|daemon-reload)\b", RunResult(0))
        host.answer(r"cloud_ready\.py", RunResult(0, "ok proxy\nok token\nok object-put\n"))
    return ctx, plan, fleet


def go(ctx, plan, fleet, tmp_path, check: bool = False):
    return execute(plan, ctx.inventory, fleet, ctx.secrets, log_dir=tmp_path / "logs", progress=lambda line: None,
                   check=check)


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_a_check_of_an_installed_lab_finds_nothing_to_change_and_sends_nothing(os_name, tmp_path):
    ctx, plan, fleet = lab_of(os_name, read_only=True)

    report = go(ctx, plan, fleet, tmp_path, check=True)

    assert report.ok, report.failure and report.failure.message()
    assert not report.would_change and report.counts()["changed"] == 0
    assert all(host.sent == [] for host in fleet.hosts.values())
    assert summary_line(report).startswith("0 would change")


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_a_second_install_changes_nothing_in_two_round_trips_per_phase_and_host(os_name, tmp_path):
    ctx, plan, fleet = lab_of(os_name)

    report = go(ctx, plan, fleet, tmp_path)

    assert report.ok and report.counts()["changed"] == 0
    # Per phase and host: the first step's facts, then every other step's at once. The
    # controller has 10 phases (4 of them of one step), a storage node 5 (1 of one step).
    assert {name: fleet.round_trips(name) for name in IPS} == {"controller": 16, "object1": 9, "object2": 9}
    # What else a host is sent: the controller's cloud-ready probe, nothing on the storage nodes.
    assert [c.split()[1] for c in fleet["controller"].commands()] == [
        "/usr/local/lib/openstack-ec2-lab/cloud_ready.py"]
    assert fleet["object1"].sent == [] and fleet["controller"].reads == ["/etc/swift/account.ring.gz",
                                                                         "/etc/swift/container.ring.gz",
                                                                         "/etc/swift/object.ring.gz"]


def test_a_hand_edit_is_named_with_its_diff_and_install_then_restores_the_file(tmp_path):
    ctx, plan, fleet = lab_of("debian-12", read_only=True)
    object1 = fleet["object1"]
    wanted = object1.files["/etc/chrony/chrony.conf"]
    object1.files["/etc/chrony/chrony.conf"] = (wanted[0].replace(b"server controller", b"pool 2.debian.pool.ntp.org"),
                                                 *wanted[1:])

    check = go(ctx, plan, fleet, tmp_path, check=True)

    changed = [(r.host, r.step) for r in check.results if r.status == "changed"]
    assert changed == [("object1", "chrony-follow-controller")]
    (result,) = [r for r in check.results if r.status == "changed"]
    assert [c.says for c in result.changes] == ["write /etc/chrony/chrony.conf (0644 root:root): content differs",
                                                "restart chrony (its configuration changes)"]
    assert "-pool 2.debian.pool.ntp.org iburst\n+server controller iburst\n" in result.changes[0].diff
    out = io.StringIO()
    render_check(check, Console(file=out, width=200))
    assert "object1: 1 steps would change" in out.getvalue() and "controller: nothing would change" in out.getvalue()
    assert "      +server controller iburst" in out.getvalue()

    object1.read_only = False
    install = go(ctx, plan, fleet, tmp_path)
    assert install.counts()["changed"] == 1 and object1.files["/etc/chrony/chrony.conf"] == wanted
    assert object1.commands() == ["systemctl daemon-reload", "systemctl restart chrony"]  # the twin's drop-in
    object1.read_only = True
    assert not go(ctx, plan, fleet, tmp_path, check=True).would_change


def test_a_diff_never_shows_a_secret(tmp_path):
    ctx, plan, fleet = lab_of("debian-12", read_only=True)
    controller = fleet["controller"]
    conf, mode, owner = controller.files["/etc/keystone/keystone.conf"]
    controller.files["/etc/keystone/keystone.conf"] = (conf.replace(b"fernet", b"uuid"), mode, owner)

    check = go(ctx, plan, fleet, tmp_path, check=True)

    (result,) = [r for r in check.results if r.status == "changed"]
    diff = result.changes[0].diff
    assert "-provider = uuid\n+provider = fernet\n" in diff
    assert ctx.secrets["keystone_dbpass"] not in diff
    assert f" connection = mysql+pymysql://keystone:{MASK}@controller/keystone\n" in diff  # a line of context


def test_a_check_in_bash_leaves_every_file_of_every_host_as_it_was(tmp_path):
    hosts = base_hosts(tmp_path, "debian-12")
    plan, inv = base_phase("debian-12")
    assert run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs",
                    progress=lambda line: None).ok
    hosts["object2"].write("/etc/hosts", hosts["object2"].read("/etc/hosts").replace("10.0.0.52 object2\n", ""))
    hosts["controller"].write("/etc/hostname", "ip-10-0-0-11\n")
    before = {name: host.snapshot() for name, host in hosts.items()}

    check = run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "check-logs",
                     progress=lambda line: None, check=True)

    assert {name: host.snapshot() for name, host in hosts.items()} == before
    assert sorted((r.host, r.step) for r in check.results if r.status == "changed") == [
        ("controller", "hostname"), ("object2", "hosts-file")]
    (hosts_file,) = [r for r in check.results if r.step == "hosts-file" and r.status == "changed"]
    assert "+10.0.0.52 object2\n" in hosts_file.changes[0].diff


# ------------------------------------------------------------------ the command
@pytest.fixture
def saved_lab(monkeypatch):
    from lab.keypair import generate_key
    from labcore.secrets import ensure_secrets

    paths = LabPaths.for_lab("rocky-lab").ensure()
    inv = inventory("debian-12")
    save_inventory(inv, paths.inventory)
    generate_key(paths.key_file)
    secrets = ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    from bootstrap.planner import build_plan

    plan = build_plan(inv, secrets)
    fleet = HostFleet({name: converged(plan, name) for name in IPS})
    for host in fleet.hosts.values():
        host.read_only = True
    monkeypatch.setattr(runner, "remote_sessions", lambda factory: fleet)  # the hosts, instead of SSH
    return paths, fleet


def test_lab_install_check_exits_0_when_nothing_would_change_and_3_when_something_would(saved_lab, capsys):
    paths, fleet = saved_lab
    argv = ["install", "--check", "--config", CONFIG, "--target", "sim"]

    assert cli.main(argv) == 0
    assert "nothing would change" in capsys.readouterr().out

    memcached = fleet["controller"].files["/etc/memcached.conf"]
    fleet["controller"].files["/etc/memcached.conf"] = (b"-l 127.0.0.1\n", *memcached[1:])
    assert cli.main(argv) == 3
    out = capsys.readouterr().out
    assert "controller-services/memcached-listen" in out and "+-l 10.0.0.11" in out
    assert all(host.sent == [] for host in fleet.hosts.values())
    assert not paths.openrc("admin").exists()  # --check writes nothing here either


def test_the_help_of_install_says_what_exit_3_means(capsys):
    with pytest.raises(SystemExit):
        cli.main(["install", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--check" in help_text and "3 when something would" in help_text
