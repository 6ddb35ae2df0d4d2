"""The ring changes' rounds (bootstrap/ring_changes.py) against a Swift made of Python
(tests/swift_model.py): a grow joins every ring only after the replicators ran, a shrink drains and
removes a device only once it is empty, and too few devices is refused before any host changes."""

from __future__ import annotations

import pytest
from fakes import HostFleet
from plan_fixtures import converged, inventory
from swift_model import OBJECT3, PORTS, Swift

from bootstrap.planner import build_plan
from bootstrap.ring_changes import MAX_ROUNDS, change_rings
from bootstrap.runner import execute
from labcore.errors import LabError, RemoteError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.remote import RunResult
from labcore.secrets import generate

SECRETS = generate()


def volume(name: str, leaving: bool = False) -> VolumeRecord:
    return VolumeRecord(name=name, volume_id=f"vol-{name}-{leaving}", size_gb=10, device="/dev/sdf", leaving=leaving)


def lab(object3: str | None = None, os_name: str = "debian-12") -> Inventory:
    """The guide's lab; object3 absent, "serving" (a grow) or "leaving" (a shrink)."""
    inv = inventory(os_name)
    if object3 is None:
        return inv
    node = NodeRecord(name="object3", role="object", instance_id="i-object3", instance_type="t3.medium",
                      az="ap-northeast-2a", private_ip=OBJECT3, ssh_host=OBJECT3, ssh_user="admin",
                      volumes=[volume("sdb", object3 == "leaving"), volume("sdc", object3 == "leaving")],
                      leaving=object3 == "leaving")
    return inv.model_copy(update={"nodes": [*inv.nodes, node]})


GUIDE = [(ip, d, z) for z, ip in ((1, "10.0.0.51"), (2, "10.0.0.52")) for d in ("sdb", "sdc")]
WITH_OBJECT3 = GUIDE + [(OBJECT3, "sdb", 3), (OBJECT3, "sdc", 3)]


class Rig:
    """Hosts converged on the lab's plan, answering the ring changes from the Swift model."""

    def __init__(self, inv: Inventory, swift: Swift, tmp_path, failing_replicator: str | None = None,
                 converged_on: Inventory | None = None):
        self.inv, self.swift, self.tmp_path = inv, swift, tmp_path
        plan = build_plan(converged_on or inv, SECRETS)
        self.fleet = HostFleet({n.name: converged(plan, n.name) for n in inv.nodes})
        controller = self.fleet["controller"]
        swift.controller = controller
        swift.storage_hosts = {n.name for n in inv.nodes if n.role == "object"}
        controller.answer(r"ring_parts\.py /etc/swift$", lambda c, s: RunResult(0, swift.ring_parts()))
        controller.answer(r"swift-ring-builder", lambda c, s: swift.ring_commands(c))
        controller.answer(r"cloud_ready\.py", RunResult(0, "ok proxy\nok token\nok object-put\n"))
        self.retired: set[str] = set()
        for node in (n for n in inv.nodes if n.role == "object"):
            host = self.fleet[node.name]
            host.answer(r"swift-account-replicator",
                        lambda c, s, name=node.name: swift.replicate(name) if name != failing_replicator
                        else RunResult(1, "", "rsync: connection refused"))
            host.answer(r"^for d in ", lambda c, s, ip=node.private_ip: RunResult(0, swift.disks(ip, c)))
            host.answer(r"^! systemctl is-active -q swift-account",
                        lambda c, s, name=node.name: RunResult(0 if name in self.retired else 1))
            host.answer(r"^systemctl disable --now swift-account",
                        lambda c, s, name=node.name: self.retired.add(name) or RunResult(0))
        self.reads: list[str] = []
        self.runs: list[str] = []
        self.lines: list[str] = []

    def factory(self, node):
        rig = self

        class Reads:
            name = node.name

            def run(self, command, *, sudo=True, stdin=None, timeout=None):
                rig.reads.append(f"{node.name}: {command}")
                return rig.fleet[node.name]._rule(command)

            def close(self):
                pass
        return Reads()

    def runner(self, plan, title, check_only):
        self.runs.append(title)
        return execute(plan, self.inv, self.fleet, SECRETS, log_dir=self.tmp_path / "logs", check=check_only,
                       title=title, progress=self.lines.append)

    def change(self):
        return change_rings(self.inv, SECRETS, self.factory, log_dir=self.tmp_path / "logs",
                            progress=self.lines.append, runner=self.runner)

    def sent(self, host: str) -> list[str]:
        return self.fleet[host].commands()


