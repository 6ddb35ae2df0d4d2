"""Bounded waits: how to read a probe's answer, and the loop that asks until it says ready.

A wait never changes a host; it holds a step until something is so (the host has
finished booting, keystone answers on :5000, the cloud serves a user). It is bounded,
says every ~15 s what is still late, and past its bound fails naming what is late.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from bootstrap.actions import Wait
from labcore.remote import RunResult

PROGRESS_EVERY = 15.0  # seconds between "still waiting" lines
ROUND = 15  # the seconds one call of a probe that waits itself (wait_http.py) may take
POLL = 2.0  # between calls of a probe that answers at once (first_boot.py, cloud_ready.py)
QUICK = 0  # the seconds a probe asked with the facts may wait: none, it asks once


@dataclass(frozen=True)
class Verdict:
    ready: bool
    late: str = ""  # what is not ready yet, in a few words
    fatal: str | None = None  # waiting cannot help: one line saying why


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def judge(wait: Wait, exited: int, stdout: str, stderr: str = "") -> Verdict:
    return JUDGES[wait.judge](wait, exited, stdout, stderr)


def _by_exit(wait: Wait, exited: int, stdout: str, stderr: str) -> Verdict:
    if exited == 0:
        return Verdict(True)
    return Verdict(False, _last_line(stderr) or _last_line(stdout) or f"exit {exited}")


def _first_boot(wait: Wait, exited: int, stdout: str, stderr: str) -> Verdict:
    """first_boot.py's JSON: the OS must be the profile's (else fatal at once), cloud-init
    must not be running, no process may hold a dpkg or apt lock, and apt's periodic jobs
    (apt-daily, apt-daily-upgrade) must be done: their timers are masked before this wait,
    so once done they stay done, and none is stopped in the middle of a dpkg run."""
    try:
        facts = json.loads(stdout)
        os_facts, locks = facts["os"], facts.get("locks") or []
    except (ValueError, KeyError, TypeError):
        return Verdict(False, f"first_boot.py gave no answer ({_last_line(stderr) or f'exit {exited}'})")
    wanted = "-".join(wait.probe[-2:])
    if not os_facts.get("matches"):
        runs = os_facts.get("pretty_name") or f"{os_facts.get('id')} {os_facts.get('version_id')}"
        return Verdict(False, fatal=f"runs {runs} ({os_facts.get('id')} {os_facts.get('version_id')}), but the "
                                    f"lab's config says os: {wanted}; set `openstack: {{os: ...}}` to what the "
                                    f"image runs, or use an image of {wanted}")
    late = []
    if facts.get("cloud_init") == "running":
        late.append("cloud-init is still running")
    for lock in locks:
        late.append(f"{lock.get('path')} is held by {lock.get('command') or '?'} (pid {lock.get('pid')})")
    late += [f"{unit} is running" for unit in facts.get("apt_jobs") or []]
    return Verdict(not late, "; ".join(late))


def _cloud_ready(wait: Wait, exited: int, stdout: str, stderr: str) -> Verdict:
    if exited == 0:
        return Verdict(True)
    late = [line[5:].strip() for line in stdout.splitlines() if line.startswith("late ")]
    return Verdict(False, "; ".join(late) or _last_line(stderr) or f"exit {exited}")


JUDGES: dict[str, Callable[[Wait, int, str, str], Verdict]] = {
    "exit": _by_exit, "first-boot": _first_boot, "cloud-ready": _cloud_ready,
}


def wait_until(wait: Wait, probe: Callable[[str], RunResult], progress: Callable[[str], None], *,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """Ask the probe until it says ready, fatal, or wait.seconds have gone; a line every
    PROGRESS_EVERY seconds says how long and what is late. The last verdict."""
    started = said = clock()
    while True:
        asked = clock()
        left = wait.seconds - (asked - started)
        result = probe(wait.command(min(ROUND, left)))
        verdict = judge(wait, result.exited, result.stdout, result.stderr)
        now = clock()
        if verdict.ready or verdict.fatal or now - started >= wait.seconds:
            return verdict
        if now - said >= PROGRESS_EVERY:
            progress(f"waiting {now - started:.0f} s (at most {wait.seconds:.0f} s) until {wait.what}: {verdict.late}")
            said = now
        if now - asked < POLL:
            sleep(min(POLL, max(0.0, wait.seconds - (now - started))))
