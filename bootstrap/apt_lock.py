"""How every apt command the lab sends waits for dpkg's lock: bounded, never failing at once.

At first boot the lab masks apt's timers and unattended-upgrades (bootstrap/components/base.py),
but a lock can still be held when an apt command starts: the lab's own apt on the same host, a
user's `apt` in another shell, a job started before the timers were masked. apt 1.9.11 and
later wait for dpkg's lock themselves with `-o DPkg::Lock::Timeout=SECONDS`; apt 1.6 (Ubuntu
18.04) has no such option and fails at once, so there the lab's lock wait (first_boot.py
--wait-locks) runs before each apt command. The option does not cover the lists lock that
`apt-get update` takes (/var/lib/apt/lists/lock: "Could not get lock" at once, seen with the
option set), so an update gets the lab's wait too. Which one a host gets is the profile's
choice (plain data), so the plan, `lab plan --shell` and the plan tests show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bootstrap import hostprograms

LOCK_SECONDS = 300  # a dist-upgrade of the lab's own can hold the lock for minutes
# `apt-get` as a command word (not inside a path or a longer name).
_APT_GET = re.compile(r"(?<![\w/.-])apt-get(?= )")
# `apt-get [options] update`: takes the lists lock, which DPkg::Lock::Timeout does not wait for.
_UPDATE = re.compile(r"(?<![\w/.-])apt-get(?: +-o +\S+| +-\S+)* +update\b")
# The commands that take dpkg's or apt's lock: apt-get, and add-apt-repository (it runs
# `apt-get update` itself on Ubuntu 18.04).
_TAKES_LOCK = re.compile(r"(?<![\w/.-])(apt-get|add-apt-repository)(?= )")


@dataclass(frozen=True)
class AptLock:
    """option: apt has -o DPkg::Lock::Timeout (1.9.11 and later); else the lab's wait runs first."""

    option: bool
    seconds: int = LOCK_SECONDS

    def wait_command(self) -> str:
        """The lab's lock wait for apt without the option (python3 is on every supported image)."""
        return hostprograms.call("python3", "first_boot.py", "--wait-locks", str(self.seconds))


def takes_lock(command: str) -> bool:
    return bool(_TAKES_LOCK.search(command))


def guarded(lock: AptLock | None, command: str) -> str:
    """command with a bounded wait for dpkg's lock: the option on each apt-get, or the lab's
    wait before the command; a command that takes no lock, or no lock policy, is unchanged."""
    if lock is None or not takes_lock(command):
        return command
    if lock.option and "add-apt-repository" not in command:
        command = _APT_GET.sub(f"apt-get -o DPkg::Lock::Timeout={lock.seconds}", command)
        if not _UPDATE.search(command):
            return command
    return f"{lock.wait_command()} && {command}"
