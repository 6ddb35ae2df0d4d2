"""The plan's Ring action from what ring_facts.py reads in real builder and ring files: a ring
that does not exist is built with the guide's commands; one that exists is never built anew
(its changes are the ring changes', tests/test_rings_moves.py), and what the lab must not
guess its way out of is refused in one line.

tests/data/rings/ holds files made by real swift (see its README): account as built,
container with a device added after the last rebalance, object with a device removed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plan_fixtures import PORTS

from bootstrap.actions import Ring, RingDevice
from bootstrap.changes import Refused
from bootstrap.decide import Context, decide, decide_step, facts_for
from bootstrap.facts import Output

DATA = Path(__file__).resolve().parent / "data" / "rings"
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


@pytest.mark.parametrize("action, waiting", [
    (ring("container", extra=(RingDevice(1, 2, "172.31.0.6", 6201, "sdd", 50.0),)), "rebalance"),  # not yet
    (ring("account", extra=(RingDevice(1, 3, "172.31.0.7", 6202, "sdb", 100.0),)), "add 172.31.0.7/sdb"),
    (ring("container"), "drain and remove 172.31.0.6/sdd"),  # the builder has a device the lab no longer wants
    (ring("account", devices=GUIDE[:3] + (("172.31.0.9", 2, "sdc"),)),
     "add 172.31.0.9/sdc, drain and remove 172.31.0.6/sdc"),  # one device replaced by another
])
@pytest.mark.parametrize("check", [True, False])
def test_an_existing_ring_is_never_built_anew_by_the_plan_only_its_changes_named(action, waiting, check):
    """A rebuild would move every partition at once: the ring changes change it step by step after
    the install's phases; the plan names them (a change for --check) and sends nothing."""
    change = decide(action, {facts_for(action)[0]: facts_of(DATA / "py3-swift-2.38.3")}, Context(check=check))
    assert change.says == f"{action.name} ring: {waiting}: done by the ring changes after the install's phases"
    assert change.sends == () and change.changes_host is check


def test_rings_that_cannot_be_read_are_built_only_where_no_ring_file_is(tmp_path):
    """A host that could not run ring_facts.py looks like a fresh one; the build's first command
    stops it (exit 1, naming the file) where a ring file exists after all."""
    action = ring("account")
    change = decide(action, {facts_for(action)[0]: Output(127, "")}, Context())
    guard = change.sends[0].command.replace("/etc/swift", str(tmp_path))
    assert change.sends[1].command == "rm -f /etc/swift/account.builder"
    assert subprocess.run(["sh", "-c", guard]).returncode == 0
    (tmp_path / "account.ring.gz").write_bytes(b"placed")
    done = subprocess.run(["sh", "-c", guard], capture_output=True, text=True)
    assert done.returncode == 1 and "account.ring.gz exists: the lab does not build a ring over it" in done.stderr


def test_no_swift_directory_yet_is_a_ring_to_build(tmp_path):
    action = ring("object")
    done = subprocess.run(["sh", "-c", facts_for(action)[0].command().replace("/etc/swift", str(tmp_path / "no"))],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "{}\n")
    assert decide(action, {facts_for(action)[0]: Output(0, done.stdout)}, Context()).says == \
        "build the object ring with 4 devices: no builder file"


def test_no_rings_yet_builds_all_three_side_by_side(tmp_path):
    rings = tuple(ring(name) for name in PORTS)
    fact = facts_for(rings[0])[0]
    assert all(facts_for(r) == [fact] for r in rings)  # one ring_facts.py call answers the three
    decision = decide_step(rings, {fact: facts_of(tmp_path)}, Context())
    assert [c.says for c in decision.changes] == [f"build the {n} ring with 4 devices: no builder file" for n in PORTS]
    (command,) = decision.sends
    assert command.command.startswith("s=0; ( { if [ -e /etc/swift/account.ring.gz ]; then echo")
    assert "swift-ring-builder /etc/swift/object.builder add --region 1 --zone 2 --ip 172.31.0.6 --port 6200 " \
           "--device sdc --weight 100" in command.command


def test_a_builder_of_another_partition_power_is_refused_not_rebuilt():
    with pytest.raises(Refused, match=r"partition power 8, the lab's rings 10: a ring's partition power cannot "
                                      r"change without moving every object"):
        decided(ring("account"), DATA / "py2-swift-2.19.1")


def test_a_truncated_builder_beside_its_ring_file_is_refused(tmp_path):
    for name in ("account.builder", "account.ring.gz"):
        shutil.copy(DATA / "py3-swift-2.38.3" / name, tmp_path / name)
    (tmp_path / "account.builder").write_bytes((tmp_path / "account.builder").read_bytes()[:100])
    with pytest.raises(Refused, match=r"account.builder is missing or unreadable but /etc/swift/account.ring.gz is "
                                      r"there: the lab does not build a ring anew over one that may place data"):
        decided(ring("account"), tmp_path)


def test_a_truncated_builder_alone_is_built_again(tmp_path):
    shutil.copy(DATA / "py3-swift-2.38.3" / "account.builder", tmp_path / "account.builder")
    (tmp_path / "account.builder").write_bytes((tmp_path / "account.builder").read_bytes()[:100])
    assert decided(ring("account"), tmp_path).says == "build the account ring with 4 devices: no builder file"
