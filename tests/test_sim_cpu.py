"""The instances' CPU cgroups: the size rule, both cgroup versions on a fake cgroup root, one real kernel."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twin.cpu import (
    METAL_FACTOR,
    PARENT,
    UNKNOWN_FACTOR,
    V1_SHARES,
    V2_WEIGHT,
    CpuCgroups,
    WeightScale,
    size_factor,
)
from twin.hostcmd import HostCommandError

MACHINE = "lab-0123456789ab"


# ------------------------------------------------------------------ the rule
@pytest.mark.parametrize("instance_type, factor", [
    ("t3.nano", 0.25), ("t3.micro", 0.5), ("t3.small", 1), ("t3.medium", 2), ("t3.large", 4),
    ("m5.xlarge", 8), ("m5.2xlarge", 16), ("m5.4xlarge", 32), ("m5.24xlarge", 192), ("T3.Large", 4),
    ("m5.metal", METAL_FACTOR), ("c7i.metal-48xl", 384), ("m7i-flex.large", 4),
])
def test_size_factor_is_aws_normalization_factor(instance_type, factor):
    assert size_factor(instance_type) == factor


@pytest.mark.parametrize("instance_type", ["", "t3", "t3.", ".large", "t3.huge", "t3.0xlarge", "t3.xlarge2",
                                           "t3.metal-xl"])
def test_unknown_or_malformed_type_weighs_as_a_large(instance_type):
    assert UNKNOWN_FACTOR == 4
    assert size_factor(instance_type) == UNKNOWN_FACTOR


@pytest.mark.parametrize("scale", [V1_SHARES, V2_WEIGHT], ids=["v1", "v2"])
def test_a_large_gets_twice_a_medium_in_both_versions(scale):
    assert scale.of("t3.large") == 2 * scale.of("t3.medium")


def test_weights_in_kernel_units():
    assert [V1_SHARES.of(f"t3.{s}") for s in ("nano", "medium", "large")] == [64, 512, 1024]
    assert [V2_WEIGHT.of(f"t3.{s}") for s in ("nano", "medium", "large")] == [1, 8, 16]


@pytest.mark.parametrize("scale", [V1_SHARES, V2_WEIGHT], ids=["v1", "v2"])
def test_ratios_between_sizes_are_exact(scale):
    sizes = ["t3.nano", "t3.micro", "t3.small", "t3.medium", "t3.large", "m5.xlarge", "m5.2xlarge",
             "m5.12xlarge", "m5.24xlarge"]
    for a in sizes:
        for b in sizes:
            assert scale.of(a) * size_factor(b) == scale.of(b) * size_factor(a), (a, b)


def test_weights_are_clamped_to_the_kernel_ranges():
    assert V1_SHARES.of("u-x.2000xlarge") == 262144
    assert V2_WEIGHT.of("u-x.2000xlarge") == 10000
    assert WeightScale("cpu.shares", per_factor=1, low=2, high=262144).of("t3.nano") == 2


# ------------------------------------------------------------------ a fake cgroup filesystem
def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cgroupfs_rmdir(path: Path) -> None:
    """rmdir as the cgroup filesystem does it: busy while tasks or child cgroups are in it, and
    the interface files go with the folder."""
    procs = path / "cgroup.procs"
    pids = [int(p) for p in procs.read_text().split()] if procs.exists() else []
    if any(_alive(p) for p in pids) or any(p.is_dir() for p in path.iterdir()):
        raise OSError(errno.EBUSY, "Device or resource busy", str(path))
    for f in path.iterdir():
        f.unlink()
    path.rmdir()


def v1_root(tmp_path: Path) -> Path:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.shares").write_text("1024\n")
    (tmp_path / "unified").mkdir()  # hybrid: a cgroup2 without controllers beside it
    (tmp_path / "unified" / "cgroup.controllers").write_text("\n")
    return tmp_path


def v2_root(tmp_path: Path, enabled: str = "") -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text(enabled)
    return tmp_path


def fast(cpu: CpuCgroups) -> CpuCgroups:
    cpu.SETTLE_SECONDS, cpu.KILL_WAIT_SECONDS = 0.2, 2.0
    return cpu


def test_v1_machine_cgroup_gets_shares_and_the_prefix_runs_the_command_in_it(tmp_path):
    cpu = CpuCgroups(v1_root(tmp_path), rmdir=cgroupfs_rmdir)
    leaf = cpu.ensure(MACHINE, "t3.large")
    assert leaf == tmp_path / "cpu" / PARENT / MACHINE
    assert (leaf / "cpu.shares").read_text() == "1024\n"
    assert not (tmp_path / "unified" / PARENT).exists()

    process = subprocess.Popen([*cpu.exec_prefix(MACHINE), sys.executable, "-c", "import os; print(os.getpid())"],
                               stdout=subprocess.PIPE, text=True)
    printed = int(process.communicate(timeout=30)[0])
    assert printed == process.pid  # sh execs: the caller's pid is the command's
    assert (leaf / "cgroup.procs").read_text().split() == [str(process.pid)]


def test_v2_enables_cpu_for_the_parent_and_its_children(tmp_path):
    cpu = CpuCgroups(v2_root(tmp_path), rmdir=cgroupfs_rmdir)
    leaf = cpu.ensure(MACHINE, "t3.medium")
    assert leaf == tmp_path / PARENT / MACHINE
    assert (leaf / "cpu.weight").read_text() == "8\n"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu\n"
    assert (tmp_path / PARENT / "cgroup.subtree_control").read_text() == "+cpu\n"
    assert not (leaf / "cgroup.subtree_control").exists()  # processes live in the leaf: it hands nothing on
    assert cpu.exec_prefix(MACHINE)[-1] == str(leaf / "cgroup.procs")


def test_v2_leaves_an_already_enabled_root_alone(tmp_path):
    cpu = CpuCgroups(v2_root(tmp_path, enabled="cpu io memory\n"))
    cpu.ensure(MACHINE, "t3.large")
    assert (tmp_path / "cgroup.subtree_control").read_text() == "cpu io memory\n"


def test_v2_root_that_cannot_hand_on_cpu_shares_equally_and_says_so_once(tmp_path, caplog):
    v2_root(tmp_path)
    (tmp_path / "cgroup.subtree_control").unlink()
    (tmp_path / "cgroup.subtree_control").mkdir()  # writing it fails, as EBUSY would
    cpu = CpuCgroups(tmp_path)
    with caplog.at_level(logging.WARNING, logger="twin.cpu"):
        assert cpu.ensure(MACHINE, "t3.large") is None
        assert cpu.ensure("lab-other", "t3.medium") is None
    assert len(caplog.records) == 1 and "share the CPU equally" in caplog.records[0].getMessage()
    assert not (tmp_path / PARENT).exists() and cpu.exec_prefix(MACHINE) == []


def test_without_a_cpu_controller_nothing_is_made_and_it_says_so_once(tmp_path, caplog):
    (tmp_path / "unified").mkdir()
    (tmp_path / "cgroup.controllers").write_text("io memory pids\n")
    cpu = CpuCgroups(tmp_path)
    with caplog.at_level(logging.WARNING, logger="twin.cpu"):
        assert cpu.ensure(MACHINE, "t3.large") is None
        assert cpu.ensure("lab-other", "t3.medium") is None
    assert len(caplog.records) == 1 and "share the CPU equally" in caplog.records[0].getMessage()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cgroup.controllers", "unified"]
    assert cpu.exec_prefix(MACHINE) == []
    assert cpu.remove(MACHINE) is False and cpu.remove_all() == []


def test_a_cgroup_that_cannot_be_made_is_a_readable_error(tmp_path):
    v1_root(tmp_path)
    (tmp_path / "cpu" / PARENT).write_text("not a folder")
    with pytest.raises(HostCommandError, match=f"cpu cgroup of {MACHINE}"):
        CpuCgroups(tmp_path).ensure(MACHINE, "t3.large")


# ------------------------------------------------------------------ removal
def test_remove_takes_the_machine_cgroup_only_once(tmp_path):
    cpu = CpuCgroups(v1_root(tmp_path), rmdir=cgroupfs_rmdir)
    cpu.ensure(MACHINE, "t3.large")
    cpu.ensure("lab-other", "t3.medium")
    assert cpu.remove(MACHINE) is True
    assert sorted(p.name for p in (tmp_path / "cpu" / PARENT).iterdir()) == ["lab-other"]
    assert cpu.remove(MACHINE) is False


def test_remove_kills_tasks_that_outlive_the_container(tmp_path):
    cpu = fast(CpuCgroups(v2_root(tmp_path), rmdir=cgroupfs_rmdir))
    leaf = cpu.ensure(MACHINE, "t3.large")
    straggler = subprocess.Popen(["sleep", "30"])
    (leaf / "cgroup.procs").write_text(f"{straggler.pid}\n")
    started = time.monotonic()
    assert cpu.remove(MACHINE) is True
    assert straggler.wait(timeout=5) == -9
    assert not leaf.exists() and time.monotonic() - started < 5


def test_a_cgroup_that_stays_busy_is_a_readable_error(tmp_path):
    def busy(path: Path) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy", str(path))

    cpu = fast(CpuCgroups(v1_root(tmp_path), rmdir=busy))
    cpu.ensure(MACHINE, "t3.large")
    with pytest.raises(HostCommandError, match="stays busy"):
        cpu.remove(MACHINE)


def test_other_removal_errors_are_not_retried(tmp_path):
    calls = []

    def denied(path: Path) -> None:
        calls.append(path)
        raise OSError(errno.EACCES, "Permission denied", str(path))

    cpu = CpuCgroups(v1_root(tmp_path), rmdir=denied)
    cpu.ensure(MACHINE, "t3.large")
    with pytest.raises(HostCommandError, match="Permission denied"):
        cpu.remove(MACHINE)
    assert len(calls) == 1


def test_remove_all_takes_every_leftover_and_the_parent(tmp_path):
    cpu = CpuCgroups(v1_root(tmp_path), rmdir=cgroupfs_rmdir)
    cpu.ensure(MACHINE, "t3.large")
    cpu.ensure("lab-other", "t3.medium")
    (tmp_path / "cpu" / PARENT / "lab-other" / "init.scope").mkdir()  # made inside by the container
    gone = CpuCgroups(tmp_path, rmdir=cgroupfs_rmdir).remove_all()  # as `lab down` after the daemon died
    assert gone == [f"cpu cgroup {MACHINE}", "cpu cgroup lab-other", f"cpu cgroup {tmp_path / 'cpu' / PARENT}"]
    assert sorted(p.name for p in (tmp_path / "cpu").iterdir()) == ["cpu.shares"]
    assert cpu.remove_all() == []


# ------------------------------------------------------------------ this machine's kernel
def _real_kernel_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root to make cgroups"
    if CpuCgroups().parent is None:
        return "this machine has no cgroup cpu controller (neither v1 cpu nor cgroup2 with cpu)"
    return None


@pytest.mark.skipif(_real_kernel_missing() is not None, reason=str(_real_kernel_missing()))
def test_a_process_started_through_the_prefix_runs_in_a_real_weighted_cgroup():
    cpu = CpuCgroups()
    machine = f"lab-pytest{os.getpid()}"
    parent_existed = cpu.parent.is_dir()
    leaf = cpu.ensure(machine, "t3.large")
    process = subprocess.Popen([*cpu.exec_prefix(machine), "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        # Until sh has exec'd, the pid's command line is sh's (which names sleep too).
        while not Path(f"/proc/{process.pid}/cmdline").read_bytes().startswith(b"sleep\0") \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        lines = Path(f"/proc/{process.pid}/cgroup").read_text().splitlines()
        assert any(line.endswith(f":/{PARENT}/{machine}") and ("cpu" in line.split(":")[1].split(",")
                                                              or line.startswith("0::")) for line in lines), lines
        assert (leaf / cpu.scale.file).read_text().strip() == str(cpu.scale.of("t3.large"))
        assert (leaf / "cgroup.procs").read_text().split() == [str(process.pid)]
    finally:
        process.kill()
        process.wait(timeout=10)
        cpu.remove(machine)
        if not parent_existed and not any(p.is_dir() for p in cpu.parent.iterdir()):
            os.rmdir(cpu.parent)
    assert not leaf.exists()
