"""How the lab commands reach the twin: start its daemon, find its endpoint, wait for bodies, clean up.

The daemon runs detached (its own session) so that it outlives `lab up`; everything a
client needs is in the state folder: endpoint, daemon.pid, body-layer, daemon.log.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from labcore import tags as tag
from labcore.errors import CloudError, NotAvailableError
from twin import server
from twin.daemon import StateFiles, open_body_layer
from twin.reconciler import LIVE_STATES

# What the twin runs on this machine, and the Debian packages they come from (scripts/host-deps.sh).
HOST_TOOLS = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "nft": "nftables",
              "mkfs.xfs": "xfsprogs", "ip": "iproute2", "losetup": "util-linux", "nsenter": "util-linux",
              "ssh-keygen": "openssh-client"}
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.2
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def _say_stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ------------------------------------------------------------------ this machine
def host_requirements_missing() -> str | None:
    """Why this machine cannot run the twin's bodies, or None when it can."""
    if os.geteuid() != 0:
        return "the sim target needs root (containers, loop devices, nftables)"
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        return f"the sim target needs the Debian packages {', '.join(missing)} (make lab-up installs them as root)"
    return None


def check_host() -> None:
    reason = host_requirements_missing()
    if reason:
        raise NotAvailableError(f"{reason}; or use TARGET=aws")


def prepare_image(progress: Callable[[str], None] = _say_stderr) -> None:
    """Build the Debian 12 root filesystem now, if it is not cached, so the user sees why up waits."""
    from twin.bodies import cache_dir
    from twin.rootfs import ensure_rootfs

    ensure_rootfs(cache_dir(), progress=progress)


