"""The runner's waits and reboots: first boot, a host of another OS, a wait past its bound,
a reboot the upgrade asks for, a step that waits for other hosts."""

from __future__ import annotations

import json
import threading
import time

from fakes import HostFleet
from plan_fixtures import ok, run_fakes

from bootstrap import waits
from bootstrap.actions import FileSpec, Reboot, Wait
from bootstrap.plan import Plan, Step
from labcore.remote import RunResult


def _reboot_plan() -> Plan:
    return Plan((Step("reboot-if-required", "base", ("controller",), (Reboot(),)),
                 Step("next", "base", ("controller",), (FileSpec("/etc/after-reboot", "x\n"),))))


def test_a_host_the_upgrade_asks_to_reboot_is_rebooted_and_the_install_goes_on(tmp_path):
    fleet = HostFleet()
    controller = fleet["controller"].answer(r"reboot-required", RunResult(0, "required\nlinux-image-4.15.0-213\n"))
    rebooted: list[str] = []
    lines: list[str] = []

    def reboot(node):
        rebooted.append(node.name)
        controller.answer(r"reboot-required", RunResult(0, ""))  # the flag is gone once it booted again

    report = run_fakes(_reboot_plan(), fleet, tmp_path, progress=lines.append, reboot=reboot)

    assert report.ok, report.failure
    assert rebooted == ["controller"] and controller.reopened == 1
    assert controller.written() == ["/etc/after-reboot"]
    assert [type(f).__name__ for facts in controller.asked for f in facts] == ["OutputFact", "FileFact"]
    # the facts of the step after the reboot are asked after it, on the new connection
    assert any("controller: rebooting: /var/run/reboot-required (asked by linux-image-4.15.0-213)" in line
               for line in lines)


def test_without_a_reboot_hook_the_run_says_so_and_goes_on(tmp_path):
    fleet = HostFleet()
    fleet["controller"].answer(r"reboot-required", RunResult(0, "required\n"))
    lines: list[str] = []

    report = run_fakes(_reboot_plan(), fleet, tmp_path, progress=lines.append)

    assert report.ok and fleet["controller"].written() == ["/etc/after-reboot"]
    assert any("run `lab reboot controller`" in line for line in lines)


def _first_boot(state: dict) -> str:
    return json.dumps({"os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)",
                              "matches": state.get("matches", True)},
                       "cloud_init": "absent", "locks": state.get("locks", [])})


FIRST_BOOT = ("python3", "/usr/local/lib/openstack-ec2-lab/first_boot.py", "debian", "12")


def test_first_boot_waits_while_a_process_holds_the_dpkg_lock_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(waits, "POLL", 0.01)
    monkeypatch.setattr(waits, "PROGRESS_EVERY", 0.0)
    fleet = HostFleet()
    held = [{"path": "/var/lib/dpkg/lock-frontend", "pid": 4242, "command": "unattended-upgr"}]
    answers = iter([held, held, held, []])
    fleet["controller"].answer("first_boot.py", lambda c, s: RunResult(0, _first_boot({"locks": next(answers)})))
    fleet["controller"].answer("^apt-get update$", ok)
    plan = Plan((Step("first-boot", "base", ("controller",), (Wait("apt is free", FIRST_BOOT, "first-boot", 60),)),
                 Step("archive", "base", ("controller",), commands=("apt-get update",))))
    lines: list[str] = []

    report = run_fakes(plan, fleet, tmp_path, progress=lines.append)

    assert report.ok, report.failure
    assert fleet["controller"].commands()[-1] == "apt-get update"  # only once the lock was free
    late = [line for line in lines if "first-boot: waiting" in line]
    assert late and "/var/lib/dpkg/lock-frontend is held by unattended-upgr (pid 4242)" in late[0]
    assert [r.status for r in report.results] == ["ok", "changed"]  # a wait changes nothing


def test_a_host_running_another_os_stops_the_run_at_once_in_one_line(tmp_path):
    fleet = HostFleet()
    fleet["controller"].answer("first_boot.py", RunResult(0, _first_boot({"matches": False})))
    plan = Plan((Step("first-boot", "base", ("controller",),
                      (Wait("the OS", FIRST_BOOT[:2] + ("ubuntu", "18.04"), "first-boot", 900),)),
                 Step("archive", "base", ("controller",), commands=("apt-get update",))))

    report = run_fakes(plan, fleet, tmp_path)

    message = report.failure.message()
    assert len(message.splitlines()) == 1
    assert message.startswith("controller: runs Debian GNU/Linux 12 (bookworm) (debian 12), but the lab's config "
                              "says os: ubuntu-18.04")
    assert fleet["controller"].sent == []


def test_a_wait_past_its_bound_fails_naming_what_is_late(tmp_path, monkeypatch):
    monkeypatch.setattr(waits, "POLL", 0.01)
    fleet = HostFleet()
    fleet["controller"].answer("cloud_ready", RunResult(1, "ok proxy\nlate object-put: HTTP 503\n"))
    wait = Wait("the cloud serves", ("python3", "cloud_ready.py"), "cloud-ready", 0.2, read_only=False, always=True)
    plan = Plan((Step("cloud-ready", "finalize", ("controller",), (wait,)),))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.failure.summary == "the cloud serves: still not so after 0 s: object-put: HTTP 503"
    assert report.failure.message().startswith("controller: the cloud serves: still not so")


def test_after_waits_for_every_step_the_named_hosts_have_before_it(tmp_path):
    fleet = HostFleet()
    started = threading.Event()
    events: list[str] = []

    def storage_start(command, _stdin):
        time.sleep(0.2)
        events.append("object1 started its services")
        return RunResult(0)

    fleet["object1"].answer("^start-storage$", storage_start)
    fleet["controller"].answer("^cloud-ready$", lambda c, s: events.append("controller checks") or RunResult(0))
    plan = Plan((Step("storage-start", "finalize", ("object1",), commands=("start-storage",)),
                 Step("cloud-ready", "finalize", ("controller",), commands=("cloud-ready",), after=("object1",))))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.ok and not started.is_set()
    assert events == ["object1 started its services", "controller checks"]


