"""Rebooting lab hosts the way EC2 does it: RebootInstances, then wait until each host is back.

"Back" means the host has booted again (its boot marker changed: the kernel's boot id, or
the start of its PID 1 where the kernel is shared, as on the twin), answers on SSH, and
systemd has finished starting what is enabled. Used by `lab reboot` and by `lab install`
when a dist-upgrade leaves /var/run/reboot-required.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from lab.ec2 import with_retry
from labcore.errors import RemoteError
from labcore.inventory import NodeRecord
from labcore.remote import Remote

Progress = Callable[[str], None]
Connect = Callable[[NodeRecord], Remote]  # a NEW connection each call: a reboot breaks the old ones

# The kernel's boot id, and when PID 1 started (clock ticks since the kernel booted): a
# container's reboot keeps the first and changes the second, a real one changes both.
MARKER_COMMAND = "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f22 /proc/1/stat"
# Boot finished: `running`, or `degraded` (some unit failed; said, not fatal here). Asked
# until it is neither of BOOTING: `is-system-running --wait` needs systemd 240, and on
# systemd 237 (Ubuntu 18.04) it returns at once while boot-time jobs still run.
SETTLED_COMMAND = "systemctl is-system-running 2>/dev/null || true"
BOOTING = ("initializing", "starting")
BACK_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 3.0
PROBE_TIMEOUT_SECONDS = 10.0
SETTLE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Rebooted:
    node: str
    seconds: float  # from RebootInstances until the host answered after booting
    state: str  # what systemd said once the boot finished: running, degraded, ...


def boot_marker(remote: Remote) -> str | None:
    """The host's boot marker, or None while it does not answer."""
    try:
        result = remote.run(MARKER_COMMAND, sudo=False, timeout=PROBE_TIMEOUT_SECONDS)
    except RemoteError:
        return None
    finally:
        remote.close()
    return " ".join(result.stdout.split()) if result.ok and result.stdout.strip() else None


def _wait_back(node: NodeRecord, before: str, connect: Connect, started: float, progress: Progress) -> Rebooted:
    deadline = started + BACK_TIMEOUT_SECONDS
    said = started
    while True:
        marker = boot_marker(connect(node))
        if marker is not None and marker != before:
            break
        now = time.monotonic()
        if now >= deadline:
            raise RemoteError(f"{node.name} ({node.ssh_host}) did not come back within {BACK_TIMEOUT_SECONDS:.0f} s "
                              f"of its reboot; look at its console (EC2 console, Get system log), then run "
                              f"`lab reboot {node.name}` again")
        if now - said >= 30:
            progress(f"  {node.name}: rebooting ({now - started:.0f} s)")
            said = now
        time.sleep(POLL_SECONDS)
    seconds = time.monotonic() - started
    remote = connect(node)
    try:
        state = settle(node, remote, progress)
    finally:
        remote.close()
    return Rebooted(node.name, seconds, state)


def settle(node: NodeRecord, remote: Remote, progress: Progress) -> str:
    """What systemd says once its boot-time jobs are done, asked every POLL_SECONDS while it
    says initializing or starting, at most SETTLE_TIMEOUT_SECONDS (then the last answer)."""
    started = said = time.monotonic()
    while True:
        state = remote.run(SETTLED_COMMAND, sudo=False, timeout=PROBE_TIMEOUT_SECONDS).stdout.strip() or "unknown"
        now = time.monotonic()
        if state not in BOOTING or now - started >= SETTLE_TIMEOUT_SECONDS:
            return state
        if now - said >= 30:
            progress(f"  {node.name}: systemd says {state} ({now - started:.0f} s, at most "
                     f"{SETTLE_TIMEOUT_SECONDS:.0f} s)")
            said = now
        time.sleep(POLL_SECONDS)


def reboot_nodes(ec2, nodes: list[NodeRecord], connect: Connect, *, progress: Progress) -> list[Rebooted]:
    """Reboot nodes through the EC2 API, all at once; return when every one is back."""
    if not nodes:
        return []
    before = {}
    for node in nodes:
        marker = boot_marker(connect(node))
        if marker is None:
            raise RemoteError(f"{node.name} ({node.ssh_host}) does not answer on SSH, so its reboot could not be "
                              f"followed; run `lab up` (it waits for SSH), then `lab reboot` again")
        before[node.name] = marker
    progress(f"rebooting {', '.join(n.name for n in nodes)} through EC2 (RebootInstances)")
    with_retry(ec2.reboot_instances, InstanceIds=[n.instance_id for n in nodes])
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        done = list(pool.map(lambda n: _wait_back(n, before[n.name], connect, started, progress), nodes))
    for host in done:
        note = "" if host.state == "running" else f" (systemd says {host.state}: `systemctl --failed` names the units)"
        if host.state in BOOTING:
            note = (f" (systemd still says {host.state} after {SETTLE_TIMEOUT_SECONDS:.0f} s: `systemctl list-jobs` "
                    "names what it is still starting)")
        progress(f"  {host.node}: back after {host.seconds:.0f} s{note}")
    return done