# ------------------------------------------------------------------ the daemon process
def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the twin's daemon, if its pid file names a live `twin.daemon` process."""
    try:
        pid = int(StateFiles(Path(state_dir)).pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _log_tail(files: StateFiles, lines: int = 15) -> str:
    if not files.log.exists():
        return "(no log written)"
    return "\n".join(files.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def _start_lock(files: StateFiles):
    """One client at a time decides whether to start a daemon, so two `lab up` never start two."""
    with files.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def endpoint(state_dir: Path) -> str | None:
    """The twin's endpoint URL while its daemon is alive and answering, else None."""
    files = StateFiles(Path(state_dir))
    if daemon_pid(state_dir) is None or not files.endpoint.exists():
        return None
    url = files.endpoint.read_text().strip()
    return url if url and server.answers(url) else None


def ensure_running(state_dir: Path, region: str, *, bodies: str = "host") -> str:
    """The endpoint of a running twin that serves region, starting the daemon if needed."""
    files = StateFiles(Path(state_dir).absolute())
    files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _start_lock(files):
        url = endpoint(files.root)
        if url is None:
            url = _start_daemon(files, region, bodies)
        server.ensure_image(url, region)
        files.add_region(region)
    return url


def _start_daemon(files: StateFiles, region: str, bodies: str) -> str:
    old = daemon_pid(files.root)
    if old is not None:  # alive but not answering: hung; the API state it held is unreachable anyway
        _terminate(old, STOP_TIMEOUT_SECONDS)
    files.endpoint.unlink(missing_ok=True)
    files.pid.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with files.log.open("a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "twin.daemon", "--state-dir", str(files.root),
                                 "--region", region, "--bodies", bodies],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotAvailableError(f"the sim twin's daemon exited at start (code {proc.returncode}); "
                                    f"last lines of {files.log}:\n{_log_tail(files)}")
        if files.endpoint.exists():
            url = files.endpoint.read_text().strip()
            if server.answers(url):
                return url
        time.sleep(POLL_SECONDS)
    _terminate(proc.pid, 5.0)
    raise NotAvailableError(f"the sim twin's daemon did not answer within {START_TIMEOUT_SECONDS:.0f} s; "
                            f"last lines of {files.log}:\n{_log_tail(files)}")


def _alive(pid: int) -> bool:
    """Whether pid is a live twin daemon (an exited one, even as an unreaped zombie, has no cmdline)."""
    try:
        return b"twin.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM (the daemon tears down its bodies), then SIGKILL after timeout; True if it had to kill."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return False
        time.sleep(POLL_SECONDS)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    while _alive(pid):
        time.sleep(POLL_SECONDS)
    return True


def stop(state_dir: Path) -> list[str]:
    """Stop the daemon (it removes its bodies); if it had to be killed, clean the host from disk."""
    pid = daemon_pid(state_dir)
    if pid is None:
        return cleanup_without_daemon(state_dir)
    if _terminate(pid, STOP_TIMEOUT_SECONDS):
        return [f"killed the twin's daemon (pid {pid}) after {STOP_TIMEOUT_SECONDS:.0f} s",
                *cleanup_without_daemon(state_dir)]
    return [f"stopped the twin's daemon (pid {pid})"]


# ------------------------------------------------------------------ bodies
def wait_for_bodies(ec2, instance_ids: list[str], state_dir: Path, timeout: float) -> dict[str, list[str]]:
    """Instance id -> the SSH host public keys of its body, once every instance has one."""
    files = StateFiles(Path(state_dir))
    layer = open_body_layer(files.root)
    deadline = time.monotonic() + timeout
    keys: dict[str, list[str]] = {}
    while True:
        for instance_id in instance_ids:
            if instance_id not in keys:
                found = _host_keys(layer, instance_id)
                if found:
                    keys[instance_id] = found
        waiting = [i for i in instance_ids if i not in keys]
        if not waiting:
            return keys
        _check_still_wanted(ec2, waiting, files)
        if time.monotonic() > deadline:
            raise CloudError(f"the twin gave no body to {', '.join(waiting)} within {timeout:.0f} s; "
                             f"see {files.log}, then `lab down` and `lab up`")
        time.sleep(1.0)


def _host_keys(layer, instance_id: str) -> list[str]:
    try:
        return layer.host_public_keys(instance_id)
    except (OSError, KeyError):  # the body is still being made
        return []


def _check_still_wanted(ec2, waiting: list[str], files: StateFiles) -> None:
    if daemon_pid(files.root) is None:
        raise CloudError(f"the sim twin's daemon is gone; last lines of {files.log}:\n{_log_tail(files)}\n"
                         f"run `lab down`, then `lab up`")
    reservations = ec2.describe_instances(InstanceIds=waiting)["Reservations"]
    dead = sorted(i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] not in LIVE_STATES)
    if dead:
        raise CloudError(f"instances stopped or terminated before their body was ready: {', '.join(dead)}; "
                         f"run `lab down` then `lab up`")


# ------------------------------------------------------------------ cleanup
def cleanup_without_daemon(state_dir: Path) -> list[str]:
    """Remove every trace of the twin from this host using only what is on disk; what went."""
    files = StateFiles(Path(state_dir))
    if not files.root.exists():
        return []
    gone = []
    pid = daemon_pid(files.root)
    if pid is not None:  # alive but not answering (else the caller would have used it)
        os.kill(pid, signal.SIGKILL)
        gone.append(f"killed the twin's unresponsive daemon (pid {pid})")
    gone.extend(open_body_layer(files.root).teardown_all())
    gone.extend(f"removed {path}" for path in files.remove_runtime_files())
    return gone


def _live_lab_instances(url: str, files: StateFiles) -> set[str]:
    ids = set()
    for region in files.read_regions():
        ec2 = server.ec2_client(url, region)
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-state-name", "Values": list(LIVE_STATES)}]):
            ids.update(i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]
                       if any(t["Key"] == tag.NAME for t in i.get("Tags") or []))
    return ids


def wait_until_gone(state_dir: Path, timeout: float, progress: Callable[[str], None] = _say_stderr) -> None:
    """After the API terminated a lab's instances: wait until their bodies are gone and, when no
    lab is left, until the daemon has stopped. Past timeout, do it here and say so."""
    files = StateFiles(Path(state_dir))
    layer = open_body_layer(files.root)
    deadline = time.monotonic() + timeout
    pid = daemon_pid(files.root)
    while time.monotonic() < deadline:
        if pid is None or not _alive(pid):
            left = cleanup_without_daemon(files.root) if layer.bodies() else []
            for line in left:
                progress(f"  {line}")
            return
        try:
            url = files.endpoint.read_text().strip()
            live = _live_lab_instances(url, files)
        except (OSError, BotoCoreError, ClientError):  # the daemon is on its way out
            live = set()
        if live and set(layer.bodies()) <= live:
            return  # another lab still runs: the daemon stays for it
        time.sleep(0.5)
    leftover = sorted(layer.bodies())
    url = endpoint(files.root)
    live = _live_lab_instances(url, files) if url else set()
    if live:
        raise CloudError(f"the twin did not remove the bodies of {', '.join(sorted(set(leftover) - live))} "
                         f"within {timeout:.0f} s while another lab still runs; see {files.log}")
    progress(f"the twin's daemon did not finish cleaning up within {timeout:.0f} s; stopping it and cleaning here")
    for line in stop(files.root):
        progress(f"  {line}")
