"""bootstrap/host/first_boot.py on every interpreter, with a temporary root (FIRST_BOOT_ROOT), a
fake `cloud-init` on PATH, and a real process holding an fcntl lock as apt and dpkg do."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from interpreters import on, run

DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
UBUNTU_1804 = ('NAME="Ubuntu"\nVERSION="18.04.6 LTS (Bionic Beaver)"\nID=ubuntu\nID_LIKE=debian\n'
               'PRETTY_NAME="Ubuntu 18.04.6 LTS"\nVERSION_ID="18.04"\n')
LOCKS = ("var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock", "var/lib/apt/lists/lock", "var/cache/apt/archives/lock")

# Takes an fcntl write lock the way apt does, names itself as unattended-upgrades does in
# /proc/PID/comm, says "held" and keeps the lock until its stdin closes.
HOLDER = '''
import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
open("/proc/self/comm", "w").write("unattended-upgr")
print("held", flush=True)
sys.stdin.read()
'''


class FreshHost:
    """A root with os-release and the apt/dpkg lock files, and a PATH of our own."""

    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "usr" / "bin"
        self.bin.mkdir(parents=True)
        (root / "etc").mkdir()
        for lock in LOCKS:
            (root / lock).parent.mkdir(parents=True, exist_ok=True)
            (root / lock).write_text("")
        self.os_release(DEBIAN_12)

    def os_release(self, text: str | None) -> None:
        path = self.root / "etc" / "os-release"
        if text is None:
            path.unlink()
        else:
            path.write_text(text)

    def cloud_init(self, output: str, code: int = 0) -> None:
        script = self.bin / "cloud-init"
        script.write_text(f"#!/bin/sh\n[ \"$1\" = status ] || exit 9\nprintf '%s' '{output}'\nexit {code}\n")
        script.chmod(0o755)

    def systemctl(self, states: str) -> None:
        """A systemctl that answers `is-active UNIT...` with these lines (one state per unit)."""
        script = self.bin / "systemctl"
        script.write_text(f"#!/bin/sh\n[ \"$1\" = is-active ] || exit 9\nprintf '{states}'\nexit 3\n")
        script.chmod(0o755)

    def wait_locks(self, version: str, *args: str) -> subprocess.CompletedProcess:
        return run(version, "first_boot.py", "--wait-locks", *args, env={"FIRST_BOOT_ROOT": str(self.root)})

    def facts(self, version: str, os_id: str = "debian", version_id: str = "12") -> dict:
        result = run(version, "first_boot.py", os_id, version_id,
                     env={"FIRST_BOOT_ROOT": str(self.root), "PATH": str(self.bin)})
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return json.loads(result.stdout)


@pytest.fixture
def host(tmp_path):
    return FreshHost(tmp_path)


@on()
def test_first_boot_on_a_quiet_host_of_the_right_os(host, version):
    host.cloud_init("status: done\n")
    assert host.facts(version) == {
        "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)", "matches": True},
        "cloud_init": "done",
        "locks": [],
        "apt_jobs": [],
    }


@on()
def test_first_boot_says_when_the_host_runs_another_os(host, version):
    host.os_release(UBUNTU_1804)
    found = host.facts(version, "debian", "12")["os"]
    assert found == {"id": "ubuntu", "version_id": "18.04", "pretty_name": "Ubuntu 18.04.6 LTS", "matches": False}
    assert host.facts(version, "ubuntu", "18.04")["os"]["matches"] is True
    assert host.facts(version, "ubuntu", "18.04.6")["os"]["matches"] is False


@on()
def test_first_boot_without_os_release_matches_nothing(host, version):
    host.os_release(None)
    assert host.facts(version)["os"] == {"id": None, "version_id": None, "pretty_name": None, "matches": False}


@on()
@pytest.mark.parametrize("output, code, expected", [
    ("status: running\n", 0, "running"),
    ("status: not run\n", 0, "running"),
    ("status: done\n", 0, "done"),
    ("status: disabled\n", 0, "done"),
    ("\nstatus: error\n", 1, "error"),
    ("status: degraded done\n", 2, "error"),
    ("Traceback (most recent call last):\n", 1, "error"),
])
def test_first_boot_reads_cloud_init_status(host, version, output, code, expected):
    host.cloud_init(output, code)
    assert host.facts(version)["cloud_init"] == expected


@on()
def test_first_boot_without_cloud_init_says_absent(host, version):
    assert host.facts(version)["cloud_init"] == "absent"


@on()
def test_first_boot_names_the_process_holding_the_dpkg_lock(host, version):
    lock = host.root / "var/lib/dpkg/lock-frontend"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        locks = host.facts(version)["locks"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert locks == [{"path": "/var/lib/dpkg/lock-frontend", "pid": holder.pid, "command": "unattended-upgr"}]
    assert host.facts(version)["locks"] == []  # released when the holder is gone


@on()
def test_first_boot_leaves_absent_lock_files_absent(host, version):
    for lock in LOCKS:
        (host.root / lock).unlink()
    assert host.facts(version)["locks"] == []
    assert not any((host.root / lock).exists() for lock in LOCKS)


@on()
def test_first_boot_needs_the_profile_os(version):
    result = run(version, "first_boot.py", "debian")
    assert (result.returncode, result.stderr) == (2, "usage: first_boot.py OS_ID VERSION_ID (e.g. ubuntu 18.04)\n")


@on()
def test_first_boot_names_apt_daily_jobs_still_running(host, version):
    """Between two of its apt commands apt-daily holds no lock, yet it is not done."""
    host.systemctl("activating\\ninactive\\n")
    assert host.facts(version)["apt_jobs"] == ["apt-daily.service"]
    host.systemctl("inactive\\nactive\\n")
    assert host.facts(version)["apt_jobs"] == ["apt-daily-upgrade.service"]
    host.systemctl("inactive\\ninactive\\n")
    assert host.facts(version)["apt_jobs"] == []


class Holder:
    """A process holding an fcntl lock on path as apt does, until release()."""

    def __init__(self, path: Path):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "held\n"

    def release(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


@on()
def test_the_lock_wait_returns_at_once_when_no_lock_is_held(host, version):
    started = time.monotonic()
    result = host.wait_locks(version, "30")
    assert (result.returncode, result.stderr) == (0, "")
    assert time.monotonic() - started < 10


@on()
def test_the_lock_wait_returns_once_the_holder_lets_go(host, version):
    holder = Holder(host.root / "var/lib/dpkg/lock")
    timer = threading.Timer(1.5, holder.release)
    timer.start()
    try:
        started = time.monotonic()
        result = host.wait_locks(version, "30")
        took = time.monotonic() - started
    finally:
        timer.join()
    assert result.returncode == 0, result.stderr
    assert 1.0 < took < 20


@on()
def test_the_lock_wait_gives_up_after_its_seconds_naming_the_holder(host, version):
    holder = Holder(host.root / "var/lib/dpkg/lock-frontend")
    try:
        result = host.wait_locks(version, "1")
    finally:
        holder.release()
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("apt's lock: still held after 1 s: /var/lib/dpkg/lock-frontend is held by "
                           f"unattended-upgr (pid {holder.process.pid})")


@on()
@pytest.mark.parametrize("seconds", ["soon", "-1", ""])
def test_the_lock_wait_needs_whole_seconds(host, version, seconds):
    result = host.wait_locks(version, seconds)
    assert (result.returncode, result.stderr) == (2, "usage: first_boot.py --wait-locks SECONDS (a whole number)\n")
