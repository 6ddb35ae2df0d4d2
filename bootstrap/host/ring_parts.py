"""Where the Swift rings on this host place partitions, as one JSON document; it changes nothing.

    python ring_parts.py SWIFT_DIR            one JSON document (what the lab decides from)
    python ring_parts.py SWIFT_DIR --lines    one line per ring, for people (`lab verify`)

For each of account, container and object it prints
  {"builder": {"part_power": 10, "replicas": 3.0, "min_part_hours": 1, "min_part_seconds_left": 3412,
               "devs_changed": false, "devs": [DEV, ...]} or null,
   "ring": {"part_power": 10, "replica_count": 3.0, "devs": [DEV, ...]} or null}
with DEV = {"id", "region", "zone", "ip", "port", "device", "weight", "parts"}. In the builder,
parts is the builder's own count of the partition replicas it assigns to the device; in the
ring file (<ring>.ring.gz, format 1), it is counted in the file's partition table: what the
servers use. min_part_seconds_left is how long swift-ring-builder still refuses to move a
partition again (min_part_hours after the last rebalance that moved some; 0 once
pretend_min_part_hours_passed ran). Removed devices are left out; an absent or unreadable
file is null (an unreadable one is also named on stderr). Exit 0 when the directory exists.

Why: the lab drains a device before it removes it, and removes it only once no ring places
a partition on it any more, so it must see the placement, not only the list of devices
(ring_facts.py). It stands alone like every host program (standard library only, Python
2.7 to 3.11): the builder's pickle is read with the same guarded unpickler as ring_facts.py,
the partition table with array, never by importing swift.
"""
from __future__ import print_function

import array
import gzip
import json
import os
import pickle
import struct
import sys
import time

RINGS = ("account", "container", "object")
MAGIC = b"R1NG"


class BuilderUnpickler(pickle.Unpickler):
    """A builder's dict; array.array (the partition tables) loads as None, any other global is refused."""

    def find_class(self, module, name):
        if (module, name) == ("array", "array"):
            return lambda *args: None
        raise pickle.UnpicklingError("unexpected %s.%s in a ring builder" % (module, name))


def load_builder(path):
    with open(path, "rb") as f:
        if sys.version_info[0] == 2:
            return BuilderUnpickler(f).load()
        return BuilderUnpickler(f, encoding="latin1").load()


def device(found, parts):
    return {"id": int(found["id"]), "region": int(found["region"]), "zone": int(found["zone"]),
            "ip": str(found["ip"]), "port": int(found["port"]), "device": str(found["device"]),
            "weight": float(found["weight"]), "parts": int(parts)}


def seconds_left(builder, now):
    """swift's RingBuilder.min_part_seconds_left, from the builder's plain values."""
    epoch = int(builder.get("_last_part_moves_epoch") or 0)
    return max(int(builder["min_part_hours"]) * 3600 - int(now - epoch), 0)


def builder_facts(path, now=None):
    builder = load_builder(path)
    return {"part_power": int(builder["part_power"]), "replicas": float(builder["replicas"]),
            "min_part_hours": int(builder["min_part_hours"]),
            "min_part_seconds_left": seconds_left(builder, time.time() if now is None else now),
            "devs_changed": bool(builder["devs_changed"]),
            "devs": [device(d, d.get("parts") or 0) for d in builder["devs"] if d]}


def read_ring(path):
    """(header, counts): the JSON header and how many partition replicas each device id has."""
    with gzip.open(path, "rb") as f:
        start = f.read(10)
        if len(start) != 10 or start[:4] != MAGIC:
            raise ValueError("not a ring file (no R1NG header)")
        version, size = struct.unpack("!HI", start[4:])
        if version != 1:
            raise ValueError("ring format version %d, not 1" % version)
        header = f.read(size)
        if len(header) != size:
            raise ValueError("truncated ring header")
        table = f.read()
    header = json.loads(header.decode("utf-8"))
    if len(table) % 2:
        raise ValueError("partition table of odd length")
    ids = array.array("H")
    if sys.version_info[0] == 2:
        ids.fromstring(table)
    else:
        ids.frombytes(table)
    if header.get("byteorder", sys.byteorder) != sys.byteorder:
        ids.byteswap()
    counts = {}
    for dev_id in ids:
        counts[dev_id] = counts.get(dev_id, 0) + 1
    # One array per replica, of 2**part_power entries; only the last one may be shorter (a fractional replica).
    replicas, parts = int(header["replica_count"]), 2 ** (32 - int(header["part_shift"]))
    if not (replicas - 1) * parts < len(ids) <= replicas * parts:
        raise ValueError("partition table holds %d entries, not %d replicas of %d partitions"
                         % (len(ids), replicas, parts))
    return header, counts


def ring_facts(path):
    header, counts = read_ring(path)
    return {"part_power": 32 - int(header["part_shift"]), "replica_count": float(header["replica_count"]),
            "devs": [device(d, counts.get(int(d["id"]), 0)) for d in header["devs"] if d]}


def read(path, facts):
    """facts(path), or None when the file is absent or cannot be read as what it should be."""
    if not os.path.exists(path):
        return None
    try:
        return facts(path)
    except Exception as error:  # truncated, not gzip, not a pickle, missing keys: all "unreadable"
        print("ring_parts.py: %s: unreadable (%s: %s)" % (path, type(error).__name__, error), file=sys.stderr)
        return None


def line(name, ring):
    """What `lab verify` shows of one ring file: its devices, sorted, with their partitions."""
    if ring is None:
        return "%s ring: no ring file" % name
    devs = sorted(ring["devs"], key=lambda d: (d["ip"], d["device"]))
    return "%s ring: %d devices, %g replicas, partition power %d: %s" % (
        name, len(devs), ring["replica_count"], ring["part_power"],
        ", ".join("%s/%s (zone %d, weight %g, %d partitions)" % (d["ip"], d["device"], d["zone"], d["weight"],
                                                               d["parts"]) for d in devs))


def main(args):
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--lines"):
        print("usage: ring_parts.py SWIFT_DIR [--lines]", file=sys.stderr)
        return 2
    swift_dir = args[0]
    if not os.path.isdir(swift_dir):
        print("ring_parts.py: %s is not a directory: is swift installed on this host?" % swift_dir,
              file=sys.stderr)
        return 1
    facts = {}
    for ring in RINGS:
        facts[ring] = {"builder": read(os.path.join(swift_dir, ring + ".builder"), builder_facts),
                       "ring": read(os.path.join(swift_dir, ring + ".ring.gz"), ring_facts)}
    if len(args) == 2:
        for ring in RINGS:
            print(line(ring, facts[ring]["ring"]))
    else:
        print(json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
