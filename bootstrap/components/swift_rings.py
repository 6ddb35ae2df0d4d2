"""Swift rings (guide chapter 5): built on the controller in /etc/swift, then copied to every storage node.

Every device of every storage node the config has goes into each ring; zone = the node's
place among those nodes (object1 zone 1, object2 zone 2, as in the guide). The plan makes
a ring that does not exist yet (bootstrap/decide_rings.py); an existing ring is changed
after the install's phases (bootstrap/ring_changes.py): new devices added, weights set, a
node or volume taken out of the config (`leaving` in the inventory) drained and removed,
one safe step at a time. The Ring action holds the devices the lab wants; a device of the
builder that is not among them is one to drain.

The copy is a step of the serving storage nodes; like every copy it starts only once the
controller has finished the steps it has before it in the plan, the ring build among them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap import guide, hostprograms
from bootstrap.actions import CopySpec, FileSpec, Ring, RingDevice
from bootstrap.components.swift_proxy import SWIFT_DIR
from bootstrap.components.swift_storage import SERVER_PORTS
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from labcore.errors import LabError
from labcore.inventory import NodeRecord, VolumeRecord

PART_POWER = 10
MIN_PART_HOURS = 1
MAX_REPLICAS = 3
WEIGHT = 100
REGION = 1
RINGS = tuple(SERVER_PORTS)  # account, container, object
RING_PARTS = "ring_parts.py"  # the host program the ring changes and `lab verify` read the placement with


@dataclass(frozen=True)
class Device:
    region: int
    zone: int
    ip: str
    name: str  # the Swift device name: /srv/node/<name> on the node
    weight: int = WEIGHT


def serving_nodes(ctx: PlanContext) -> list[NodeRecord]:
    """The storage nodes the config has (a leaving one only serves until it is drained)."""
    return [n for n in ctx.storage_nodes if not n.leaving]


def leaving_nodes(ctx: PlanContext) -> list[NodeRecord]:
    return [n for n in ctx.storage_nodes if n.leaving]


def leaving_devices(ctx: PlanContext) -> list[tuple[NodeRecord, VolumeRecord]]:
    """Every Swift device to drain: each volume of a leaving node, and each leaving volume of the others."""
    return [(n, v) for n in ctx.storage_nodes for v in n.volumes if n.leaving or v.leaving]


def devices(ctx: PlanContext) -> list[Device]:
    """Every volume the config has on its storage nodes, zone = 1-based position of its node among them."""
    found = [Device(REGION, zone, node.private_ip, volume.name)
             for zone, node in enumerate(serving_nodes(ctx), start=1) for volume in node.volumes if not volume.leaving]
    if not found:
        raise LabError("Swift needs at least one device: give the object nodes volumes in the lab config "
                       "(e.g. `volumes: {sdb: 10}`), then run `lab up` again")
    leaving = leaving_devices(ctx)
    if leaving and len(found) < replicas(len(found) + len(leaving)):
        raise LabError(f"the config leaves {len(found)} Swift devices, but the rings keep "
                       f"{replicas(len(found) + len(leaving))} replicas: a device is removed only while every "
                       f"partition keeps its replicas elsewhere; keep at least {replicas(len(found) + len(leaving))} "
                       f"volumes on the object nodes in the config's `nodes:` (now leaving: "
                       f"{', '.join(f'{n.name}/{v.name}' for n, v in leaving)}), then run `lab up` and `lab install`")
    return found


def replicas(device_count: int) -> int:
    """3 as in the guide, but never more replicas than devices (rebalance would warn and degrade)."""
    return min(MAX_REPLICAS, device_count)


def builder_path(ring: str) -> str:
    return f"{SWIFT_DIR}/{ring}.builder"


def ring_path(ring: str) -> str:
    return f"{SWIFT_DIR}/{ring}.ring.gz"


def ring_actions(ctx: PlanContext) -> tuple[Ring, ...]:
    devs = devices(ctx)
    return tuple(Ring(ring, SWIFT_DIR, PART_POWER, replicas(len(devs)), MIN_PART_HOURS,
                      tuple(RingDevice(d.region, d.zone, d.ip, SERVER_PORTS[ring], d.name, float(d.weight))
                            for d in devs), ctx.profile.python) for ring in RINGS)


def ring_parts_file() -> FileSpec:
    """ring_parts.py on the controller (until hostprograms.PROGRAMS ships it with the others)."""
    return FileSpec(hostprograms.path(RING_PARTS), hostprograms.source(RING_PARTS), mode=0o755)


BUILD_STEP = "swift-rings"


def build_step(ctx: PlanContext) -> Step:
    """The three rings are independent: each is built with the guide's commands in order,
    the three side by side (every swift-ring-builder call spends ~1 s loading Python)."""
    return Step(BUILD_STEP, "swift-rings", (ctx.controller.name,), (ring_parts_file(), *ring_actions(ctx)),
                guide=guide.SWIFT_RINGS)


def ring_copies(ctx: PlanContext) -> tuple[CopySpec, ...]:
    return tuple(CopySpec(ctx.controller.name, ring_path(ring), mode=0o644, owner="root:swift") for ring in RINGS)


def copy_step(ctx: PlanContext) -> Step:
    """The controller (the proxy) already has the rings; every serving storage node gets a
    copy as soon as they are built there (not once Keystone is up), and starts its servers."""
    return Step("swift-rings-copy", "finalize", tuple(n.name for n in serving_nodes(ctx)), ring_copies(ctx),
                guide=guide.SWIFT_RINGS, after_step=BUILD_STEP)


def steps(ctx: PlanContext) -> list[Step]:
    return [build_step(ctx), copy_step(ctx)]
