"""bootstrap/host/ring_parts.py on every interpreter a profile sends it to, reading files made by real
swift: each device's partitions in the builder and in the ring file's own table, removed devices
left out, how long min_part_hours still holds, the lines `lab verify` shows; absent, truncated
and hostile files are null, never a traceback."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import subprocess
import time

import pytest
from interpreters import DATA, interpreter, on, run

RINGS = DATA / "rings"
DRAIN = RINGS / "drain"


def parts(version, directory, *args):
    result = run(version, "ring_parts.py", str(directory), *args)
    assert result.returncode == 0, result.stderr
    return result


@on()
@pytest.mark.parametrize("made_by, part_power", [("py3-swift-2.38.3", 10), ("py2-swift-2.19.1", 8)])
def test_the_builder_and_the_ring_file_agree_on_every_devices_partitions(version, made_by, part_power):
    found = json.loads(parts(version, DRAIN / made_by / "grown").stdout)
    for name in ("account", "container", "object"):
        builder, ring = found[name]["builder"], found[name]["ring"]
        assert (builder["part_power"], builder["replicas"], ring["replica_count"]) == (part_power, 3.0, 3.0)
        assert [(d["ip"], d["device"], d["zone"]) for d in builder["devs"]] == [
            (ip, d, zone) for ip, zone in (("172.31.0.5", 1), ("172.31.0.6", 2), ("172.31.0.7", 3))
            for d in ("sdb", "sdc")]
        assert {d["id"]: d["parts"] for d in builder["devs"]} == {d["id"]: d["parts"] for d in ring["devs"]}
        assert sum(d["parts"] for d in ring["devs"]) == 3 * 2 ** part_power
        assert 0 <= builder["min_part_seconds_left"] <= 3600  # exact: test_min_part_hours_left_counts_...


@on()
def test_a_drained_device_shows_weight_0_and_no_partition(version):
    found = json.loads(parts(version, DRAIN / "py3-swift-2.38.3" / "draining").stdout)
    leaving = [d for d in found["object"]["ring"]["devs"] if d["ip"] == "172.31.0.7"]
    assert [(d["id"], d["weight"], d["parts"]) for d in leaving] == [(4, 0.0, 0), (5, 0.0, 0)]


@on()
def test_a_removed_device_is_left_out(version):
    found = json.loads(parts(version, RINGS / "py3-swift-2.38.3").stdout)
    assert [d["id"] for d in found["object"]["builder"]["devs"]] == [1, 2, 3, 4]
    assert [d["id"] for d in found["object"]["ring"]["devs"]] == [1, 2, 3, 4]


@on()
def test_min_part_hours_left_counts_from_the_last_rebalance(version, tmp_path):
    """A builder whose partitions moved 10 minutes ago: about 50 minutes left (the pickle rewritten
    by the host interpreter, only _last_part_moves_epoch changed)."""
    shutil.copy(DRAIN / "py3-swift-2.38.3" / "grown" / "object.builder", tmp_path / "object.builder")
    script = ("import pickle, sys\n"
              "class U(pickle.Unpickler):\n"
              "    def find_class(self, m, n):\n"
              "        if (m, n) == ('array', 'array'):\n"
              "            return lambda *a: None\n"
              "        return pickle.Unpickler.find_class(self, m, n)\n"
              "f = open(sys.argv[1], 'rb')\n"
              "b = U(f, encoding='latin1').load() if sys.version_info[0] > 2 else U(f).load()\n"
              "b['_last_part_moves_epoch'] = int(sys.argv[2])\n"
              "pickle.dump(b, open(sys.argv[1], 'wb'), protocol=2)\n")
    (tmp_path / "edit.py").write_text(script)
    subprocess.run([str(interpreter(version)), str(tmp_path / "edit.py"), str(tmp_path / "object.builder"),
                    str(int(time.time()) - 600)], check=True)
    left = json.loads(parts(version, tmp_path).stdout)["object"]["builder"]["min_part_seconds_left"]
    assert 2990 <= left <= 3000


@on()
def test_lines_name_each_ring_files_devices_sorted_with_their_partitions(version):
    lines = parts(version, DRAIN / "py3-swift-2.38.3" / "draining", "--lines").stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["account ring", "container ring", "object ring"]
    assert lines[2].startswith("object ring: 6 devices, 3 replicas, partition power 10: 172.31.0.5/sdb (zone 1, "
                               "weight 100, ")
    assert lines[2].endswith("172.31.0.7/sdb (zone 3, weight 0, 0 partitions), 172.31.0.7/sdc (zone 3, weight 0, "
                             "0 partitions)")


@on()
def test_absent_truncated_and_hostile_files_are_null(version, tmp_path):
    shutil.copy(DRAIN / "py3-swift-2.38.3" / "grown" / "object.builder", tmp_path)
    with gzip.open(tmp_path / "object.ring.gz", "wb") as f:
        f.write(b"R1NG\x00\x01\x00\x00\x00\x02{}")  # a header cut short of its table
    (tmp_path / "container.builder").write_bytes(pickle.dumps(print, protocol=2))  # a global it never loads
    result = parts(version, tmp_path)
    found = json.loads(result.stdout)
    assert found["object"]["builder"]["part_power"] == 10 and found["object"]["ring"] is None
    assert found["container"] == {"builder": None, "ring": None} and found["account"] == {"builder": None,
                                                                                         "ring": None}
    assert "object.ring.gz: unreadable" in result.stderr and "container.builder: unreadable" in result.stderr
    assert "Traceback" not in result.stderr
    assert "no ring file" in parts(version, tmp_path, "--lines").stdout.splitlines()[0]


@on("3.11")
def test_a_format_2_ring_file_is_null_and_a_missing_directory_is_exit_1(version, tmp_path):
    shutil.copy(RINGS / "py3-swift-2.38.3-format-v2" / "object.ring.gz", tmp_path)
    result = parts(version, tmp_path)
    assert json.loads(result.stdout)["object"]["ring"] is None and "version 2, not 1" in result.stderr
    missing = run(version, "ring_parts.py", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "is not a directory" in missing.stderr
    assert run(version, "ring_parts.py").returncode == 2
