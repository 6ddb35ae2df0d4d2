"""How the lab commands reach the twin: check this machine, start or find the daemon, wait
for bodies, wait until a lab's bodies are gone.

The daemon's process (start, stop, clean up after it) is twin/process.py; its state files
twin/state.py. Progress lines go where the caller's progress goes (the commands' stdout).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from labcore import tags as tag
from labcore.errors import CloudError, NotAvailableError
from twin import server
from twin.desired import KEPT_STATES, LIVE_STATES
from twin.errors import TwinStateError
from twin.layers import open_body_layer

# The daemon's process is twin/process.py; these are part of the client's interface too.
from twin.process import (  # noqa: F401 (twin.target and the tests reach them through twin.client)
    cleanup_without_daemon,
    daemon_pid,
    endpoint,
    ensure_running,
    last_log_line,
    stop,
)
from twin.state import StateFiles

# What the twin runs on this machine, and the Debian packages they come from (scripts/host-deps.sh).
HOST_TOOLS = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "nft": "nftables",
              "mkfs.xfs": "xfsprogs", "ip": "iproute2", "losetup": "util-linux", "nsenter": "util-linux",
              "ssh-keygen": "openssh-client", "dnsmasq": "dnsmasq-base"}
Progress = Callable[[str], None]


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


def prepare_image(*, progress: Progress) -> None:
    """Build the Debian 12 root filesystem now, if it is not cached, so the user sees why up waits."""
    from twin.bodies import cache_dir
    from twin.rootfs import ensure_rootfs

    ensure_rootfs(cache_dir(), progress=progress)


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
        raise CloudError(f"the sim twin's daemon is gone ({last_log_line(files)}); "
                         f"run `lab down`, then `lab up` (its log: {files.log})")
    reservations = ec2.describe_instances(InstanceIds=waiting)["Reservations"]
    dead = sorted(i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] not in LIVE_STATES)
    if dead:
        raise CloudError(f"instances stopped or terminated before their body was ready: {', '.join(dead)}; "
                         f"run `lab down` then `lab up`")


# ------------------------------------------------------------------ after `lab down`
def _lab_instances_with_bodies(url: str, files: StateFiles) -> set[str]:
    """The lab instances that keep a body here: running, pending, stopping or stopped."""
    ids = set()
    for region in files.read_regions():
        ec2 = server.ec2_client(url, region)
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-state-name", "Values": list(KEPT_STATES)}]):
            ids.update(i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]
                       if any(t["Key"] == tag.NAME for t in i.get("Tags") or []))
    return ids


def wait_until_gone(state_dir: Path, timeout: float, *, progress: Progress) -> None:
    """After the API terminated a lab's instances: wait until their bodies are gone and, when no
    lab is left, until the daemon has stopped. Past timeout, or when the state folder is
    damaged, do it here and say so."""
    files = StateFiles(Path(state_dir))
    try:
        outcome = _wait_gone(files, timeout)
    except TwinStateError as exc:
        progress(f"the twin's state is damaged ({exc.path}): stopping its daemon and cleaning up here")
        outcome = "clean"
    if outcome == "done":
        return
    if outcome == "late":
        progress(f"the twin's daemon did not finish cleaning up within {timeout:.0f} s; stopping it and cleaning here")
    for line in stop(files.root):
        progress(f"  {line}")


def _wait_gone(files: StateFiles, timeout: float) -> str:
    """done (nothing left to do here), clean (the daemon died and left bodies), or late (past timeout)."""
    layer = open_body_layer(files.root)
    deadline = time.monotonic() + timeout
    pid = daemon_pid(files.root)
    while time.monotonic() < deadline:
        if pid is None or daemon_pid(files.root) != pid:
            return "clean" if layer.bodies() else "done"
        try:
            kept = _lab_instances_with_bodies(files.read_endpoint() or "", files)
        except (OSError, ValueError, BotoCoreError, ClientError):  # the daemon is on its way out
            kept = set()
        if kept and set(layer.bodies()) <= kept:
            return "done"  # another lab still runs: the daemon stays for it
        time.sleep(0.5)
    url = endpoint(files.root)
    kept = _lab_instances_with_bodies(url, files) if url else set()
    if kept:
        raise CloudError(f"the twin did not remove the bodies of {', '.join(sorted(set(layer.bodies()) - kept))} "
                         f"within {timeout:.0f} s while another lab still runs; see {files.log}")
    return "late"
