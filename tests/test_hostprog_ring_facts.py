"""bootstrap/host/ring_facts.py on every interpreter, reading builder and ring files made by real
swift (tests/data/rings/README.md says how), then absent, truncated and hostile files."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil

import pytest
from interpreters import DATA, on, run
from plan_fixtures import PORTS

RINGS = DATA / "rings"
MADE_BY = {"py2-swift-2.19.1": 8, "py3-swift-2.38.3": 10}  # fixture -> its part power


def dev(id, zone, ip, device, port, weight=100.0):
    return {"id": id, "region": 1, "zone": zone, "ip": ip, "port": port, "device": device, "weight": weight}


def lab_devices(port, first_id=0):
    """The fixtures' four devices: 172.31.0.5 sdb, sdc in zone 1, 172.31.0.6 sdb, sdc in zone 2."""
    places = [(1, "172.31.0.5", "sdb"), (1, "172.31.0.5", "sdc"), (2, "172.31.0.6", "sdb"), (2, "172.31.0.6", "sdc")]
    return [dev(first_id + n, zone, ip, device, port) for n, (zone, ip, device) in enumerate(places)]


def expected(part_power):
    facts = {}
    for ring, port in PORTS.items():
        # object: d0 was removed (None in both lists); container: sdd added after the ring was written
        devs = lab_devices(port, first_id=1 if ring == "object" else 0)
        builder_devs = devs + [dev(4, 2, "172.31.0.6", "sdd", port, 50.0)] if ring == "container" else devs
        facts[ring] = {
            "builder": {"part_power": part_power, "replicas": 3.0, "min_part_hours": 1,
                        "devs_changed": ring == "container", "devs": builder_devs},
            "ring": {"part_power": part_power, "replica_count": 3.0, "devs": devs},
        }
    return facts


def facts(version, swift_dir):
    result = run(version, "ring_facts.py", str(swift_dir))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@on()
@pytest.mark.parametrize("made_by", sorted(MADE_BY))
def test_ring_facts_reads_what_swift_wrote(version, made_by):
    found, stderr = facts(version, RINGS / made_by)
    assert found == expected(MADE_BY[made_by])
    assert stderr == ""


@on()
def test_ring_facts_gives_null_for_absent_files(version, tmp_path):
    shutil.copy(RINGS / "py3-swift-2.38.3" / "object.builder", tmp_path)
    found, stderr = facts(version, tmp_path)
    assert found["account"] == {"builder": None, "ring": None}
    assert found["container"] == {"builder": None, "ring": None}
    assert found["object"]["ring"] is None
    assert found["object"]["builder"] == expected(10)["object"]["builder"]
    assert stderr == ""


@on()
def test_ring_facts_gives_null_for_truncated_files_and_names_them(version, tmp_path):
    source = RINGS / "py2-swift-2.19.1"
    builder = (source / "account.builder").read_bytes()
    (tmp_path / "account.builder").write_bytes(builder[: len(builder) // 2])
    ring = gzip.decompress((source / "account.ring.gz").read_bytes())
    (tmp_path / "account.ring.gz").write_bytes(gzip.compress(ring[:200]))  # inside the JSON header
    (tmp_path / "container.ring.gz").write_bytes((source / "container.ring.gz").read_bytes()[:100])
    (tmp_path / "object.ring.gz").write_bytes(b"not a ring at all")
    found, stderr = facts(version, tmp_path)
    assert found["account"] == {"builder": None, "ring": None}
    assert found["container"]["ring"] is None and found["object"]["ring"] is None
    for name in ("account.builder", "account.ring.gz", "container.ring.gz", "object.ring.gz"):
        assert f"{tmp_path / name}: unreadable" in stderr
    assert len(stderr.splitlines()) == 4 and "Traceback" not in stderr


@on()
def test_ring_facts_does_not_read_ring_format_2(version, tmp_path):
    shutil.copy(RINGS / "py3-swift-2.38.3-format-v2" / "object.ring.gz", tmp_path)
    found, stderr = facts(version, tmp_path)
    assert found["object"]["ring"] is None
    assert "ring format version 2, not 1" in stderr


class Boom:
    """A pickle that would run a command when loaded by a plain pickle.load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@on()
def test_ring_facts_loads_no_code_from_a_builder(version, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "object.builder").write_bytes(pickle.dumps({"devs": [Boom(marker)]}, protocol=2))
    found, stderr = facts(version, tmp_path)
    assert found["object"]["builder"] is None
    assert not marker.exists()
    assert "unexpected posix.system in a ring builder" in stderr or "unexpected os.system" in stderr


@on()
def test_ring_facts_without_the_directory_exits_1(version, tmp_path):
    result = run(version, "ring_facts.py", str(tmp_path / "swift"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (f"ring_facts.py: {tmp_path / 'swift'} is not a directory: "
                             "is swift installed on this host?\n")


@on()
def test_ring_facts_needs_exactly_one_argument(version):
    result = run(version, "ring_facts.py")
    assert (result.returncode, result.stderr) == (2, "usage: ring_facts.py SWIFT_DIR\n")
