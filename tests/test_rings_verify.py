"""`lab verify` shows the devices in the rings: one check per ring on the controller, passing only when
its ring file holds exactly the config's Swift devices (ring_parts.py's lines of files made by real
swift); a leaving node or volume is neither expected in the rings nor checked as the lab's storage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fakes import FakeFleet
from plan_fixtures import inventory

from bootstrap.verify import device_checks, ring_checks, run_checks
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.remote import RunResult
from labcore.secrets import Secrets

DATA = Path(__file__).resolve().parent / "data" / "rings"
PROGRAM = Path(__file__).resolve().parent.parent / "bootstrap" / "host" / "ring_parts.py"


def lab(object3: str | None) -> Inventory:
    """The fixtures' lab: object1 172.31.0.5, object2 .6 (sdb, sdc each); object3 .7 serving or leaving."""
    inv = inventory("debian-12")
    nodes = [inv.nodes[0]] + [n.model_copy(update={"private_ip": ip, "ssh_host": ip})
                              for n, ip in zip(inv.nodes[1:], ("172.31.0.5", "172.31.0.6"))]
    if object3:
        volumes = [VolumeRecord(name=d, volume_id=f"vol-3{d}", size_gb=10, device="/dev/sdf",
                                leaving=object3 == "leaving") for d in ("sdb", "sdc")]
        nodes.append(NodeRecord(name="object3", role="object", instance_id="i-3", instance_type="t3.medium", az="a",
                                private_ip="172.31.0.7", ssh_host="172.31.0.7", ssh_user="admin", volumes=volumes,
                                leaving=object3 == "leaving"))
    return inv.model_copy(update={"nodes": nodes})


def verdicts(inv: Inventory, directory: Path) -> dict[str, tuple[bool, str]]:
    lines = subprocess.run([sys.executable, str(PROGRAM), str(directory), "--lines"], capture_output=True, text=True,
                           check=True).stdout
    fleet = FakeFleet()
    fleet["controller"].answer(r"ring_parts\.py /etc/swift --lines$", RunResult(0, lines))
    return {r.name: (r.passed, r.detail) for r in run_checks(ring_checks(inv), fleet, Secrets({}))}


def test_a_grown_lab_shows_six_devices_in_every_ring():
    found = verdicts(lab("serving"), DATA / "drain" / "py3-swift-2.38.3" / "grown")
    assert list(found) == ["account ring: 6 devices", "container ring: 6 devices", "object ring: 6 devices"]
    assert all(passed for passed, _ in found.values())
    passed, detail = found["object ring: 6 devices"]
    assert detail.startswith("object ring: 6 devices, 3 replicas, partition power 10: 172.31.0.5/sdb (zone 1, weight "
                             "100, 512 partitions)")


def test_a_ring_that_still_holds_a_leaving_node_fails_verify():
    found = verdicts(lab("leaving"), DATA / "drain" / "py3-swift-2.38.3" / "draining")
    assert list(found) == ["account ring: 4 devices", "container ring: 4 devices", "object ring: 4 devices"]
    assert not any(passed for passed, _ in found.values())
    assert "output lacks" in found["object ring: 4 devices"][1]


def test_what_is_checked_is_the_ring_file_the_servers_use_not_the_builder():
    """The round-1 fixtures: container.builder has a fifth device added after its ring file was written."""
    found = verdicts(lab(None), DATA / "py3-swift-2.38.3")
    assert all(passed for passed, _ in found.values())
    grown = verdicts(lab(None), DATA / "drain" / "py3-swift-2.38.3" / "grown")  # 172.31.0.7 is no node of this lab
    assert not any(passed for passed, _ in grown.values())


def test_leaving_storage_is_not_checked_as_the_labs():
    inv = lab("leaving")
    nodes = [n.model_copy(update={"volumes": [*n.volumes, VolumeRecord(name="sdd", volume_id="vol-d", size_gb=10,
                                                                        device="/dev/sdh", leaving=True)]})
             if n.name == "object1" else n for n in inv.nodes]
    checked = {(c.host, c.name) for c in device_checks(inv.model_copy(update={"nodes": nodes}))}
    assert ("object1", "sdb is XFS at /srv/node/sdb") in checked and ("object1", "sdd is XFS at /srv/node/sdd") \
        not in checked
    assert not any(host == "object3" for host, _ in checked)