def devices_of(swift: Swift, ring: str = "object") -> list[tuple[str, str, float]]:
    return [(d["ip"], d["device"], d["weight"]) for d in swift.builders[ring]["devs"]]


# ------------------------------------------------------------------ grow
def test_a_new_node_joins_every_ring_after_the_replicators_ran_and_the_cloud_is_ready_again(tmp_path):
    swift = Swift(GUIDE)
    rig = Rig(lab("serving"), swift, tmp_path)
    result = rig.change()
    assert swift.violations == []
    for ring in PORTS:
        assert devices_of(swift, ring)[-2:] == [(OBJECT3, "sdb", 100.0), (OBJECT3, "sdc", 100.0)]
    # The replicators over what the last rebalance moved, then the pretended rebalance, then the replicators again.
    assert sorted(swift.events[:3]) == [("replicate", h) for h in ("object1", "object2", "object3")]
    assert [e for e in swift.events if e[0] == "rebalance"] == [("rebalance", r, True) for r in PORTS]
    assert any("pretend_min_part_hours_passed" in line for line in rig.lines)
    assert rig.runs[-1] == "lab install: finalize again on the new rings"
    assert any("cloud_ready.py" in c for c in rig.sent("controller"))
    for host in ("object1", "object2", "object3"):  # every storage node got the new rings
        version = swift.builders["object"]["version"]
        assert rig.fleet[host].files["/etc/swift/object.ring.gz"][0] == f"object v{version}".encode()
    assert result.changed and result.drained_ids() == []


def test_a_second_run_reads_the_rings_once_and_changes_nothing(tmp_path):
    swift = Swift(WITH_OBJECT3, seconds_left=0)
    rig = Rig(lab("serving"), swift, tmp_path)
    result = rig.change()
    assert rig.runs == [] and rig.reads == ["controller: python3 /usr/local/lib/openstack-ec2-lab/ring_parts.py "
                                            "/etc/swift"]
    assert not result.changed and swift.events == []


def test_a_grow_past_an_hour_after_the_last_rebalance_does_not_pretend(tmp_path):
    swift = Swift(GUIDE, seconds_left=0)
    rig = Rig(lab("serving"), swift, tmp_path)
    rig.change()
    assert [e for e in swift.events if e[0] == "rebalance"] == [("rebalance", r, False) for r in PORTS]
    assert swift.events[0][0] == "rebalance"  # no replicator pass needed first
    assert not any("pretend_min_part_hours_passed" in line for line in rig.lines)


# ------------------------------------------------------------------ shrink
@pytest.mark.parametrize("cap, passes", [(10_000, 1), (300, 2)])
def test_a_leaving_node_is_drained_removed_only_once_empty_and_retired(tmp_path, cap, passes):
    files = {(OBJECT3, "sdb"): 40, (OBJECT3, "sdc"): 35}
    swift = Swift(WITH_OBJECT3, cap=cap, passes_to_empty=passes, files=dict(files))
    rig = Rig(lab("leaving"), swift, tmp_path)
    result = rig.change()
    assert swift.violations == []
    for ring in PORTS:
        assert [(ip, d) for ip, d, _ in devices_of(swift, ring)] == [(ip, d) for ip, d, _ in GUIDE]
    assert swift.files == {(OBJECT3, "sdb"): 0, (OBJECT3, "sdc"): 0}
    assert "lab install: retire what is drained" in rig.runs and rig.retired == {"object3"}
    assert result.drained_ids() == ["i-object3", "vol-sdb-True", "vol-sdc-True"]
    assert [line for line in rig.lines if "pretend_min_part_hours_passed" in line] != []
    assert sum(1 for line in rig.lines if "pretend_min_part_hours_passed" in line) == 1  # said once
    assert any(line.startswith("ring changes, round ") and "weight 0 for 10.0.0.53/sdb" in line for line in rig.lines)
    # The leaving node got every new ring and ran its replicators and updater in each round.
    assert any("swift-object-updater /etc/swift/object-server.conf once -v" in c for c in rig.sent("object3"))
    again = rig.change()  # nothing left to do: the retire step's check says so
    assert not again.changed and swift.violations == []


