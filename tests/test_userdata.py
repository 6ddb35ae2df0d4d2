"""The launch's user data (lab/userdata.py): a cloud-config whose bootcmd powers the host off at
lab:expires-at, run here in sh against stub commands; and the hand-over to the lab's own timer
(bootstrap/components/expiry.py)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from plan_fixtures import context

from bootstrap.actions import Command, FileSpec, Service
from bootstrap.components.expiry import timer_step
from bootstrap.context import PlanContext
from lab import expiry
from lab.userdata import expiry_script, user_data

EXPIRES = datetime(2026, 12, 6, 14, 0, 0, tzinfo=timezone.utc)
# systemd-run's options in systemd 237, Ubuntu 18.04's (manpages.ubuntu.com/manpages/bionic/man1/systemd-run.1.html):
# a newer option in the script would fail a bionic host's first boot, silently.
SYSTEMD_RUN_237 = {"--no-ask-password", "--scope", "--unit", "--property", "--description", "--slice", "-r",
                   "--remain-after-exit", "--send-sighup", "--service-type", "--uid", "--gid", "--nice",
                   "--working-directory", "-E", "--setenv", "--pty", "--pipe", "--quiet", "--on-active",
                   "--on-boot", "--on-startup", "--on-unit-active", "--on-unit-inactive", "--on-calendar",
                   "--timer-property", "--no-block", "--wait", "--user", "--system", "-H", "--host", "-M",
                   "--machine", "-h", "--help", "--version"}


def bootcmd(data: str) -> str:
    document = yaml.safe_load(data)
    assert data.startswith("#cloud-config\n") and list(document) == ["bootcmd"]
    (script,) = document["bootcmd"]
    return script


def test_the_user_data_is_a_cloud_config_whose_bootcmd_powers_off_at_the_tags_time():
    data = user_data(EXPIRES)
    script = bootcmd(data)
    assert script == expiry_script(EXPIRES)
    end = int(re.search(r"left=\$\(\( (\d+) - \$\(date \+%s\) \)\)", script).group(1))
    assert datetime.fromtimestamp(end, timezone.utc) == EXPIRES
    assert "2026-12-06T14:00:00Z" in data.splitlines()[1]  # said in words at the top, as --dry-run shows it


def test_a_lab_that_never_expires_is_launched_without_user_data():
    assert user_data(None) is None


def test_every_systemd_run_option_the_script_uses_is_in_systemd_237():
    script = expiry_script(EXPIRES)
    words = script.replace("\\\n", " ").split()
    used = {w.split("=")[0] for w in words[words.index("systemd-run"):] if w.startswith("-")}
    assert used == {"--no-block", "--unit", "--description", "--on-active", "--timer-property"}
    assert used <= SYSTEMD_RUN_237


def _run_at_boot(tmp_path: Path, now: datetime, handed_over: bool = False) -> list[str]:
    """The bootcmd in sh at `now`, with date, systemd-run and systemctl stubs that record their argv."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir(exist_ok=True)
    stubs = {"date": f"echo {int(now.timestamp())}", "systemd-run": f'echo "systemd-run $*" >> {log}',
             "systemctl": f'echo "systemctl $*" >> {log}'}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    handover = tmp_path / "etc" / "expiry"
    if handed_over:
        handover.parent.mkdir(parents=True, exist_ok=True)
        handover.write_text(expiry.HANDOVER_NOTE)
    script = expiry_script(EXPIRES).replace(expiry.HANDOVER_FILE, str(handover))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_at_boot_before_the_expiry_a_transient_timer_powers_off_when_the_time_is_left(tmp_path):
    calls = _run_at_boot(tmp_path, EXPIRES - timedelta(hours=7, minutes=59, seconds=30))
    assert len(calls) == 1 and calls[0].startswith("systemd-run --no-block --unit=lab-expiry-launch ")
    assert "--on-active=28770s --timer-property=AccuracySec=1s /bin/systemctl poweroff" in calls[0]


@pytest.mark.parametrize("late", [timedelta(0), timedelta(days=3)])
def test_a_host_that_boots_at_or_past_its_expiry_powers_off_at_once(tmp_path, late):
    assert _run_at_boot(tmp_path, EXPIRES + late) == ["systemctl --no-block poweroff"]


def test_once_the_labs_own_timer_took_over_the_launch_timer_stands_down_at_every_boot(tmp_path):
    assert _run_at_boot(tmp_path, EXPIRES - timedelta(hours=1), handed_over=True) == []
    assert _run_at_boot(tmp_path, EXPIRES + timedelta(hours=1), handed_over=True) == []  # extended past the first time


def test_the_labs_timer_step_writes_the_hand_over_and_stops_the_launch_timer():
    ctx = context()
    inventory = ctx.inventory.model_copy(update={"expires_at": "2026-12-06T20:00:00Z"})
    actions = timer_step(PlanContext.for_inventory(inventory, ctx.secrets)).actions
    files = {a.path: a.content for a in actions if isinstance(a, FileSpec)}
    assert "OnCalendar=2026-12-06 20:00:00 UTC" in files["/etc/systemd/system/lab-expiry.timer"]
    assert files[expiry.HANDOVER_FILE] == expiry.HANDOVER_NOTE
    kinds = [type(a) for a in actions]
    assert kinds.index(Service) < kinds.index(Command)  # the new timer runs before the launch's is stopped
    stop = actions[-1]
    assert stop.run == ("systemctl stop lab-expiry-launch.timer",)
    assert stop.unless == "! systemctl is-active --quiet lab-expiry-launch.timer"  # done where none runs


def test_extended_to_never_a_host_still_running_the_launch_timer_hands_over_too(tmp_path):
    """A lab launched with an expiry and extended to never: without the file the next boot would
    schedule the launch's time again."""
    ctx = context()  # the inventory has no expires_at: never
    gone, handover = timer_step(ctx).actions
    assert "rm -f /etc/systemd/system/lab-expiry.timer" in " ".join(gone.run)
    assert handover.unless == "! systemctl is-active --quiet lab-expiry-launch.timer"
    write, stop = handover.run
    target = tmp_path / "etc" / "openstack-ec2-lab" / "expiry"
    subprocess.run(["sh", "-c", write.replace("/etc/", f"{tmp_path}/etc/")], check=True)
    assert target.read_text() == expiry.HANDOVER_NOTE
    assert stop == "systemctl stop lab-expiry-launch.timer"


def test_the_readme_shows_the_user_data_the_code_sends():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    shown = readme.split("**From RunInstances on, a lab ends by itself.**")[1].split("```yaml\n")[1].split("```")[0]
    assert shown == user_data(datetime(2026, 12, 2, 20, 0, 0, tzinfo=timezone.utc))
