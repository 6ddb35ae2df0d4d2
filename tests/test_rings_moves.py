"""What each ring needs next (bootstrap/ring_moves.py), decided from what ring_parts.py reads in ring
files made by real swift with the lab's own commands (tests/data/rings/drain/README.md): a grow
adds and rebalances, a drain sets weight 0 and rebalances, a device is removed only once no ring
places a partition on it and its disk is empty, and fewer devices than replicas is refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from plan_fixtures import PORTS

from bootstrap.actions import Ring, RingDevice
from bootstrap.changes import Refused
from bootstrap.ring_moves import Disk, next_moves, read_parts, ring_move

DATA = Path(__file__).resolve().parent / "data" / "rings"
DRAIN = DATA / "drain"
PROGRAM = Path(__file__).resolve().parent.parent / "bootstrap" / "host" / "ring_parts.py"
NODES = {"172.31.0.5": 1, "172.31.0.6": 2, "172.31.0.7": 3}
MADE_BY = {"py3-swift-2.38.3": 10, "py2-swift-2.19.1": 8}
EMPTY = Disk(True, 0, 0)
LEAVING = {("172.31.0.7", "sdb"): EMPTY, ("172.31.0.7", "sdc"): EMPTY}


def rings(ips=("172.31.0.5", "172.31.0.6"), part_power=10, weight=100.0, extra=()) -> tuple[Ring, ...]:
    devices = [(ip, d) for ip in ips for d in ("sdb", "sdc")] + list(extra)
    return tuple(Ring(name, "/etc/swift", part_power, min(3, len(devices)), 1,
                      tuple(RingDevice(1, NODES.get(ip, 9), ip, port, d, weight) for ip, d in devices), "python3")
                 for name, port in PORTS.items())


def placements(directory: Path, seconds_left: int | None = 0):
    """ring_parts.py's reading of the directory; seconds_left as if the last rebalance were that long ago."""
    done = subprocess.run([sys.executable, str(PROGRAM), str(directory)], capture_output=True, text=True, check=True)
    found = read_parts(done.stdout)
    if seconds_left is None:
        return found
    return {n: replace(p, builder=replace(p.builder, seconds_left=seconds_left)) for n, p in found.items()}


def commands(moves) -> dict[str, list[str]]:
    return {m.ring: list(m.commands) for m in moves.rings}


B = "swift-ring-builder /etc/swift/{}.builder"


# ------------------------------------------------------------------ nothing to do
@pytest.mark.parametrize("made_by", sorted(MADE_BY))
def test_rings_that_hold_exactly_the_configs_devices_need_nothing(made_by):
    moves = next_moves(rings(tuple(NODES), MADE_BY[made_by]), placements(DRAIN / made_by / "grown", 3000), {})
    assert moves.done and not moves.changes and moves.lines() == []


def test_a_ring_as_built_and_one_with_a_removed_device_need_nothing():
    found = placements(DATA / "py3-swift-2.38.3", 3000)
    for index, name in ((0, "account"), (2, "object")):  # the object builder's d0 was removed long ago
        move = ring_move(rings()[index], found[name], {})
        assert not move.changes and not move.waiting and move.says == ()


# ------------------------------------------------------------------ grow
@pytest.mark.parametrize("seconds_left, pretend", [(2400, True), (0, False)])
def test_a_new_node_is_added_to_every_ring_and_rebalanced(seconds_left, pretend):
    moves = next_moves(rings(tuple(NODES)), placements(DATA / "py3-swift-2.38.3", seconds_left), {})
    adds = [f"{B.format('object')} add --region 1 --zone 3 --ip 172.31.0.7 --port 6200 --device sdb --weight 100",
            f"{B.format('object')} add --region 1 --zone 3 --ip 172.31.0.7 --port 6200 --device sdc --weight 100"]
    object_move = next(m for m in moves.rings if m.ring == "object")
    assert object_move.edits == tuple(adds)
    assert object_move.rebalance and object_move.pretend is pretend and moves.pretend is pretend
    assert list(object_move.commands[-1:]) == [f"{B.format('object')} rebalance || [ $? -eq 1 ]"]
    assert (f"{B.format('object')} pretend_min_part_hours_passed" in object_move.commands) is pretend
    assert "account and object rings: add 172.31.0.7/sdb (zone 3, weight 100); add 172.31.0.7/sdc (zone 3, " \
           "weight 100)" in moves.lines()  # the container ring also drains the fixture's extra sdd


def test_a_device_added_on_a_node_already_in_the_ring_keeps_the_nodes_zone():
    wanted = rings(extra=(("172.31.0.5", "sdd"),))
    account = ring_move(replace(wanted[0], devices=tuple(replace(d, zone=7) if d.device == "sdd" else d
                                                         for d in wanted[0].devices)),
                        placements(DATA / "py3-swift-2.38.3")["account"], {})
    assert account.edits == (f"{B.format('account')} add --region 1 --zone 1 --ip 172.31.0.5 --port 6202 "
                             f"--device sdd --weight 100",)


def test_a_lab_grown_past_its_replica_count_gets_the_guides_three():
    found = placements(DATA / "py3-swift-2.38.3")
    found["account"] = replace(found["account"], builder=replace(found["account"].builder, replicas=2.0))
    move = ring_move(rings()[0], found["account"], {})
    assert move.edits == (f"{B.format('account')} set_replicas 3",) and move.rebalance


