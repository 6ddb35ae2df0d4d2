"""The instances' share of this machine's CPU: one cgroup per container, weighted by instance size.

On EC2 each instance has cores of its own, and AWS counts a t3.large as twice a t3.medium
(its instance size normalization factor: 4 against 2; twice the memory, 1.5 times the
baseline CPU). On the twin every instance runs on the same few cores, and without cgroups each SSH session inside each container is its own
scheduler autogroup: three hosts running apt-get get a third of the CPU each, and the
controller (the critical path of `lab install`) waits for the storage nodes. So each
container runs in its own `cpu` cgroup whose weight is proportional to AWS's instance size
normalization factor of its type (t3.large 4, t3.medium 2: twice the share when both are busy).

    cgroup v1 (or hybrid):  /sys/fs/cgroup/cpu/openstack-ec2-lab/<machine name>/cpu.shares
    cgroup v2:              /sys/fs/cgroup/openstack-ec2-lab/<machine name>/cpu.weight

Without a cpu controller the instances share the CPU equally, as before, and it says so once.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from twin.hostcmd import HostCommandError

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "openstack-ec2-lab"

# AWS's instance size normalization factors (EC2 reserved instances, "size flexibility").
_NAMED_SIZES = {"nano": 0.25, "micro": 0.5, "small": 1.0, "medium": 2.0, "large": 4.0, "xlarge": 8.0}
# A bare .metal is as large as its family's largest size; 24xlarge is the usual one (m5, c5, r5).
METAL_FACTOR = 192.0
# An unknown or malformed type (or a body saved before types were recorded) weighs as a
# 'large': the middle of what a lab uses, and in cgroup v1 exactly the kernel's default share.
UNKNOWN_FACTOR = _NAMED_SIZES["large"]


def size_factor(instance_type: str) -> float:
    """The normalization factor of instance_type's size: t3.large -> 4, m5.2xlarge -> 16, m5.metal -> 192,
    c7i.metal-24xl -> 192; anything that is not FAMILY.SIZE with a known size -> UNKNOWN_FACTOR."""
    family, dot, size = instance_type.strip().lower().partition(".")
    if not family or not dot:
        return UNKNOWN_FACTOR
    if size in _NAMED_SIZES:
        return _NAMED_SIZES[size]
    multiple = re.fullmatch(r"([1-9][0-9]*)xlarge|metal-([1-9][0-9]*)xl", size)
    if multiple:
        return 8.0 * int(multiple.group(1) or multiple.group(2))
    return METAL_FACTOR if size == "metal" else UNKNOWN_FACTOR


@dataclass(frozen=True)
class WeightScale:
    """How one cgroup version spells a weight. Only siblings under the lab's parent compare
    their weights, so the unit is free: a 'nano' (factor 0.25) gets a whole number, which
    keeps every ratio between sizes exact until the kernel's bound clamps it."""

    file: str
    per_factor: int
    low: int
    high: int

    def of(self, instance_type: str) -> int:
        return max(self.low, min(self.high, round(size_factor(instance_type) * self.per_factor)))


V1_SHARES = WeightScale("cpu.shares", per_factor=256, low=2, high=262144)  # large = 1024, the default
V2_WEIGHT = WeightScale("cpu.weight", per_factor=4, low=1, high=10000)  # nano = 1, the smallest


# `sh` joins the cgroup, then execs the command: every process the command starts is born
# inside it, and the caller's pid is the command's own. preexec_fn would do the same but is
# unsafe in the multi-threaded daemon.
_JOIN_THEN_EXEC = 'echo $$ > "$1" && shift && exec "$@"'


