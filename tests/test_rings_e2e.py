"""Grow and shrink the default lab on the twin without losing an object (issue 13), for real.

Default `lab up` + `lab install`, an object stored with its checksum; then the config grows by an
object node with two volumes: `lab up` + `lab install` put its devices in the three rings (6
devices), the object reads back with its checksum, a second `lab install` is 0 changed. Then the
config shrinks back: `lab up` leaves object3 running (it still holds data), `lab install` drains it
(weight 0, rebalance, copies, replicators, remove) and marks it lab:drained, the object still
reads back, the rings hold 4 devices, and the next `lab up` terminates it. Needs root and the
twin's packages (skips locally without them, fails in CI), like tests/test_e2e_sim.py, whose
helpers it uses; only the helper that holds /tmp/twin-owner (or the lead) runs it.
"""

from __future__ import annotations

import pytest
import yaml
from test_e2e_sim import CONFIG, LAB, _ec2, _lab, _on, _sha256_of_object, twin_lab_home

pytestmark = pytest.mark.e2e

OBJECT3 = "  object3: {role: object, type: t3.medium, volumes: {sdb: 10, sdc: 10}}\n"


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory):
    yield from twin_lab_home(tmp_path_factory, "e2e-rings")


def _ring_lines(home) -> dict[str, str]:
    """What the controller's ring files hold (ring_parts.py --lines, as `lab verify` reads them)."""
    out = _on(home, "controller", "sudo python3 /usr/local/lib/openstack-ec2-lab/ring_parts.py /etc/swift --lines")
    return {line.split(" ring:")[0]: line for line in out.stdout.splitlines() if " ring:" in line}


def _nodes(home) -> dict[str, dict]:
    return {n["name"]: n for n in yaml.safe_load((home / LAB / "inventory.yaml").read_text())["nodes"]}


def test_grow_by_a_node_then_shrink_back_keeps_every_object(lab_home, tmp_path):
    grown = tmp_path / "grown.yaml"
    grown.write_text(CONFIG.read_text() + OBJECT3)
    _lab(lab_home, "up")
    _lab(lab_home, "install")
    _on(lab_home, "controller", "sudo sh -c 'head -c 3000000 /dev/urandom > /root/kept.bin && . /root/demo-openrc "
                                "&& cd /root && swift upload kept kept.bin >/dev/null'")
    stored = _on(lab_home, "controller", "sudo sha256sum /root/kept.bin").stdout.split()[0]
    assert all(line.startswith(f"{ring} ring: 4 devices") for ring, line in _ring_lines(lab_home).items())

    # Grow: a new node with two volumes joins all three rings; the object is still there.
    _lab(lab_home, "up", config=grown)
    ip3 = _nodes(lab_home)["object3"]["private_ip"]
    install = _lab(lab_home, "install", config=grown)
    assert f"add {ip3}/sdb" in install.stdout and "pretend_min_part_hours_passed" in install.stdout
    rings = _ring_lines(lab_home)
    assert sorted(rings) == ["account", "container", "object"]
    for line in rings.values():
        assert " ring: 6 devices, 3 replicas" in line and f"{ip3}/sdb (zone 3, weight 100, " in line
        assert f"{ip3}/sdc (zone 3, weight 100, 0 partitions)" not in line  # it holds partitions now
    assert _sha256_of_object(lab_home, "kept", "kept.bin") == stored
    again = _lab(lab_home, "install", config=grown)
    assert "0 changed" in again.stdout and "ring changes" not in again.stdout
    verify = _lab(lab_home, "verify", config=grown)
    assert "object ring: 6 devices" in verify.stdout

    # Shrink: `up` keeps object3 (it holds data), `install` drains it, the next `up` terminates it.
    up = _lab(lab_home, "up")
    assert "(node object3) is no longer in the config and still holds Swift data" in up.stdout
    assert _nodes(lab_home)["object3"]["leaving"] is True
    object3 = _nodes(lab_home)["object3"]["instance_id"]
    drain = _lab(lab_home, "install")
    assert f"weight 0 for {ip3}/sdb" in drain.stdout and f"remove {ip3}/sdb" in drain.stdout
    assert "drained: object3 (services stopped)" in drain.stdout and "marked lab:drained" in drain.stdout
    assert all(line.startswith(f"{ring} ring: 4 devices") and ip3 not in line
               for ring, line in _ring_lines(lab_home).items())
    assert _sha256_of_object(lab_home, "kept", "kept.bin") == stored
    tags = {t["Key"]: t["Value"] for t in _ec2(lab_home).describe_instances(InstanceIds=[object3])[
        "Reservations"][0]["Instances"][0].get("Tags", [])}
    assert tags.get("lab:drained") == "true"
    gone = _lab(lab_home, "up")
    assert f"drained by `lab install`, terminated: object3 ({object3})" in gone.stdout
    assert sorted(_nodes(lab_home)) == ["controller", "object1", "object2"]
    assert _sha256_of_object(lab_home, "kept", "kept.bin") == stored
    final = _lab(lab_home, "verify")
    assert "object ring: 4 devices" in final.stdout
