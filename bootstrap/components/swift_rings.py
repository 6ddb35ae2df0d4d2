"""Swift rings (guide chapter 5): built on the controller in /etc/swift, then copied to every storage node.

Every device of every storage node goes into each ring; zone = the storage node's place in
the inventory (object1 zone 1, object2 zone 2, as in the guide). The check reads what is on
disk (the builder and the ring file), so a ring is rebuilt exactly when it no longer
describes the inventory: a new device, another IP, a lost file.

The copy is a step of the storage nodes; like every copy it starts only once the
controller has finished the steps it has before it in the plan, the ring build among them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bootstrap.components.swift_proxy import SWIFT_DIR
from bootstrap.components.swift_storage import SERVER_PORTS
from bootstrap.context import PlanContext, in_parallel
from bootstrap.plan import CopySpec, Step
from labcore.errors import LabError

PART_POWER = 10
MIN_PART_HOURS = 1
MAX_REPLICAS = 3
WEIGHT = 100
REGION = 1
RINGS = tuple(SERVER_PORTS)  # account, container, object


@dataclass(frozen=True)
class Device:
    region: int
    zone: int
    ip: str
    name: str  # the Swift device name: /srv/node/<name> on the node
    weight: int = WEIGHT


def devices(ctx: PlanContext) -> list[Device]:
    """Every volume of every storage node, zone = 1-based position of its node among the storage nodes."""
    found = [Device(REGION, zone, node.private_ip, volume.name)
             for zone, node in enumerate(ctx.storage_nodes, start=1) for volume in node.volumes]
    if not found:
        raise LabError("Swift needs at least one device: give the object nodes volumes in the lab config "
                       "(e.g. `volumes: {sdb: 10}`), then run `lab up` again")
    return found


def replicas(device_count: int) -> int:
    """3 as in the guide, but never more replicas than devices (rebalance would warn and degrade)."""
    return min(MAX_REPLICAS, device_count)


def builder_path(ring: str) -> str:
    return f"{SWIFT_DIR}/{ring}.builder"


def ring_path(ring: str) -> str:
    return f"{SWIFT_DIR}/{ring}.ring.gz"


def ring_commands(ring: str, devs: list[Device]) -> list[str]:
    builder = builder_path(ring)
    port = SERVER_PORTS[ring]
    commands = [f"rm -f {builder} {ring_path(ring)}",
                f"swift-ring-builder {builder} create {PART_POWER} {replicas(len(devs))} {MIN_PART_HOURS}"]
    commands += [f"swift-ring-builder {builder} add --region {d.region} --zone {d.zone} --ip {d.ip} "
                 f"--port {port} --device {d.name} --weight {d.weight}" for d in devs]
    # Exit 1 is swift-ring-builder's "warning" (e.g. balance); the ring is written all the same.
    commands.append(f"swift-ring-builder {builder} rebalance || [ $? -eq 1 ]")
    return commands


# Reads each builder (pickled dict) and ring file (gzip: R1NG, version, JSON header) and
# compares them with the wanted rings; python 2 or 3, no swift import, so it is cheap.
_CHECK_SCRIPT = """import gzip, json, pickle, struct, sys
W = {wanted}
def devs(found, port):
    return sorted([int(d["region"]), int(d["zone"]), str(d["ip"]), int(d["port"]), str(d["device"]),
                   float(d["weight"])] for d in found if d)
ok = True
for ring, port in sorted(W["ports"].items()):
    want = sorted(d[:3] + [port] + d[3:] for d in W["devs"])
    b = pickle.load(open("{swift_dir}/%s.builder" % ring, "rb"))
    ok = ok and not b["devs_changed"] and b["part_power"] == W["part_power"]
    ok = ok and float(b["replicas"]) == W["replicas"] and b["min_part_hours"] == W["min_part_hours"]
    ok = ok and devs(b["devs"], port) == want
    f = gzip.open("{swift_dir}/%s.ring.gz" % ring, "rb")
    magic, version = struct.unpack("!4sH", f.read(6))
    size = struct.unpack("!I", f.read(4))[0]
    r = json.loads(f.read(size).decode("utf-8"))
    ok = ok and magic == b"R1NG" and r["part_shift"] == 32 - W["part_power"]
    ok = ok and r["replica_count"] == W["replicas"] and devs(r["devs"], port) == want
sys.exit(0 if ok else 1)
"""


def rings_check(python: str, devs: list[Device]) -> str:
    wanted = {
        "part_power": PART_POWER, "replicas": replicas(len(devs)), "min_part_hours": MIN_PART_HOURS,
        "ports": {ring: SERVER_PORTS[ring] for ring in RINGS},
        "devs": [[d.region, d.zone, d.ip, d.name, float(d.weight)] for d in devs],
    }
    script = _CHECK_SCRIPT.format(wanted=json.dumps(wanted, sort_keys=True), swift_dir=SWIFT_DIR)
    if "'" in script:
        raise ValueError("the check script is passed in single quotes")
    return f"{python} -c '{script}'"


def build_step(ctx: PlanContext) -> Step:
    """The three rings are independent: each is built with the guide's commands in order,
    the three side by side (every swift-ring-builder call spends ~1 s loading Python)."""
    devs = devices(ctx)
    return Step(
        name="swift-rings",
        phase="swift-rings",
        hosts=(ctx.controller.name,),
        commands=(in_parallel(*(" && ".join(f"{{ {c}; }}" for c in ring_commands(ring, devs)) for ring in RINGS)),),
        check=rings_check(ctx.profile.python, devs),
    )


def copy_step(ctx: PlanContext) -> Step:
    """The controller (the proxy) already has the rings; every storage node gets a copy."""
    storage = tuple(n.name for n in ctx.storage_nodes)
    copies = tuple(CopySpec(ctx.controller.name, ring_path(ring), mode=0o644, owner="root:swift") for ring in RINGS)
    return Step(name="swift-rings-copy", phase="finalize", hosts=storage, copies=copies)


def steps(ctx: PlanContext) -> list[Step]:
    return [build_step(ctx), copy_step(ctx)]
