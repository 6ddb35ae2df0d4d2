"""What the Swift rings on this host say, as one JSON document; it changes nothing.

    python ring_facts.py /etc/swift

For each of account, container and object it reads <ring>.builder (the pickled
RingBuilder.to_dict() that swift-ring-builder saves, protocol 2, from python 2 or 3) and
<ring>.ring.gz (gzip: b"R1NG", version 1, a length, a JSON header, then the partition
table), and prints
  {"account": {"builder": {"part_power": 10, "replicas": 3.0, "min_part_hours": 1,
                           "devs_changed": false, "devs": [DEV, ...]} or null,
               "ring": {"part_power": 10, "replica_count": 3.0, "devs": [DEV, ...]} or null},
   "container": {...}, "object": {...}}
with DEV = {"id", "region", "zone", "ip", "port", "device", "weight"}; removed devices
(None in the lists) are left out. A file that is absent or unreadable is null (an
unreadable one is also named on stderr). Exit 0 when the directory exists, else 1.

Why: the lab decides from facts (build, add devices, set weights, rebalance) instead of a
check that only says yes or no, and without importing swift: ~0.1 s instead of a second
per swift-ring-builder call. Only the builder's plain values are read; its partition
arrays are skipped, never unpickled into objects.
"""
from __future__ import print_function

import gzip
import json
import os
import pickle
import struct
import sys

RINGS = ("account", "container", "object")
MAGIC = b"R1NG"


class BuilderUnpickler(pickle.Unpickler):
    """Loads a builder's dict; the only globals it holds are array.array (the partition
    tables, not needed here), which load as None. Anything else is refused."""

    def find_class(self, module, name):
        if (module, name) == ("array", "array"):
            return lambda *args: None
        raise pickle.UnpicklingError("unexpected %s.%s in a ring builder" % (module, name))


def load_builder(path):
    with open(path, "rb") as f:
        if sys.version_info[0] == 2:
            return BuilderUnpickler(f).load()
        # Strings written by swift on python 2 are bytes here: latin1 reads them as text.
        return BuilderUnpickler(f, encoding="latin1").load()


def load_ring_header(path):
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
        return json.loads(header.decode("utf-8"))


def device(found):
    return {"id": int(found["id"]), "region": int(found["region"]), "zone": int(found["zone"]),
            "ip": str(found["ip"]), "port": int(found["port"]), "device": str(found["device"]),
            "weight": float(found["weight"])}


def builder_facts(path):
    builder = load_builder(path)
    return {"part_power": int(builder["part_power"]), "replicas": float(builder["replicas"]),
            "min_part_hours": int(builder["min_part_hours"]), "devs_changed": bool(builder["devs_changed"]),
            "devs": [device(d) for d in builder["devs"] if d]}


def ring_facts(path):
    header = load_ring_header(path)
    return {"part_power": 32 - int(header["part_shift"]), "replica_count": float(header["replica_count"]),
            "devs": [device(d) for d in header["devs"] if d]}


def read(path, facts):
    """facts(path), or None when the file is absent or cannot be read as what it should be."""
    if not os.path.exists(path):
        return None
    try:
        return facts(path)
    except Exception as error:  # truncated, not gzip, not a pickle, missing keys: all "unreadable"
        print("ring_facts.py: %s: unreadable (%s: %s)" % (path, type(error).__name__, error), file=sys.stderr)
        return None


def main(args):
    if len(args) != 1:
        print("usage: ring_facts.py SWIFT_DIR", file=sys.stderr)
        return 2
    swift_dir = args[0]
    if not os.path.isdir(swift_dir):
        print("ring_facts.py: %s is not a directory: is swift installed on this host?" % swift_dir,
              file=sys.stderr)
        return 1
    facts = {}
    for ring in RINGS:
        facts[ring] = {"builder": read(os.path.join(swift_dir, ring + ".builder"), builder_facts),
                       "ring": read(os.path.join(swift_dir, ring + ".ring.gz"), ring_facts)}
    print(json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
