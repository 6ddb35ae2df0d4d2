"""The lab computes the ring commands from what ring_facts.py reads in real builder and ring files.

tests/data/rings/ holds files made by real swift (see its README): account as built,
container with a device added after the last rebalance, object with a device removed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.actions import Ring, RingDevice
from bootstrap.decide import Context, decide, decide_step, facts_for
from bootstrap.facts import Output

DATA = Path(__file__).resolve().parent / "data" / "rings"
PORTS = {"account": 6202, "container": 6201, "object": 6200}
GUIDE = (("172.31.0.5", 1, "sdb"), ("172.31.0.5", 1, "sdc"), ("172.31.0.6", 2, "sdb"), ("172.31.0.6", 2, "sdc"))


def ring(name: str, devices=GUIDE, part_power: int = 10, extra: tuple = ()) -> Ring:
    devs = tuple(RingDevice(1, zone, ip, PORTS[name], device, 100.0) for ip, zone, device in devices) + extra
    return Ring(name, "/etc/swift", part_power, 3, 1, devs, sys.executable)


def facts_of(directory: Path) -> Output:
    """What ring_facts.py prints for the directory (run here as the plan runs it on the controller)."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "bootstrap" / "host" /
                                               "ring_facts.py"), str(directory)], capture_output=True, text=True)
    return Output(done.returncode, done.stdout)


def decided(action: Ring, directory: Path = DATA / "py3-swift-2.38.3"):
    return decide(action, {facts_for(action)[0]: facts_of(directory)}, Context())


def test_a_ring_as_planned_needs_nothing_even_after_a_device_was_removed_and_rebalanced():
    assert decided(ring("account")) is None
    assert decided(ring("object")) is None


def test_a_device_added_after_the_last_rebalance_gets_the_rebalance():
    sdd = (RingDevice(1, 2, "172.31.0.6", 6201, "sdd", 50.0),)
    change = decided(ring("container", extra=sdd))
    assert change.says == "container ring: rebalance (devices changed since the last rebalance)"
    assert [s.command for s in change.sends] == [
        "swift-ring-builder /etc/swift/container.builder rebalance || [ $? -eq 1 ]"]


def test_a_new_device_is_added_and_the_ring_rebalanced():
    new = (RingDevice(1, 3, "172.31.0.7", 6202, "sdb", 100.0),)
    change = decided(ring("account", extra=new))
    assert change.says == "account ring: add 172.31.0.7/sdb, rebalance"
    assert [s.command for s in change.sends] == [
        "swift-ring-builder /etc/swift/account.builder add --region 1 --zone 3 --ip 172.31.0.7 --port 6202 "
        "--device sdb --weight 100",
        "swift-ring-builder /etc/swift/account.builder rebalance || [ $? -eq 1 ]"]


@pytest.mark.parametrize("action, directory, why", [
    (ring("container"), DATA / "py3-swift-2.38.3", "1 devices the lab does not have (e.g. 172.31.0.6/sdd)"),
    (ring("account"), DATA / "py2-swift-2.19.1", "partition power 8 (the plan: 10)"),
    (ring("account", devices=GUIDE[:3] + (("172.31.0.9", 2, "sdc"),)), DATA / "py3-swift-2.38.3",
     "1 devices the lab does not have (e.g. 172.31.0.6/sdc)"),
])
def test_a_builder_that_does_not_describe_the_lab_is_built_anew(action, directory, why):
    change = decided(action, directory)
    assert change.says == f"build the {action.name} ring with 4 devices: {why}"
    assert change.sends[0].command == f"rm -f /etc/swift/{action.name}.builder /etc/swift/{action.name}.ring.gz"


def test_no_rings_yet_builds_all_three_side_by_side(tmp_path):
    rings = tuple(ring(name) for name in PORTS)
    fact = facts_for(rings[0])[0]
    assert all(facts_for(r) == [fact] for r in rings)  # one ring_facts.py call answers the three
    decision = decide_step(rings, {fact: facts_of(tmp_path)}, Context())
    assert [c.says for c in decision.changes] == [f"build the {n} ring with 4 devices: no builder file" for n in PORTS]
    (command,) = decision.sends
    assert command.command.startswith("s=0; ( { rm -f /etc/swift/account.builder")


def test_a_truncated_builder_is_rebuilt(tmp_path):
    for name in ("account.builder", "account.ring.gz"):
        shutil.copy(DATA / "py3-swift-2.38.3" / name, tmp_path / name)
    (tmp_path / "account.builder").write_bytes((tmp_path / "account.builder").read_bytes()[:100])
    assert decided(ring("account"), tmp_path).says == "build the account ring with 4 devices: no builder file"