def test_an_unmounted_leaving_disk_is_never_removed_and_the_run_says_why(tmp_path):
    swift = Swift(WITH_OBJECT3, files={(OBJECT3, "sdb"): 5}, mounted={(OBJECT3, "sdb"): False})
    rig = Rig(lab("leaving"), swift, tmp_path)
    with pytest.raises(RemoteError, match=rf"the rings are not done after {MAX_ROUNDS} rounds: .*waiting for the "
                                          r"replicators to empty 10.0.0.53/sdb \(not mounted"):
        rig.change()
    assert swift.violations == []
    assert all(any(d == (OBJECT3, "sdb") for d in [(ip, dv) for ip, dv, _ in devices_of(swift, r)]) for r in PORTS)
    assert rig.retired == set()


def test_fewer_devices_than_replicas_is_refused_before_any_host_is_changed(tmp_path):
    swift = Swift(WITH_OBJECT3)
    inv = lab("leaving")
    nodes = [n.model_copy(update={"volumes": [v.model_copy(update={"leaving": True}) for v in n.volumes]})
             if n.name == "object2" else n for n in inv.nodes]
    rig = Rig(inv.model_copy(update={"nodes": nodes}), swift, tmp_path, converged_on=inv)
    with pytest.raises(LabError, match="the config leaves 2 Swift devices, but the rings keep 3 replicas"):
        rig.change()
    assert rig.runs == [] and rig.reads == [] and swift.events == []


def test_the_rings_own_replica_count_is_the_last_word(tmp_path):
    """A ring with more replicas than the devices the lab wants (the plan cannot know: no leaving
    record) is refused from the facts, exit 1, before any ring command."""
    swift = Swift(WITH_OBJECT3 + [("10.0.0.99", "sdb", 5)])
    inv = inventory("debian-12", volumes=("sdb",))
    rig = Rig(inv, swift, tmp_path)
    with pytest.raises(RemoteError, match=r"^controller: the account ring keeps 3 replicas, but only 2 devices would "
                                          r"remain") as refused:
        rig.change()
    assert refused.value.exit_code == 1 and rig.runs == [] and swift.events == []


def test_a_device_no_node_has_is_drained_but_kept_with_a_warning(tmp_path):
    swift = Swift(GUIDE + [("10.0.0.99", "sdb", 5)])
    rig = Rig(lab(), swift, tmp_path)
    result = rig.change()
    assert ("10.0.0.99", "sdb", 0.0) in devices_of(swift) and swift.violations == []
    assert any(line.startswith("warning: the object ring keeps 10.0.0.99/sdb at weight 0 with no partition: no node "
                               "of the lab has it") and "remove d4" in line for line in result.lines)


def test_a_failing_replicator_stops_the_run_naming_the_host(tmp_path):
    swift = Swift(WITH_OBJECT3, files={(OBJECT3, "sdb"): 3})
    rig = Rig(lab("leaving"), swift, tmp_path, failing_replicator="object1")
    with pytest.raises(RemoteError, match=r"object1: step finalize/swift-replicate failed \(exit 1\)"):
        rig.change()
    assert not any(e[0] == "rebalance" for e in swift.events)  # the pass before pretending failed: no rebalance
