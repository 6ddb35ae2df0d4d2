"""A Swift made of Python for the ring changes' tests: three builders on the controller that move
partitions the way swift-ring-builder does (min_part_hours, at most a cap of partitions per
rebalance, removal), and disks on the storage nodes that empty only when the replicators run over
partitions the rings no longer place there. It fails the test the moment a device is removed while
it still has partitions or data, or a rebalance skips min_part_hours before the replicators ran on
every storage node."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from plan_fixtures import PORTS

from labcore.remote import RunResult

OBJECT3 = "10.0.0.53"  # the node a grow adds and a shrink drains
IPS = {"object1": "10.0.0.51", "object2": "10.0.0.52", "object3": OBJECT3}


@dataclass
class Swift:
    """The lab's Swift: builders (device dicts as ring_parts.py prints them) and data per disk."""

    devices: list[tuple[str, str, int]]  # (ip, device, zone) in the builders
    seconds_left: int = 2400  # the last rebalance was 20 minutes ago
    cap: int = 10_000  # partitions of a drained device one rebalance moves (two replicas of one: fewer)
    passes_to_empty: int = 1  # replicator passes a drained disk needs (an account db took two, for real)
    files: dict[tuple[str, str], int] = field(default_factory=dict)  # data files on a leaving disk
    mounted: dict[tuple[str, str], bool] = field(default_factory=dict)
    events: list[tuple] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    storage_hosts: set[str] = field(default_factory=set)

    def __post_init__(self):
        self.builders = {}
        for ring, port in PORTS.items():
            devs = [{"id": i, "region": 1, "zone": z, "ip": ip, "port": port, "device": d, "weight": 100.0,
                     "parts": 3 * 1024 // len(self.devices)} for i, (ip, d, z) in enumerate(self.devices)]
            self.builders[ring] = {"devs": devs, "replicas": 3.0, "devs_changed": False, "pretended": False,
                                   "removing": [], "seconds_left": self.seconds_left, "version": 1,
                                   "ring_devs": json.loads(json.dumps(devs))}
        self.passes = {}
        self.replicated_since_rebalance: dict[str, set[str]] = {ring: set() for ring in PORTS}

    # ------------------------------------------------------------------ what the hosts read
    def ring_parts(self) -> str:
        found = {}
        for ring, b in self.builders.items():
            builder = {"part_power": 10, "replicas": b["replicas"], "min_part_hours": 1,
                       "min_part_seconds_left": 0 if b["pretended"] else b["seconds_left"],
                       "devs_changed": b["devs_changed"], "devs": b["devs"]}
            found[ring] = {"builder": builder, "ring": {"part_power": 10, "replica_count": b["replicas"],
                                                        "devs": b["ring_devs"]}}
        return json.dumps(found)

    def disks(self, ip: str, command: str) -> str:
        names = re.search(r"for d in ([\w ]+); do", command).group(1).split()
        return "".join(f"{n} {int(self.mounted.get((ip, n), True))} {self.files.get((ip, n), 0)} 0\n" for n in names)

    # ------------------------------------------------------------------ what the controller is sent
    def ring_commands(self, command: str) -> RunResult:
        for ring, verb, args in re.findall(r"swift-ring-builder /etc/swift/(\w+)\.builder (\w+)([^;|]*)", command):
            getattr(self, f"_{verb}")(ring, args.split())
        return RunResult(0)

    def _dev(self, ring: str, word: str) -> dict:
        return next(d for d in self.builders[ring]["devs"] if d["id"] == int(word[1:]))

    def _add(self, ring, args):
        opts = dict(zip(args[::2], args[1::2]))
        b = self.builders[ring]
        b["devs"].append({"id": max(d["id"] for d in b["devs"]) + 1, "region": 1, "zone": int(opts["--zone"]),
                          "ip": opts["--ip"], "port": int(opts["--port"]), "device": opts["--device"],
                          "weight": float(opts["--weight"]), "parts": 0})
        b["devs_changed"] = True

    def _set_weight(self, ring, args):
        self._dev(ring, args[0])["weight"] = float(args[1])
        self.builders[ring]["devs_changed"] = True

    def _remove(self, ring, args):
        dev = self._dev(ring, args[0])
        place = (dev["ip"], dev["device"])
        if dev["parts"] or self.files.get(place, 0):
            self.violations.append(f"{ring}: removed {place} with {dev['parts']} partitions, "
                                   f"{self.files.get(place, 0)} files")
        self.builders[ring]["removing"].append(dev["id"])
        self.builders[ring]["devs_changed"] = True

    def _pretend_min_part_hours_passed(self, ring, args):
        if self.replicated_since_rebalance[ring] != self.storage_hosts:
            self.violations.append(f"{ring}: pretend before the replicators ran on "
                                   f"{sorted(self.storage_hosts - self.replicated_since_rebalance[ring])}")
        self.builders[ring]["pretended"] = True

    def _set_replicas(self, ring, args):
        self.builders[ring]["replicas"] = float(args[0])

    def _rebalance(self, ring, args):
        b = self.builders[ring]
        may_move = b["pretended"] or b["seconds_left"] == 0
        moved = 0
        b["devs"] = [d for d in b["devs"] if d["id"] not in b["removing"]]
        if may_move:
            for dev in b["devs"]:
                if dev["weight"] == 0 and dev["parts"]:
                    step = min(dev["parts"], self.cap)
                    dev["parts"] -= step
                    moved += step
                elif dev["weight"] and not dev["parts"]:
                    dev["parts"] = 512
                    moved += 512
        if not moved and not b["removing"]:
            return  # "No partitions could be reassigned": nothing saved
        self.events.append(("rebalance", ring, b["pretended"]))
        b.update(devs_changed=False, pretended=False, removing=[], seconds_left=3600 if moved else b["seconds_left"],
                 version=b["version"] + 1, ring_devs=json.loads(json.dumps(b["devs"])))
        self.replicated_since_rebalance[ring] = set()
        self.controller.files[f"/etc/swift/{ring}.ring.gz"] = (f"{ring} v{b['version']}".encode(), 0o644,
                                                               "root:swift")

    # ------------------------------------------------------------------ what a storage node is sent
    def replicate(self, host: str) -> RunResult:
        self.events.append(("replicate", host))
        for hosts in self.replicated_since_rebalance.values():
            hosts.add(host)
        ip = IPS[host]
        for (where, name), count in list(self.files.items()):
            placed = any(d["parts"] for b in self.builders.values() for d in b["devs"]
                         if (d["ip"], d["device"]) == (where, name))
            if where == ip and count and not placed and self.mounted.get((where, name), True):
                self.passes[(where, name)] = self.passes.get((where, name), 0) + 1
                if self.passes[(where, name)] >= self.passes_to_empty:
                    self.files[(where, name)] = 0
        return RunResult(0, "object-replicator: 3 successes, 0 failures\n")
