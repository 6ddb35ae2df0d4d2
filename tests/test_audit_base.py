"""The base phase run for real: the runner's own shell in bash on directories standing in for the hosts' /.

The runner, the facts it asks in one round trip, the files it writes, first_boot.py and
the commands all run as they would over SSH; only absolute paths are moved under a
directory per host, and the commands that would change this machine (hostname,
hostnamectl, apt-get, add-apt-repository, chown) are small fakes that act on that directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fakes import LocalHost, base_hosts
from plan_fixtures import IPS, base_phase

from bootstrap.components import base
from bootstrap.hostprograms import HOST_DIR, PROGRAMS, source
from bootstrap.plan import Plan
from bootstrap.runner import run_plan
from lab.hostsfile import BEGIN, END, render_hosts
from labcore.secrets import Secrets


def install(plan: Plan, inv, hosts: dict[str, LocalHost], tmp_path: Path, **options):
    report = run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs",
                      progress=lambda line: None, **options)
    assert report.ok, report.failure and report.failure.message()
    return report


def apt_calls(host: LocalHost) -> list[str]:
    log = host.path("/apt-get.log")
    return log.read_text().splitlines() if log.exists() else []


def a_day_passes(hosts: dict[str, LocalHost]) -> None:
    day_ago = time.time() - 86400
    for host in hosts.values():
        for path in host.root.rglob("*"):
            os.utime(path, (day_ago, day_ago), follow_symlinks=False)


@pytest.fixture(params=["ubuntu-18.04", "debian-12"])
def os_name(request):
    return request.param


# ---------------------------------------------------------------- behaviour
def test_second_install_a_day_later_changes_nothing_in_two_round_trips_per_host(os_name, tmp_path):
    hosts = base_hosts(tmp_path, os_name)
    plan, inv = base_phase(os_name)
    first = install(plan, inv, hosts, tmp_path)
    # programs, first boot (apt's timers masked), hostname, hosts-file, package-archive on every host;
    # reboot had nothing to do
    assert first.counts()["changed"] == 5 * len(hosts)
    upgrades = {name: apt_calls(host) for name, host in hosts.items()}
    assert all(calls[0].split()[-1] == "update" for calls in upgrades.values())  # apt-get update comes first

    a_day_passes(hosts)
    calls = {name: len(host.calls) for name, host in hosts.items()}
    second = install(plan, inv, hosts, tmp_path)

    assert second.counts()["changed"] == 0
    assert {name: apt_calls(host) for name, host in hosts.items()} == upgrades  # no apt-get update again
    assert {name: len(host.calls) - calls[name] for name, host in hosts.items()} == {n: 2 for n in hosts}


def test_the_lab_programs_are_on_every_host_as_shipped(tmp_path):
    hosts = base_hosts(tmp_path, "debian-12")
    plan, inv = base_phase("debian-12")
    install(plan, inv, hosts, tmp_path)
    for host in hosts.values():
        for program in PROGRAMS:
            path = host.path(f"{HOST_DIR}/{program}")
            assert path.read_text() == source(program) and path.stat().st_mode & 0o777 == 0o755


def test_install_names_every_host_and_keeps_the_images_hosts_lines(tmp_path):
    hosts = base_hosts(tmp_path, "debian-12")
    plan, inv = base_phase("debian-12")  # hostnamectl fails there: the `hostname` fallback is used
    inode = hosts["object1"].path("/etc/hosts").stat().st_ino
    install(plan, inv, hosts, tmp_path)
    block = [BEGIN] + [f"{ip} {name}" for name, ip in IPS.items()] + [END]
    for name, host in hosts.items():
        assert host.read("/running-hostname") == f"{name}\n"
        assert host.read("/etc/hostname") == f"{name}\n"
        assert host.read("/etc/hosts").splitlines() == [
            "127.0.0.1 localhost", "# 127.0.1.1 ubuntu-bionic", "::1 ip6-localhost ip6-loopback", *block]
    assert hosts["object1"].path("/etc/hosts").stat().st_ino == inode  # rewritten in place (a bind mount stays)


def test_install_repairs_a_hosts_file_edited_by_hand_and_keeps_the_edit(tmp_path):
    hosts = base_hosts(tmp_path, "ubuntu-18.04")
    plan, inv = base_phase("ubuntu-18.04")
    install(plan, inv, hosts, tmp_path)
    object1 = hosts["object1"]
    edited = object1.read("/etc/hosts").replace("10.0.0.52 object2", "10.9.9.9 object2") + "192.0.2.1 mirror\n"
    object1.write("/etc/hosts", edited)

    again = install(plan, inv, hosts, tmp_path)

    assert [(r.host, r.step) for r in again.results if r.status == "changed"] == [("object1", "hosts-file")]
    text = object1.read("/etc/hosts")
    assert "10.0.0.52 object2" in text and "10.9.9.9" not in text
    assert "192.0.2.1 mirror" in text and text.endswith(f"{END}\n")
    assert text == render_hosts(edited, inv)  # exactly what `lab up` writes


def test_a_renamed_host_gets_its_name_back(tmp_path):
    hosts = base_hosts(tmp_path, "ubuntu-18.04")
    plan, inv = base_phase("ubuntu-18.04")
    install(plan, inv, hosts, tmp_path)
    hosts["object2"].write("/running-hostname", "ip-10-0-0-52\n")  # e.g. cloud-init after a reboot

    again = install(plan, inv, hosts, tmp_path)

    assert [(r.host, r.step) for r in again.results if r.status == "changed"] == [("object2", "hostname")]
    assert hosts["object2"].read("/running-hostname") == "object2\n"


def test_a_host_of_another_os_is_refused_before_any_apt_command(tmp_path):
    hosts = base_hosts(tmp_path, "debian-12")
    plan, inv = base_phase("ubuntu-18.04")  # the config says ubuntu-18.04, the hosts run Debian 12

    report = run_plan(plan, inv, lambda node: hosts[node.name], Secrets({}), log_dir=tmp_path / "logs",
                      progress=lambda line: None)

    assert report.failure.step == "first-boot"
    assert "runs Debian GNU/Linux 12 (bookworm) (debian 12), but the lab's config says os: ubuntu-18.04" in (
        report.failure.message())
    assert all(apt_calls(host) == [] for host in hosts.values())


def test_a_host_asking_for_a_reboot_after_the_upgrade_is_rebooted(tmp_path):
    hosts = base_hosts(tmp_path, "ubuntu-18.04")
    plan, inv = base_phase("ubuntu-18.04")
    hosts["controller"].write("/var/run/reboot-required", "*** System restart required ***\n")
    hosts["controller"].write("/var/run/reboot-required.pkgs", "linux-image-4.15.0-213-generic\n")
    rebooted = []

    def reboot(node):
        rebooted.append(node.name)
        hosts[node.name].path("/var/run/reboot-required").unlink()  # /run is empty after a boot

    install(plan, inv, hosts, tmp_path, reboot=reboot)
    again = install(plan, inv, hosts, tmp_path, reboot=reboot)

    assert rebooted == ["controller"]
    assert again.counts()["changed"] == 0


# ---------------------------------------------------------------- the plan
def test_the_host_steps_come_first_and_lab_up_runs_the_same_ones():
    from bootstrap.planner import host_plan

    plan, inv = base_phase("ubuntu-18.04")
    names = [s.name for s in plan.for_host("object1")]
    assert names == ["host-programs", "first-boot", "hostname", "hosts-file", "expiry-timer", "package-archive",
                     "reboot-if-required"]
    up = host_plan(inv)
    assert [(s.name, s.hosts, s.actions) for s in up.steps] == [(s.name, s.hosts, s.actions) for s in plan.steps[:7]]


def test_package_archive_is_not_redone_because_lists_got_old():
    plan, _ = base_phase("ubuntu-18.04")
    archive = next(s for s in plan.steps if s.name == "package-archive").actions[0]
    assert "-mmin" not in archive.unless and "-mtime" not in archive.unless
    assert archive.unless.startswith("grep -rqs 'rocky' /etc/apt/sources.list.d/")  # the profile's own check first
    assert base.ARCHIVE_STAMP in archive.run[-1] and base.ARCHIVE_STAMP in archive.unless
    assert "apt_pocket.py" in archive.run[0]  # the archive asked for the pocket before any apt command
    assert archive.run[1].endswith(" && apt-get update")  # before software-properties-common is installed