class CpuCgroups:
    """The twin's cpu cgroups under one cgroup filesystem root (a fake one in tests).

    Everything lives below one parent folder, so `lab down` after the daemon died finds every
    leftover in the cgroup filesystem alone. The v2 root's `+cpu` in cgroup.subtree_control
    stays when the parent goes: other cgroups of this machine may rely on it.
    """

    SETTLE_SECONDS = 2.0  # after a container was killed, how long its tasks may take to exit
    KILL_WAIT_SECONDS = 5.0  # after SIGKILL of what remained

    def __init__(self, root: Path = CGROUP_ROOT, rmdir: Callable[[Path], None] = os.rmdir):
        self.root = Path(root)
        self._rmdir = rmdir  # the cgroup filesystem's rmdir takes a cgroup's interface files with it
        self.scale: WeightScale | None = None
        self.parent: Path | None = None
        if (self.root / "cpu" / "cpu.shares").exists():
            self.scale, self.parent = V1_SHARES, self.root / "cpu" / PARENT
        elif "cpu" in _words(self.root / "cgroup.controllers"):
            # Directly under the root: the root is the one cgroup that may hold processes and
            # still hand the cpu controller to its children.
            self.scale, self.parent = V2_WEIGHT, self.root / PARENT
        self._said_equal = False

    def path(self, machine: str) -> Path | None:
        return self.parent / machine if self.parent else None

    def ensure(self, machine: str, instance_type: str) -> Path | None:
        """The machine's cgroup with instance_type's weight; None where there is no cpu controller."""
        if self.parent is None or self.scale is None:
            self._say_equal(f"no cpu controller under {self.root}")
            return None
        if self.scale is V2_WEIGHT:
            try:
                _enable_cpu(self.root)
            except OSError as exc:  # e.g. a cgroup namespace's root that holds processes itself
                self._say_equal(f"the cpu controller cannot be enabled in {self.root} ({exc.strerror or exc})")
                return None
        try:
            self.parent.mkdir(exist_ok=True)
            if self.scale is V2_WEIGHT:
                _enable_cpu(self.parent)
            leaf = self.parent / machine
            leaf.mkdir(exist_ok=True)
            (leaf / self.scale.file).write_text(f"{self.scale.of(instance_type)}\n")
        except OSError as exc:
            raise HostCommandError(f"twin: cannot set up the cpu cgroup of {machine} under {self.parent}: "
                                   f"{exc.strerror or exc}") from exc
        return leaf

    def exec_prefix(self, machine: str) -> list[str]:
        """What to put before a command so that it, and everything it starts, runs in the machine's cgroup."""
        leaf = self.path(machine)
        if leaf is None or not leaf.is_dir():
            return []
        return ["sh", "-c", _JOIN_THEN_EXEC, "sh", str(leaf / "cgroup.procs")]

    def remove(self, machine: str) -> bool:
        """Remove the machine's cgroup, killing what still runs in it; True if there was one."""
        leaf = self.path(machine)
        if leaf is None or not leaf.is_dir():
            return False
        self._remove_tree(leaf)
        return True

    def remove_all(self) -> list[str]:
        """Every leftover machine cgroup and the parent itself; what went."""
        if self.parent is None or not self.parent.is_dir():
            return []
        gone = []
        for leaf in sorted(p for p in self.parent.iterdir() if p.is_dir()):
            self._remove_tree(leaf)
            gone.append(f"cpu cgroup {leaf.name}")
        self._remove_tree(self.parent)
        return gone + [f"cpu cgroup {self.parent}"]

    def _say_equal(self, why: str) -> None:
        if not self._said_equal:
            log.warning("twin: %s: instances share the CPU equally, whatever their size", why)
            self._said_equal = True

    def _remove_tree(self, top: Path) -> None:
        """rmdir from the bottom up (systemd in a container may have made cgroups inside); while
        tasks keep a cgroup busy, wait SETTLE_SECONDS for them to exit, then SIGKILL them once."""
        deadline = time.monotonic() + self.SETTLE_SECONDS
        killed = False
        while True:
            try:
                for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    self._rmdir(folder)
                self._rmdir(top)
                return
            except FileNotFoundError:
                if not top.exists():
                    return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise HostCommandError(f"twin: cannot remove cpu cgroup {top}: {exc.strerror or exc}") from exc
            tasks = _tasks(top)
            if time.monotonic() >= deadline:
                if killed or not tasks:
                    raise HostCommandError(f"twin: cpu cgroup {top} stays busy; tasks left: "
                                           f"{' '.join(map(str, tasks)) or 'none'}")
                _kill(tasks)
                killed, deadline = True, time.monotonic() + self.KILL_WAIT_SECONDS
            time.sleep(0.05)


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _enable_cpu(cgroup: Path) -> None:
    """Hand the cpu controller to cgroup's children (cgroup v2), unless it already does."""
    if "cpu" not in _words(cgroup / "cgroup.subtree_control"):
        (cgroup / "cgroup.subtree_control").write_text("+cpu\n")


def _tasks(top: Path) -> list[int]:
    return sorted({int(pid) for procs in top.rglob("cgroup.procs") for pid in _words(procs) if pid.isdigit()})


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
