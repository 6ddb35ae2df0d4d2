"""One systemd-nspawn container: boot it, find its init, run things in it, kill it.

Flags measured on this kind of machine (no systemd as PID 1): `--register=no
--keep-unit` and `/run/systemd/nspawn` made by hand; the network namespace is made
beforehand (twin/netns.py) so the instance's address is there before sshd starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from twin import procs
from twin.hostcmd import HostCommandError, sh

INIT_TIMEOUT_SECONDS = 20.0
KILL_TIMEOUT_SECONDS = 10.0
PROPAGATE = Path("/run/systemd/nspawn/propagate")


def machine_name(instance_id: str) -> str:
    return f"lab-{instance_id[-12:]}"


def is_nspawn(pid: int) -> bool:
    """Whether pid is a live systemd-nspawn."""
    return procs.runs(pid, b"systemd-nspawn")


def boot(root: Path, *, machine: str, netns: str, console_log: Path, hypervisor: Path,
         exec_prefix: Sequence[str] = ()) -> subprocess.Popen:
    """Start the container booting systemd, detached from the caller's session.

    No hostname is given: the body starts as `localhost`, as an EC2 instance does, until
    cloud-init sets the one the metadata service says. hypervisor: a folder shown read-only
    as /sys/hypervisor. --private-network beside the namespace's path makes nspawn's /sys a
    tmpfs holding sysfs's folders (with the path alone it is sysfs, read-only), so a folder
    can be bound there; the namespace is still the one made beforehand. The console (cloud-init's output among
    the rest) goes to console_log. exec_prefix: a command that execs the rest (e.g. into a
    cgroup, twin/cpu.py), so the Popen's pid is still systemd-nspawn's."""
    Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
    argv = [*exec_prefix, "systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
            f"--directory={root}", f"--machine={machine}",
            f"--network-namespace-path=/run/netns/{netns}", "--private-network", "--resolv-conf=copy-host",
            "--timezone=off", "--console=read-only", "--link-journal=no",
            f"--bind-ro={hypervisor}:/sys/hypervisor"]
    with console_log.open("ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _is_namespace_init(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
    return len(nspid) > 1 and nspid[-1] == "1"


def find_init(nspawn_pid: int) -> int | None:
    """The container's PID 1, as this machine numbers it: a descendant of nspawn that is 1 inside."""
    queue = _children(nspawn_pid)
    while queue:
        pid = queue.pop(0)
        if _is_namespace_init(pid):
            return pid
        queue += _children(pid)
    return None


def wait_for_init(nspawn_pid: int, alive=None, timeout: float = INIT_TIMEOUT_SECONDS) -> int:
    """alive: how to tell nspawn still runs (our own child: Popen.poll, as /proc/PID/cmdline
    can read empty while it is still in execve); other processes: is_nspawn."""
    alive = alive or (lambda: is_nspawn(nspawn_pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        init = find_init(nspawn_pid)
        if init is not None:
            return init
        if not alive():
            raise HostCommandError(f"twin: systemd-nspawn (pid {nspawn_pid}) exited before its container started")
        time.sleep(0.1)
    raise HostCommandError(f"twin: the container of systemd-nspawn pid {nspawn_pid} had no init after {timeout:.0f} s")


def run_inside(init_pid: int, script: str) -> None:
    """Run a shell script in the container's mount namespace (its /dev), as root of this machine."""
    sh("nsenter", "-t", str(init_pid), "-m", "--", "sh", "-c", script)


def wait_gone(nspawn_pid: int, timeout: float) -> bool:
    """Wait up to timeout for systemd-nspawn to exit; True if it did."""
    deadline = time.monotonic() + timeout
    while is_nspawn(nspawn_pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def forget(machine: str) -> None:
    """systemd-nspawn leaves an empty /run/systemd/nspawn/propagate/<machine> behind: take it too."""
    folder = PROPAGATE / machine
    if folder.is_dir() and not any(folder.iterdir()):  # not empty: then it is not ours to take
        folder.rmdir()


def forget_all() -> list[str]:
    """The empty propagate folders of every twin machine (lab-*), even those of older runs."""
    gone = []
    for folder in sorted(PROPAGATE.glob("lab-*")) if PROPAGATE.is_dir() else []:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            gone.append(f"folder {folder}")
    return gone


def kill(nspawn_pid: int) -> bool:
    """Pull the plug: SIGKILL the container's init (which ends its PID namespace), then nspawn.

    An instance being terminated needs no clean shutdown (its volumes go with it), and
    a clean poweroff here took longer than 9 s. True if a container was running.
    """
    if not is_nspawn(nspawn_pid):
        return False
    init = find_init(nspawn_pid)
    for pid in (init, nspawn_pid):
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + KILL_TIMEOUT_SECONDS
    while is_nspawn(nspawn_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True
