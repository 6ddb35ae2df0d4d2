"""The plan and the ring changes' steps for a lab that grows and shrinks (no SSH): a leaving node or
volume is out of the rings' devices and of the storage steps but still gets the rings and the
replicators; what is drained is retired; too few devices left is exit 2 before anything runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fakes import fake_bin
from plan_fixtures import IPS, actions, inventory, step_named

from bootstrap.actions import Command, CopySpec, FileSpec, Ring
from bootstrap.components import swift_drain, swift_rings
from bootstrap.components.finalize import storage_servers
from bootstrap.components.swift_storage import retire_node_step, retire_volume_step
from bootstrap.context import PlanContext
from bootstrap.planner import build_plan
from bootstrap.ring_moves import Disk, Moves, RingMove
from labcore.errors import LabError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.secrets import generate

LEAVING_IP = "10.0.0.53"


def volume(name: str, leaving: bool = False) -> VolumeRecord:
    return VolumeRecord(name=name, volume_id=f"vol-{name}", size_gb=10, device="/dev/sdf", leaving=leaving)


def with_leaving(os_name: str = "debian-12", node: bool = True, leaving_volume: bool = False) -> Inventory:
    """The guide's lab, plus object3 leaving (all its volumes), and/or object1's sdd leaving."""
    inv = inventory(os_name)
    nodes = list(inv.nodes)
    if leaving_volume:
        nodes[1] = nodes[1].model_copy(update={"volumes": [*nodes[1].volumes, volume("sdd", leaving=True)]})
    if node:
        nodes.append(NodeRecord(name="object3", role="object", instance_id="i-object3", instance_type="t3.medium",
                                az="ap-northeast-2a", private_ip=LEAVING_IP, ssh_host=LEAVING_IP, ssh_user="admin",
                                volumes=[volume("sdb", True), volume("sdc", True)], leaving=True))
    return inv.model_copy(update={"nodes": nodes})


def ctx_of(inv: Inventory) -> PlanContext:
    return PlanContext.for_inventory(inv, generate())


def test_leaving_devices_are_not_the_rings_devices_and_leaving_nodes_get_no_storage_steps():
    inv = with_leaving(leaving_volume=True)
    plan = build_plan(inv, generate())
    rings = actions(step_named(plan, "swift-rings", "controller"), Ring)
    assert {(d.ip, d.device, d.zone) for d in rings[0].devices} == {
        (IPS["object1"], "sdb", 1), (IPS["object1"], "sdc", 1), (IPS["object2"], "sdb", 2), (IPS["object2"], "sdc", 2)}
    assert [s.name for s in plan.for_host("object3") if s.phase not in ("base", "packages", "service-packages")] == []
    assert {"swift-rsync", "swift-storage-config", "swift-rings-copy", "swift-storage-start"} <= {
        s.name for s in plan.for_host("object1")}
    assert "hosts-file" in {s.name for s in plan.for_host("object3")}  # still a host of the lab until it is gone
    assert all(LEAVING_IP not in server for server in storage_servers(ctx_of(inv)))


def test_the_controller_gets_ring_parts_with_the_ring_build():
    step = step_named(build_plan(inventory("debian-12"), generate()), "swift-rings", "controller")
    (program,) = actions(step, FileSpec)
    assert program.path == "/usr/local/lib/openstack-ec2-lab/ring_parts.py" and program.mode == 0o755
    assert "def main(args)" in program.content


def test_too_few_devices_left_is_bad_input_before_anything_runs():
    inv = inventory("debian-12", volumes=("sdb",))  # object1/sdb and object2/sdb stay...
    nodes = list(inv.nodes)
    nodes[2] = nodes[2].model_copy(update={"volumes": [volume("sdb", leaving=True)]})  # ...but object2/sdb leaves
    with pytest.raises(LabError) as refused:
        build_plan(inv.model_copy(update={"nodes": nodes}), generate())
    assert refused.value.exit_code == 2
    assert str(refused.value).startswith("the config leaves 1 Swift devices, but the rings keep 2 replicas: a device "
                                         "is removed only while every partition keeps its replicas elsewhere")
    assert "now leaving: object2/sdb" in str(refused.value)


def _moves() -> Moves:
    return Moves(tuple(RingMove(n, f"/etc/swift/{n}.builder", (f"swift-ring-builder /etc/swift/{n}.builder "
                                                              f"set_weight d4 0",), True, True,
                                ("weight 0 for 10.0.0.53/sdb",)) for n in ("account", "container", "object")))


def test_a_round_runs_the_ring_commands_then_copies_to_every_storage_node_then_replicates():
    ctx = ctx_of(with_leaving())
    plan = swift_drain.round_plan(ctx, _moves())
    ring, copy, serving, leaving = plan.steps
    assert (ring.phase, ring.hosts) == ("swift-rings", ("controller",))
    (command,) = actions(ring, Command)
    assert command.run[0].count("pretend_min_part_hours_passed") == 3 and command.unless is None
    assert (copy.phase, copy.hosts) == ("finalize", ("object1", "object2", "object3"))
    assert {c.path for c in actions(copy, CopySpec)} == {f"/etc/swift/{r}.ring.gz" for r in swift_rings.RINGS}
    assert serving.hosts == ("object1", "object2") and leaving.hosts == ("object3",)
    (replicate,) = actions(serving, Command)
    assert replicate.run[0] == ("s=0; swift-account-replicator /etc/swift/account-server.conf once -v || s=1; "
                                "swift-container-replicator /etc/swift/container-server.conf once -v || s=1; "
                                "swift-object-replicator /etc/swift/object-server.conf once -v || s=1; [ $s = 0 ]")
    assert "swift-object-updater /etc/swift/object-server.conf once -v" in actions(leaving, Command)[0].run[0]
    # Only copies and replicators when there is no ring command (the pass before pretending).
    assert [s.name for s in swift_drain.round_plan(ctx, None).steps] == ["swift-rings-copy", "swift-replicate",
                                                                        "swift-replicate"]


def _sh(command: str, tmp_path: Path, scripts: dict[str, str], srv: bool = True) -> subprocess.CompletedProcess:
    """command in bash with /etc/fstab (and, with srv, /srv/node) moved under tmp_path, fakes first on PATH."""
    bin_dir = fake_bin(tmp_path / "bin", scripts)
    rooted = command.replace("/etc/fstab", f"{tmp_path}/fstab")
    rooted = rooted.replace("/srv/node", f"{tmp_path}/srv/node") if srv else rooted
    return subprocess.run(["bash", "-c", rooted], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})


def test_the_disk_census_counts_swifts_data_files_and_pending_updates(tmp_path):
    disk = tmp_path / "srv" / "node" / "sdb"
    for path in ("objects/12/abc/d41d8/1700000000.00000.data", "objects/13/abc/d41e8/1700000000.00000.ts",
                 "containers/7/f00/f00ba/f00ba.db", "async_pending/a1/x-1700000000.00000",
                 "objects/14/hashes.pkl", "objects/14/.lock", "tmp/left-by-rsync"):
        (disk / path).parent.mkdir(parents=True, exist_ok=True)
        (disk / path).write_text("x")
    (tmp_path / "srv" / "node" / "sdc").mkdir()
    mounted = 'case "$*" in *sdb*) exit 0;; *) exit 1;; esac'
    done = _sh(swift_drain.disks_command(["sdb", "sdc"]), tmp_path, {"mountpoint": mounted})
    assert done.returncode == 0, done.stderr
    assert swift_drain.read_disks(done.stdout, ["sdb", "sdc"]) == {"sdb": Disk(True, 3, 1), "sdc": Disk(False, 0, 0)}
    assert swift_drain.read_disks("sdb 1 0\ngarbage\n", ["sdb", "sdc"]) == {}  # a line cut short is not known


def test_a_drained_volume_is_unmounted_and_only_its_fstab_line_goes(tmp_path):
    fstab = ("# /srv/node/sdd is the one going\nUUID=1 / ext4 defaults 0 1\n"
             "UUID=2 /srv/node/sdb xfs noatime,nodiratime,logbufs=8,nofail 0 2\n"
             "UUID=3 /srv/node/sdd xfs noatime,nodiratime,logbufs=8,nofail 0 2\n")
    (tmp_path / "fstab").write_text(fstab)
    state = tmp_path / "mounted"
    state.write_text("yes")
    scripts = {"mountpoint": f'[ "$(cat {state})" = yes ]', "umount": f"echo no > {state}", "systemctl": "exit 0"}
    (action,) = actions(retire_volume_step(with_leaving(leaving_volume=True).node("object1"), volume("sdd", True)),
                        Command)
    assert _sh(action.unless, tmp_path, scripts, srv=False).returncode == 1  # mounted: not done
    for command in action.run:
        assert _sh(command, tmp_path, scripts, srv=False).returncode == 0, command
    assert (tmp_path / "fstab").read_text() == fstab.replace(
        "UUID=3 /srv/node/sdd xfs noatime,nodiratime,logbufs=8,nofail 0 2\n", "")
    assert _sh(action.unless, tmp_path, scripts, srv=False).returncode == 0  # done: a second install changes nothing


def test_a_busy_volume_is_a_failure_naming_it_not_a_lazy_unmount(tmp_path):
    (tmp_path / "fstab").write_text("")
    scripts = {"mountpoint": "exit 0", "umount": "echo 'target is busy' >&2; exit 32", "sleep": "exit 0"}
    (action,) = actions(retire_volume_step(with_leaving().node("object1"), volume("sdd", True)), Command)
    done = _sh(action.run[0], tmp_path, scripts)
    assert done.returncode == 1 and "/srv/node/sdd is busy (fuser -vm" in done.stderr


@pytest.mark.parametrize("os_name", ["debian-12", "ubuntu-18.04"])
def test_a_drained_node_has_its_swift_services_and_rsync_stopped_and_disabled(os_name):
    ctx = ctx_of(with_leaving(os_name))
    (action,) = actions(retire_node_step(ctx, ctx.inventory.node("object3")), Command)
    if os_name == "debian-12":
        assert action.run[0].startswith("systemctl disable --now swift-account swift-account-auditor ")
        assert action.run[0].endswith(" swift-object-updater rsync")
        assert action.unless.startswith("! systemctl is-active -q swift-account ")
    else:
        assert action.run[0] == "swift-init all stop || true"
        assert action.run[-1].startswith("! pgrep -f ")  # the step fails if a daemon is still running
    assert not action.after_change


def test_retire_takes_only_what_no_ring_holds_any_more():
    ctx = ctx_of(with_leaving(leaving_volume=True))
    plan, nodes, volumes = swift_drain.retire_plan(ctx, {(LEAVING_IP, "sdb")})
    assert nodes == [] and [(n.name, v.name) for n, v in volumes] == [("object1", "sdd")]
    plan, nodes, volumes = swift_drain.retire_plan(ctx, set())
    assert [n.name for n in nodes] == ["object3"] and [s.name for s in plan.steps] == ["swift-retire-node",
                                                                                     "swift-retire-sdd"]
