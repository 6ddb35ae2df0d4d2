"""The Swift rings of the plan against the guide: built on the controller, part power 10, one add per
device, rebalanced, copied to every storage node before its services start. No SSH."""

from __future__ import annotations

import os

import pytest
from plan_fixtures import (  # noqa: F401 - planned is a fixture
    PORTS,
    actions,
    fresh_commands,
    plan_for,
    planned,
    sh,
    step_named,
)

from bootstrap.actions import CopySpec, Ring
from bootstrap.plan import Plan
from labcore.errors import LabError


RECORD = '#!/bin/sh\necho "$(basename "$0") $*" >> "$(dirname "$0")/calls"\n'


def ring_commands(plan: Plan, tmp_path) -> list[str]:
    """What the ring step sends to a controller without rings, run by a fake swift-ring-builder
    and rm that record their arguments (the three rings side by side: each ring's in order)."""
    for tool in ("swift-ring-builder", "rm"):
        (tmp_path / tool).write_text(RECORD)
        (tmp_path / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    (command,) = fresh_commands(step_named(plan, "swift-rings", "controller"))  # one command: side by side
    # The build's guard looks for ring files: here, under tmp_path (never this machine's /etc/swift).
    assert sh(command.replace("[ -e /etc/swift/", f"[ -e {tmp_path}/etc/swift/"), env).returncode == 0
    return (tmp_path / "calls").read_text().splitlines()


def test_rings_are_built_on_the_controller_only(planned):
    step = step_named(planned[1], "swift-rings", "controller")
    assert (step.phase, step.hosts) == ("swift-rings", ("controller",))
    assert [r.name for r in actions(step, Ring)] == ["account", "container", "object"]


@pytest.mark.parametrize("volumes, expected_replicas", [(("sdb", "sdc"), 3), (("sdb",), 2)])
def test_rings_use_part_power_10_and_replicas_up_to_the_device_count(volumes, expected_replicas, tmp_path):
    commands = ring_commands(plan_for(volumes=volumes)[1], tmp_path)
    for ring in PORTS:
        assert f"swift-ring-builder /etc/swift/{ring}.builder create 10 {expected_replicas} 1" in commands


def test_a_lab_without_swift_devices_is_refused_with_advice():
    with pytest.raises(LabError, match="volumes"):
        plan_for(volumes=())


def test_rings_get_one_add_per_device_with_ip_port_and_zone(planned, tmp_path):
    commands = ring_commands(planned[1], tmp_path)
    for ring, port in PORTS.items():
        adds = [c for c in commands if c.startswith(f"swift-ring-builder /etc/swift/{ring}.builder add ")]
        assert adds == [
            f"swift-ring-builder /etc/swift/{ring}.builder add --region 1 --zone {zone} --ip {ip} "
            f"--port {port} --device {device} --weight 100"
            for zone, ip in ((1, "10.0.0.51"), (2, "10.0.0.52")) for device in ("sdb", "sdc")]


def test_each_ring_is_created_then_filled_then_rebalanced(planned, tmp_path):
    commands = ring_commands(planned[1], tmp_path)
    for ring in PORTS:
        mine = [c for c in commands if f"/etc/swift/{ring}." in c]
        assert mine[0] == f"rm -f /etc/swift/{ring}.builder"  # after the guard: no ring file to build over
        assert " create " in mine[1]
        assert all(" add " in c for c in mine[2:-1]) and len(mine[2:-1]) == 4
        assert mine[-1] == f"swift-ring-builder /etc/swift/{ring}.builder rebalance"


@pytest.mark.parametrize("rebalance_exit, step_ok", [(1, True), (2, False)])
def test_ring_build_fails_when_any_ring_fails_and_accepts_rebalance_warnings(tmp_path, rebalance_exit, step_ok):
    """Exit 1 of rebalance is swift-ring-builder's warning (the ring is written); anything
    else in any of the three rings built side by side fails the step."""
    (tmp_path / "swift-ring-builder").write_text(
        f'#!/bin/sh\ncase "$*" in *object.builder\\ rebalance*) exit {rebalance_exit};; esac\nexit 0\n')
    (tmp_path / "swift-ring-builder").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    (command,) = fresh_commands(step_named(plan_for()[1], "swift-rings", "controller"))
    command = command.replace("rm -f /etc/swift", f"rm -f {tmp_path}/etc/swift").replace(
        "[ -e /etc/swift/", f"[ -e {tmp_path}/etc/swift/")
    assert (sh(command, env).returncode == 0) is step_ok


def test_rings_are_copied_to_every_storage_node_before_their_services_start(planned):
    plan = planned[1]
    copy = step_named(plan, "swift-rings-copy", "object1")
    assert copy.hosts == ("object1", "object2")
    phases = [phase for phase, _ in plan.phases()]
    assert phases.index(copy.phase) > phases.index("swift-rings")  # never read while the controller writes
    assert {(c.source_host, c.path, c.owner) for c in actions(copy, CopySpec)} == {
        ("controller", f"/etc/swift/{ring}.ring.gz", "root:swift") for ring in PORTS}
    for host in copy.hosts:
        names = [s.name for s in plan.for_host(host)]
        assert names.index("swift-rings-copy") < names.index("swift-storage-start")
