"""Is this fresh host ready for apt? One JSON document of facts; it never waits.

    python3 first_boot.py OS_ID VERSION_ID        (e.g. `ubuntu 18.04`, `debian 12`)

prints {"os": {"id": ..., "version_id": ..., "pretty_name": ..., "matches": bool},
        "cloud_init": "absent" | "running" | "done" | "error",
        "locks": [{"path": "/var/lib/dpkg/lock-frontend", "pid": 1234, "command": "unattended-upgr"}]}
and exits 0 (2 for bad arguments). `os` is /etc/os-release against the profile's OS;
`cloud_init` is what `cloud-init status` says (absent when there is no cloud-init);
`locks` names every dpkg/apt lock that a process holds, and who: apt and dpkg take fcntl
locks, so F_GETLK asks the kernel for the holder (pid and command null when the kernel does
not name it: an open file description lock, or a holder outside this pid namespace).

Why: on a fresh EC2 host cloud-init is still running and apt-daily / unattended-upgrades
hold the dpkg lock for minutes, and apt 1.6 (Ubuntu 18.04) fails at once on a held lock.
The runner polls this program, with a line naming the holder, until the OS matches,
cloud-init is not running and no lock is held. FIRST_BOOT_ROOT (default /) prefixes the
paths read, so the tests need no root.
"""
from __future__ import print_function

import fcntl
import json
import os
import shlex
import struct
import subprocess
import sys

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
         "/var/cache/apt/archives/lock")
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


def main(args):
    if len(args) != 2:
        print("usage: first_boot.py OS_ID VERSION_ID (e.g. ubuntu 18.04)", file=sys.stderr)
        return 2
    facts = {"os": os_facts(args[0], args[1]), "cloud_init": cloud_init(), "locks": locks()}
    print(json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
