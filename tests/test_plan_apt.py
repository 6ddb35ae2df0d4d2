"""apt on a fresh image (issue 20): apt's periodic jobs off for the life of the lab, a bounded
lock wait on every apt command, the archive asked for Rocky's pocket first, MariaDB by its
own unit name. The plan for both profiles, and the base phase run in bash on directories."""

from __future__ import annotations

import re
import shlex

import pytest
from fakes import base_hosts
from plan_fixtures import actions, base_phase, fresh_commands, fresh_sends, plan_for, rendered, step_named

from bootstrap.actions import Command, Service, Wait
from bootstrap.apt_lock import AptLock, guarded
from bootstrap.profiles import CLOUD_ARCHIVE_RELEASE, DEBIAN_12, UBUNTU_1804_ROCKY
from bootstrap.changes import Run
from bootstrap.runner import run_plan
from labcore.secrets import Secrets

TIMERS = "apt-daily.timer apt-daily-upgrade.timer"
WAIT = "python3 /usr/local/lib/openstack-ec2-lab/first_boot.py --wait-locks 300 && "
APT = re.compile(r"(?<![\w/.-])(apt-get|add-apt-repository)(?= )")


def apt_commands(os_name: str) -> list[str]:
    """Every command of the plan that runs apt, as sent to a fresh host."""
    _, plan = plan_for(os_name)
    return [c for s in plan.steps for c in fresh_commands(s) if APT.search(c)]


def test_the_profile_says_how_apt_waits_for_the_lock():
    assert UBUNTU_1804_ROCKY.apt_lock == AptLock(option=False, seconds=300)  # apt 1.6: no DPkg::Lock::Timeout
    assert DEBIAN_12.apt_lock == AptLock(option=True, seconds=300)  # apt 2.6


def test_on_debian_12_every_apt_get_waits_for_the_lock_itself():
    commands = apt_commands("debian-12")
    assert len(commands) == 6  # apt-get update, each role's two installs, the controller's openstack-dashboard
    for command in commands:
        assert len(re.findall(r"apt-get ", command)) == len(
            re.findall(r"apt-get -o DPkg::Lock::Timeout=300 ", command)), command
    # The option waits for dpkg's lock only; apt-get update takes the lists lock: the lab's wait too.
    assert commands[0] == WAIT + "apt-get -o DPkg::Lock::Timeout=300 update"
    assert not [c for c in commands[1:] if "--wait-locks" in c]


def test_on_ubuntu_18_04_the_labs_lock_wait_runs_before_each_apt_command():
    commands = apt_commands("ubuntu-18.04")
    assert len(commands) == 10  # the archive's five, each role's two installs, the controller's openstack-dashboard
    for command in commands:
        assert "DPkg::Lock::Timeout" not in command, command
        for found in APT.finditer(command):
            before = command[:found.start()].removesuffix("DEBIAN_FRONTEND=noninteractive ")
            assert before.endswith(WAIT), (found.group(), command)


