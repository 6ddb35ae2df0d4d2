"""Is this fresh host ready for apt? One JSON document of facts; it never waits.

    python3 first_boot.py OS_ID VERSION_ID        (e.g. `ubuntu 18.04`, `debian 12`)
    python3 first_boot.py --wait-locks SECONDS    (before each apt command on apt 1.6)

The first form prints
       {"os": {"id": ..., "version_id": ..., "pretty_name": ..., "matches": bool},
        "cloud_init": "absent" | "running" | "done" | "error",
        "locks": [{"path": "/var/lib/dpkg/lock-frontend", "pid": 1234, "command": "unattended-upgr"}],
        "apt_jobs": ["apt-daily-upgrade.service"]}
and exits 0 (2 for bad arguments). `os` is /etc/os-release against the profile's OS;
`cloud_init` is what `cloud-init status` says (absent when there is no cloud-init);
`locks` names every dpkg/apt lock that a process holds, and who: apt and dpkg take fcntl
locks, so F_GETLK asks the kernel for the holder (pid and command null when the kernel does
not name it: an open file description lock, or a holder outside this pid namespace);
`apt_jobs` names apt's periodic jobs still running (`systemctl is-active`; none without
systemctl): between two of its apt commands apt-daily holds no lock, yet is not done.

Why: on a fresh EC2 host cloud-init is still running and apt-daily / unattended-upgrades
hold the dpkg lock for minutes, and apt 1.6 (Ubuntu 18.04) fails at once on a held lock.
The runner polls this program, with a line naming the holder, until the OS matches,
cloud-init is not running, no lock is held and apt's periodic jobs are done. Its timers are
masked first, so that once done they do not come back (bootstrap/components/base.py).

The second form is the bounded lock wait apt 1.6 lacks (apt 1.9.11 has
-o DPkg::Lock::Timeout): it returns 0 as soon as no dpkg/apt lock is held, says on stderr
every 15 s who holds one, and after SECONDS exits 1 with one line naming the lock and its
holder. FIRST_BOOT_ROOT (default /) prefixes the paths read, so the tests need no root.
"""
from __future__ import print_function

import fcntl
import json
import os
import shlex
import struct
import subprocess
import sys
import time

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
         "/var/cache/apt/archives/lock")
# apt's periodic jobs (started by apt-daily.timer and apt-daily-upgrade.timer).
APT_JOBS = ("apt-daily.service", "apt-daily-upgrade.service")
RUNNING = ("active", "activating", "deactivating", "reloading")
SAY_EVERY = 15.0  # seconds between the lock wait's lines
POLL = 1.0
# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
FLOCK = "hhqqi4x"


def under_root(path):
    return os.path.join(os.environ.get("FIRST_BOOT_ROOT", "/"), path.lstrip("/"))


def os_release():
    """KEY=value pairs of /etc/os-release (values unquoted as a shell would); {} when absent."""
    values = {}
    try:
        with open(under_root("/etc/os-release")) as f:
            lines = f.read().splitlines()
    except (IOError, OSError):
        return values
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            try:
                words = shlex.split(value)
            except ValueError:  # an unbalanced quote: keep the raw text
                words = [value]
            values[key.strip()] = " ".join(words)
    return values


def os_facts(want_id, want_version):
    found = os_release()
    facts = {"id": found.get("ID"), "version_id": found.get("VERSION_ID"), "pretty_name": found.get("PRETTY_NAME")}
    facts["matches"] = facts["id"] == want_id and facts["version_id"] == want_version
    return facts


def cloud_init():
    """absent, running, done or error, from `cloud-init status` (which answers at once)."""
    try:
        process = subprocess.Popen(["cloud-init", "status"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = process.communicate()[0].decode("utf-8", "replace")
    except OSError:
        return "absent"
    status = ""
    for line in out.splitlines():
        if line.strip().startswith("status:"):
            status = line.split(":", 1)[1].strip().lower()
            break
    if "error" in status or "degraded" in status:
        return "error"
    if "running" in status or "not run" in status or "not started" in status:
        return "running"
    if status in ("done", "disabled"):  # disabled: cloud-init will not run, nothing to wait for
        return "done"
    return "error"  # no status line at all: cloud-init itself is broken


def holder(path):
    """(pid, command) of the process holding an fcntl lock on path, or None when free or absent."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        l_type, _, _, _, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        os.close(fd)
    if l_type == fcntl.F_UNLCK:
        return None
    if pid <= 0:  # held, by an open file description lock or from outside this pid namespace
        return None, None
    try:
        with open("/proc/%d/comm" % pid) as f:
            command = f.read().strip()
    except (IOError, OSError):  # gone since, or in another pid namespace
        command = None
    return pid, command


def locks():
    held = []
    for path in LOCKS:
        found = holder(under_root(path))
        if found is not None:
            held.append({"path": path, "pid": found[0], "command": found[1]})
    return held


def apt_jobs():
    """apt's periodic jobs that are running; [] when systemctl is absent (no systemd)."""
    try:
        process = subprocess.Popen(["systemctl", "is-active"] + list(APT_JOBS), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        out = process.communicate()[0].decode("utf-8", "replace")
    except OSError:
        return []
    states = out.split()
    return [unit for unit, state in zip(APT_JOBS, states) if state in RUNNING]


def describe(lock):
    return "%s is held by %s (pid %s)" % (lock["path"], lock["command"] or "?", lock["pid"])


def wait_locks(seconds, clock=time.time, sleep=time.sleep):
    """0 once no dpkg/apt lock is held; 1 after `seconds`, with one line naming the holder."""
    started = said = clock()
    while True:
        held = locks()
        if not held:
            return 0
        now = clock()
        if now - started >= seconds:
            print("apt's lock: still held after %d s: %s; see `ps -fp PID` on the host, then run the "
                  "lab's command again" % (seconds, "; ".join(describe(h) for h in held)), file=sys.stderr)
            return 1
        if now - said >= SAY_EVERY:
            print("waiting %d s (at most %d s) for apt's lock: %s"
                  % (now - started, seconds, "; ".join(describe(h) for h in held)), file=sys.stderr)
            sys.stderr.flush()
            said = now
        sleep(min(POLL, max(0.0, seconds - (now - started))))


def main(args):
    if len(args) == 2 and args[0] == "--wait-locks":
        if not args[1].isdigit():
            print("usage: first_boot.py --wait-locks SECONDS (a whole number)", file=sys.stderr)
            return 2
        return wait_locks(int(args[1]))
    if len(args) != 2:
        print("usage: first_boot.py OS_ID VERSION_ID (e.g. ubuntu 18.04)", file=sys.stderr)
        return 2
    facts = {"os": os_facts(args[0], args[1]), "cloud_init": cloud_init(), "locks": locks(),
             "apt_jobs": apt_jobs()}
    print(json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
