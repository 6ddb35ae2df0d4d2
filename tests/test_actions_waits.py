"""Bounded waits: a line every ~15 s naming what is late, a verdict at the bound, never forever."""

from __future__ import annotations

import json

import pytest

from bootstrap.actions import Wait
from bootstrap.waits import judge, wait_until
from labcore.remote import RunResult


class Clock:
    """Time that moves only when the code under test sleeps or a probe takes time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def boot(locks=(), cloud_init="done", matches=True) -> str:
    return json.dumps({"os": {"id": "ubuntu", "version_id": "18.04", "pretty_name": "Ubuntu 18.04.6 LTS",
                              "matches": matches}, "cloud_init": cloud_init, "locks": list(locks)})


FIRST_BOOT = Wait("first boot is done", ("python3", "first_boot.py", "ubuntu", "18.04"), "first-boot", 900)
LOCK = {"path": "/var/lib/dpkg/lock-frontend", "pid": 1712, "command": "unattended-upgr"}


@pytest.mark.parametrize("stdout, ready, late", [
    (boot(), True, ""),
    (boot(cloud_init="absent"), True, ""),
    (boot(cloud_init="error"), True, ""),
    (boot(cloud_init="running"), False, "cloud-init is still running"),
    (boot([LOCK]), False, "/var/lib/dpkg/lock-frontend is held by unattended-upgr (pid 1712)"),
    ("not json", False, "first_boot.py gave no answer (exit 0)"),
])
def test_first_boot_is_done_when_cloud_init_is_done_and_no_apt_lock_is_held(stdout, ready, late):
    verdict = judge(FIRST_BOOT, 0, stdout)
    assert (verdict.ready, verdict.late, verdict.fatal) == (ready, late, None)


def test_cloud_ready_names_every_check_that_is_late():
    wait = Wait("the cloud serves", ("python3", "cloud_ready.py"), "cloud-ready", 180, read_only=False)
    verdict = judge(wait, 1, "ok proxy\nlate storage 10.0.0.51:6200: connection refused\nlate token: HTTP 503\n")
    assert verdict.late == "storage 10.0.0.51:6200: connection refused; token: HTTP 503"
    assert judge(wait, 0, "ok proxy\n").ready


def test_a_wait_says_every_15_seconds_what_is_late_and_ends_when_it_is_not():
    clock, lines = Clock(), []
    answers = iter([boot([LOCK])] * 20 + [boot()])

    def probe(command: str) -> RunResult:
        assert command == "python3 first_boot.py ubuntu 18.04"
        clock.now += 0.1
        return RunResult(0, next(answers))

    verdict = wait_until(FIRST_BOOT, probe, lines.append, clock=clock, sleep=clock.sleep)

    assert verdict.ready
    assert lines and all("held by unattended-upgr (pid 1712)" in line for line in lines)
    waited = [0] + [int(line.split()[1]) for line in lines]  # "waiting 17 s (at most 900 s) until ..."
    assert len(lines) == 2 and all(15 <= b - a <= 17 for a, b in zip(waited, waited[1:]))  # a line every ~15 s


def test_a_wait_past_its_bound_returns_what_is_still_late():
    clock = Clock()
    wait = Wait("keystone answers on :5000", ("python3", "wait_http.py", "http://controller:5000/v3", "{seconds}"),
                seconds=60)
    asked: list[str] = []

    def probe(command: str) -> RunResult:
        asked.append(command.split()[-1])
        clock.now += 15  # wait_http.py itself waits the seconds it is given
        return RunResult(1, "", "http://controller:5000/v3 does not answer after 15 s: connection refused")

    verdict = wait_until(wait, probe, lambda line: None, clock=clock, sleep=clock.sleep)

    assert not verdict.ready and verdict.late.endswith("connection refused")
    assert asked == ["15", "15", "15", "15"] and clock.now == 60


def test_waiting_stops_at_once_when_the_host_runs_another_os():
    clock = Clock()
    verdict = wait_until(FIRST_BOOT, lambda command: RunResult(0, boot(matches=False)), lambda line: None,
                         clock=clock, sleep=clock.sleep)
    assert verdict.fatal and "config says os: ubuntu-18.04" in verdict.fatal and clock.now == 0