def test_a_command_without_apt_is_sent_as_written():
    assert guarded(AptLock(option=False), "systemctl restart mariadb") == "systemctl restart mariadb"
    assert guarded(None, "apt-get update") == "apt-get update"
    assert guarded(AptLock(option=True, seconds=5), "DEBIAN_FRONTEND=noninteractive apt-get install -y x") == (
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=5 install -y x")
    assert guarded(AptLock(option=True), "add-apt-repository -y cloud-archive:rocky").startswith(WAIT)
    assert guarded(AptLock(option=True), "apt-get update -q") == WAIT + "apt-get -o DPkg::Lock::Timeout=300 update -q"
    assert guarded(AptLock(option=True), "apt-get install -y update-notifier") == (
        "apt-get -o DPkg::Lock::Timeout=300 install -y update-notifier")


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_first_boot_masks_apts_timers_then_waits_then_masks_unattended_upgrades(os_name):
    _, plan = plan_for(os_name)
    step = step_named(plan, "first-boot", "controller")
    timers, wait, unattended = step.actions
    assert isinstance(timers, Command) and isinstance(wait, Wait) and isinstance(unattended, Command)
    assert timers.run[0] == f"systemctl mask {TIMERS}" and "systemctl stop" in timers.run[1]
    assert wait.judge == "first-boot" and "apt's daily jobs are done" in wait.what
    assert unattended.run[0] == "systemctl mask unattended-upgrades.service"
    sent = [s.command if isinstance(s, Run) else "the wait" for s in fresh_sends(step)]
    assert sent.index(f"systemctl mask {TIMERS}") < sent.index("the wait") < sent.index(
        "systemctl mask unattended-upgrades.service")


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_no_apt_command_comes_before_the_first_boot_step(os_name):
    _, plan = plan_for(os_name)
    order = [s.name for s in plan.for_host("object1")]
    first_apt = next(i for i, s in enumerate(plan.for_host("object1")) if any(APT.search(c) for c in rendered(s)))
    assert order.index("first-boot") < first_apt


def test_the_base_phase_leaves_apts_jobs_masked_and_stopped_in_that_order(tmp_path):
    hosts = base_hosts(tmp_path, "ubuntu-18.04")
    plan, inv = base_phase("ubuntu-18.04")
    report = run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs",
                      progress=lambda line: None)
    assert report.ok, report.failure and report.failure.message()
    for host in hosts.values():
        assert host.read("/systemd/log").splitlines() == [
            f"mask {TIMERS}", "stop apt-daily.timer", "stop apt-daily-upgrade.timer",
            "mask unattended-upgrades.service", "stop unattended-upgrades.service"]
        assert not list(host.path("/systemd/active").iterdir())
    again = run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs2",
                     progress=lambda line: None)
    assert [r.step for r in again.results if r.status == "changed"] == []  # masked for good: nothing to do


def test_the_archive_is_asked_for_rockys_pocket_before_anything_is_added():
    run = step_named(plan_for("ubuntu-18.04")[1], "package-archive", "controller").actions[0].run
    assert run[0] == ("python3 /usr/local/lib/openstack-ec2-lab/apt_pocket.py "
                      f"{CLOUD_ARCHIVE_RELEASE} 20 debian-12")
    assert CLOUD_ARCHIVE_RELEASE == "http://ubuntu-cloud.archive.canonical.com/ubuntu/dists/bionic-updates/rocky/Release"
    assert [i for i, c in enumerate(run) if "add-apt-repository" in c][0] > 0
    debian = step_named(plan_for("debian-12")[1], "package-archive", "controller").actions[0].run
    assert not any("apt_pocket.py" in c for c in debian)


def test_the_preflight_is_what_the_base_phase_runs_first_on_ubuntu(tmp_path):
    hosts = base_hosts(tmp_path, "ubuntu-18.04")
    plan, inv = base_phase("ubuntu-18.04")
    assert run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs",
                    progress=lambda line: None).ok
    for host in hosts.values():  # the fake python3 logs it (this machine never asks the real archive)
        assert host.read("/apt-pocket.log").split()[1:] == [CLOUD_ARCHIVE_RELEASE, "20", "debian-12"]


def test_a_pocket_that_is_gone_stops_the_install_before_any_apt_command(tmp_path):
    line = (f"package archive: {CLOUD_ARCHIVE_RELEASE} answered HTTP 404 Not Found within 20 s: the archive no "
            "longer serves this release; the lab cannot install from it. The fallback is `openstack: {os: "
            "debian-12}` in the lab's config (then `lab down` and `lab up`)")
    hosts = base_hosts(tmp_path, "ubuntu-18.04")
    fake = hosts["controller"].bin_dir / "python3"
    fake.write_text(fake.read_text().replace('exit 0;;', f"echo {shlex.quote(line)} >&2; exit 1;;", 1))
    plan, inv = base_phase("ubuntu-18.04")
    report = run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs",
                      progress=lambda line: None)
    assert report.failure.step == "package-archive"
    assert line in report.failure.message()
    assert all(not host.path("/apt-get.log").exists() for host in hosts.values())


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_mariadb_is_enabled_by_its_own_unit_never_the_mysql_alias(os_name):
    """systemd refuses to enable an alias ("Refusing to operate on linked unit file"): on
    Ubuntu 18.04 mysql.service is mariadb-server-10.1's alias of mariadb.service."""
    _, plan = plan_for(os_name)
    (service,) = actions(step_named(plan, "mariadb-config", "controller"), Service)
    assert service.units == ("mariadb",)
    sent = [c for s in plan.steps for c in fresh_commands(s)]
    assert "systemctl enable mariadb" in sent
    assert not [c for c in sent if re.search(r"systemctl \w+ .*\bmysql\b", c)]
