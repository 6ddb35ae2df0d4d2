"""Swift rings (guide chapter 5): built on the controller in /etc/swift, then copied to every storage node.

Every device of every storage node goes into each ring; zone = the storage node's place in
the inventory (object1 zone 1, object2 zone 2, as in the guide). The check reads what is on
disk (ring_facts.py reads the builder and the ring file), and the lab computes the
commands from what differs: create a missing builder, add missing devices, rebalance
(a changed IP or weight, or a device the lab no longer has: built anew).

The copy is a step of the storage nodes; like every copy it starts only once the
controller has finished the steps it has before it in the plan, the ring build among them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap import guide
from bootstrap.actions import CopySpec, Ring, RingDevice
from bootstrap.components.swift_proxy import SWIFT_DIR
from bootstrap.components.swift_storage import SERVER_PORTS
from bootstrap.context import PlanContext
from bootstrap.plan import Step
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


def ring_actions(ctx: PlanContext) -> tuple[Ring, ...]:
    devs = devices(ctx)
    return tuple(Ring(ring, SWIFT_DIR, PART_POWER, replicas(len(devs)), MIN_PART_HOURS,
                      tuple(RingDevice(d.region, d.zone, d.ip, SERVER_PORTS[ring], d.name, float(d.weight))
                            for d in devs), ctx.profile.python) for ring in RINGS)


def build_step(ctx: PlanContext) -> Step:
    """The three rings are independent: each is built with the guide's commands in order,
    the three side by side (every swift-ring-builder call spends ~1 s loading Python)."""
    return Step("swift-rings", "swift-rings", (ctx.controller.name,), ring_actions(ctx), guide=guide.SWIFT_RINGS)


def copy_step(ctx: PlanContext) -> Step:
    """The controller (the proxy) already has the rings; every storage node gets a copy."""
    storage = tuple(n.name for n in ctx.storage_nodes)
    copies = tuple(CopySpec(ctx.controller.name, ring_path(ring), mode=0o644, owner="root:swift") for ring in RINGS)
    return Step("swift-rings-copy", "finalize", storage, copies, guide=guide.SWIFT_RINGS)


def steps(ctx: PlanContext) -> list[Step]:
    return [build_step(ctx), copy_step(ctx)]