def test_a_changed_weight_is_set_on_the_device_not_rebuilt():
    move = ring_move(rings(weight=50.0)[0], placements(DATA / "py3-swift-2.38.3")["account"], {})
    assert move.edits == tuple(f"{B.format('account')} set_weight d{i} 50" for i in range(4)) and move.rebalance


# ------------------------------------------------------------------ shrink
@pytest.mark.parametrize("made_by", sorted(MADE_BY))
def test_a_node_taken_out_of_the_config_gets_weight_0_and_a_rebalance(made_by):
    moves = next_moves(rings(part_power=MADE_BY[made_by]), placements(DRAIN / made_by / "grown", 3000), LEAVING)
    for name in PORTS:
        assert commands(moves)[name] == [f"{B.format(name)} set_weight d4 0", f"{B.format(name)} set_weight d5 0",
                                         f"{B.format(name)} pretend_min_part_hours_passed",
                                         f"{B.format(name)} rebalance || [ $? -eq 1 ]"]
    assert not any("remove" in c for cs in commands(moves).values() for c in cs)


@pytest.mark.parametrize("made_by", sorted(MADE_BY))
def test_a_drained_device_with_an_empty_disk_is_removed_without_pretending(made_by):
    moves = next_moves(rings(part_power=MADE_BY[made_by]), placements(DRAIN / made_by / "draining", 3000), LEAVING)
    for name in PORTS:
        assert commands(moves)[name] == [f"{B.format(name)} remove d4", f"{B.format(name)} remove d5",
                                         f"{B.format(name)} rebalance || [ $? -eq 1 ]"]
    assert not moves.pretend  # removing empty devices moves no partition: no reason to skip min_part_hours
    assert moves.lines() == ["account, container and object rings: remove 172.31.0.7/sdb: no partition and no data "
                             "left on it; remove 172.31.0.7/sdc: no partition and no data left on it"]


@pytest.mark.parametrize("disk, why", [
    (Disk(True, 3, 0), "172.31.0.7/sdb (3 data files, 0 pending updates)"),
    (Disk(True, 0, 2), "172.31.0.7/sdb (0 data files, 2 pending updates)"),
    (Disk(False, 0, 0), "172.31.0.7/sdb (not mounted, so what is on it cannot be seen)"),
    (None, "172.31.0.7/sdb (its disk could not be read)"),
])
def test_a_device_is_never_removed_while_its_disk_may_hold_data(disk, why):
    moves = next_moves(rings(), placements(DRAIN / "py3-swift-2.38.3" / "draining"),
                       {**LEAVING, ("172.31.0.7", "sdb"): disk})
    assert all(c == [f"{B.format(n)} remove d5", f"{B.format(n)} rebalance || [ $? -eq 1 ]"]
               for n, c in commands(moves).items())
    assert moves.lines()[-1] == f"waiting for the replicators to empty {why}"  # once, not once per ring
    assert not moves.done


def test_partitions_still_on_leaving_devices_are_moved_before_anything_is_removed():
    """Two nodes leaving at once: after one rebalance ~128 partitions per device had two replicas there."""
    moves = next_moves(rings(), placements(DRAIN / "py3-swift-2.38.3" / "four-round1", 3000),
                       {(ip, d): EMPTY for ip in ("172.31.0.7", "172.31.0.8") for d in ("sdb", "sdc")})
    for name in PORTS:
        assert commands(moves)[name] == [f"{B.format(name)} pretend_min_part_hours_passed",
                                         f"{B.format(name)} rebalance || [ $? -eq 1 ]"]
    line = next(line for line in moves.lines() if "object" in line.split(":")[0])
    assert re.search(r"rings?: 172.31.0.7/sdb still has 1[23]\d partitions: rebalance again; 172.31.0.7/sdc still has "
                     r"1[23]\d partitions: rebalance again; 172.31.0.8/sdb still has 1[23]\d partitions", line)


def test_a_device_no_node_of_the_lab_has_is_drained_but_never_removed():
    moves = next_moves(rings(), placements(DRAIN / "py3-swift-2.38.3" / "draining"), {})
    assert commands(moves) == {n: [] for n in PORTS} and moves.done
    assert all(m.orphans == (("172.31.0.7/sdb", 4), ("172.31.0.7/sdc", 5)) for m in moves.rings)


def test_the_real_round1_fixtures_device_added_after_the_last_rebalance_is_drained():
    """tests/data/rings/py3-swift-2.38.3: container.builder has 172.31.0.6 sdd (weight 50) the lab does not want."""
    move = ring_move(rings()[1], placements(DATA / "py3-swift-2.38.3")["container"], {})
    assert move.edits == (f"{B.format('container')} set_weight d4 0",) and move.rebalance


@pytest.mark.parametrize("made_by", sorted(MADE_BY))
def test_fewer_devices_than_replicas_is_refused_before_anything_changes(made_by):
    wanted = tuple(replace(r, devices=r.devices[:2], replicas=2) for r in rings(part_power=MADE_BY[made_by]))
    with pytest.raises(Refused, match=r"^the account ring keeps 3 replicas, but only 2 devices would remain: a "
                                      r"device is removed only while every partition keeps its replicas elsewhere"):
        next_moves(wanted, placements(DRAIN / made_by / "grown"), LEAVING)


def test_ring_parts_answers_that_are_not_its_json_are_refused():
    with pytest.raises(ValueError, match="ring_parts.py answered something else than its JSON"):
        read_parts("not json")
    with pytest.raises(ValueError, match="KeyError"):
        read_parts(json.dumps({"object": {"builder": {"part_power": 10}, "ring": None}}))
