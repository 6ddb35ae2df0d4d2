"""What each Swift ring needs next, from where it places partitions and what the leaving disks hold. Pure.

The ring changes after the install's phases (bootstrap/ring_changes.py runs them) do what
an operator does: add the new devices with their weights, set changed weights, give a
device the lab no longer wants weight 0, rebalance, copy the rings, let the replicators
move the data; and remove a device only once no ring places a partition on it (the
builder's count and the ring file's table, from ring_parts.py) and its disk holds no data
any more (the replicators move a handoff's data away and only then delete it). A rebalance
moves at most one replica of a partition, so a drain takes as many rounds as it takes.

min_part_hours (1, the guide's) makes swift-ring-builder refuse to move a partition again
within the hour. The lab goes on with pretend_min_part_hours_passed, but only after the
replicators have run over the partitions the last rebalance moved (ring_changes.py runs
them first): that is what the hour is for.

Never removed: a device whose disk the lab cannot look at (no node of the lab has it: an
instance replaced by hand), or one on a disk that is not mounted. A ring whose remaining
devices would be fewer than its replicas is refused before anything changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bootstrap import hostprograms
from bootstrap.actions import Ring, RingDevice
from bootstrap.changes import Refused
from bootstrap.decide_rings import add_command, number
from bootstrap.render import ring_builder, ring_rebalance

Key = tuple[str, int, str]  # (ip, port, device): what swift itself keeps unique in a ring
Place = tuple[str, str]  # (ip, device name): a device on a node, whatever the ring's port


# ------------------------------------------------------------------ ring_parts.py's answer
@dataclass(frozen=True)
class Placed:
    """A device of a builder or ring file, with the partition replicas it is given."""

    id: int
    region: int
    zone: int
    ip: str
    port: int
    device: str
    weight: float
    parts: int

    @property
    def key(self) -> Key:
        return (self.ip, self.port, self.device)

    @property
    def label(self) -> str:
        return f"{self.ip}/{self.device}"


@dataclass(frozen=True)
class Builder:
    part_power: int
    replicas: float
    min_part_hours: int
    seconds_left: int  # until swift-ring-builder may move a partition again
    devs_changed: bool
    devs: tuple[Placed, ...]


@dataclass(frozen=True)
class RingFile:
    part_power: int
    replica_count: float
    devs: tuple[Placed, ...]


@dataclass(frozen=True)
class Placement:
    builder: Builder | None
    ring: RingFile | None


def ring_parts_command(python: str, swift_dir: str) -> str:
    return hostprograms.call(python, "ring_parts.py", swift_dir)


def read_parts(stdout: str) -> dict[str, Placement]:
    """ring_parts.py's JSON as values; ValueError naming what is wrong."""
    try:
        return {name: Placement(_builder(rings.get("builder")), _ring_file(rings.get("ring")))
                for name, rings in json.loads(stdout).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"ring_parts.py answered something else than its JSON ({type(exc).__name__}: {exc})"[:200])


def _devs(raw: list) -> tuple[Placed, ...]:
    return tuple(Placed(int(d["id"]), int(d["region"]), int(d["zone"]), str(d["ip"]), int(d["port"]),
                        str(d["device"]), float(d["weight"]), int(d["parts"])) for d in raw)


def _builder(raw: dict | None) -> Builder | None:
    if raw is None:
        return None
    return Builder(int(raw["part_power"]), float(raw["replicas"]), int(raw["min_part_hours"]),
                   int(raw["min_part_seconds_left"]), bool(raw["devs_changed"]), _devs(raw["devs"]))


def _ring_file(raw: dict | None) -> RingFile | None:
    return None if raw is None else RingFile(int(raw["part_power"]), float(raw["replica_count"]), _devs(raw["devs"]))


@dataclass(frozen=True)
class Disk:
    """A leaving device on its node: mounted, and what Swift still keeps on it."""

    mounted: bool
    files: int  # .data .ts .meta .durable .db files under accounts/, containers/, objects*/
    pending: int  # async_pending container updates not sent yet

    @property
    def empty(self) -> bool:
        return self.mounted and not self.files and not self.pending

    def holds(self) -> str:
        if not self.mounted:
            return "not mounted, so what is on it cannot be seen"
        return f"{self.files} data files, {self.pending} pending updates"


# ------------------------------------------------------------------ what each ring needs next
@dataclass(frozen=True)
class RingMove:
    ring: str
    builder_file: str
    edits: tuple[str, ...] = ()  # swift-ring-builder commands that change the builder, in order
    rebalance: bool = False
    pretend: bool = False  # the rebalance must move partitions while min_part_hours still holds
    says: tuple[str, ...] = ()  # what changes, in the operator's words
    waiting: tuple[str, ...] = ()  # leaving devices given no partition whose disks still hold data
    orphans: tuple[tuple[str, int], ...] = ()  # (ip/device, id): weight 0, on no node of the lab: never removed
    seconds_left: int = 0

    @property
    def changes(self) -> bool:
        return bool(self.edits or self.rebalance)

    @property
    def commands(self) -> tuple[str, ...]:
        after = ((ring_builder(self.builder_file, "pretend_min_part_hours_passed"),) if self.pretend else ()) + (
            (ring_rebalance(self.builder_file),) if self.rebalance else ())
        return self.edits + after


@dataclass(frozen=True)
class Moves:
    rings: tuple[RingMove, ...]

    @property
    def changes(self) -> bool:
        return any(m.changes for m in self.rings)

    @property
    def waiting(self) -> bool:
        return any(m.waiting for m in self.rings)

    @property
    def pretend(self) -> bool:
        return any(m.pretend for m in self.rings)

    @property
    def done(self) -> bool:
        return not self.changes and not self.waiting

    def lines(self) -> list[str]:
        """What changes, one line per distinct change (rings that change alike share it), then each disk waited for."""
        alike: dict[str, list[str]] = {}
        for move in self.rings:
            if move.says:
                alike.setdefault("; ".join(move.says), []).append(move.ring)
        lines = [f"{_rings(names)}: {text}" for text, names in alike.items()]
        return lines + [f"waiting for the replicators to empty {w}"
                        for w in dict.fromkeys(w for m in self.rings for w in m.waiting)]


def _rings(names: list[str]) -> str:
    return f"{names[0]} ring" if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} rings"


def _zone(dev: RingDevice, devs: tuple[Placed, ...]) -> int:
    """A node already in the ring keeps its zone; a new one gets the plan's, unless another node has it."""
    same = [d.zone for d in devs if d.ip == dev.ip]
    if same:
        return same[0]
    taken = {d.zone for d in devs}
    return dev.zone if dev.zone not in taken else max(taken) + 1


def _check(action: Ring, placement: Placement | None) -> Builder:
    builder_file = f"{action.swift_dir}/{action.name}.builder"
    builder = placement.builder if placement else None
    if builder is None:
        raise Refused(f"{builder_file} is missing or unreadable on the controller after the install's ring step; "
                      f"run `lab install` again")
    if builder.part_power != action.part_power:
        raise Refused(f"{builder_file} has partition power {builder.part_power}, the lab's rings {action.part_power}: "
                      f"a ring's partition power cannot change without moving every object")
    if builder.replicas > len(action.devices):
        raise Refused(f"the {action.name} ring keeps {builder.replicas:g} replicas, but only {len(action.devices)} "
                      f"devices would remain: a device is removed only while every partition keeps its replicas "
                      f"elsewhere, so keep at least {builder.replicas:g} Swift devices in the config's nodes; "
                      f"nothing was changed")
    return builder


def ring_move(action: Ring, placement: Placement | None, disks: dict[Place, Disk | None]) -> RingMove:
    """What one ring needs next. disks: every leaving device the lab can look at (None: it could not)."""
    builder = _check(action, placement)
    builder_file = f"{action.swift_dir}/{action.name}.builder"
    want = {(d.ip, d.port, d.device): d for d in action.devices}
    have = {d.key: d for d in builder.devs}
    ring_file = placement.ring if placement else None
    in_ring = {d.key: d for d in (ring_file.devs if ring_file else ())}
    edits: list[str] = []
    says: list[str] = []
    moves = False  # the rebalance has partitions to move (not only removed devices to forget)
    if builder.min_part_hours != action.min_part_hours:
        edits.append(ring_builder(builder_file, "set_min_part_hours", action.min_part_hours))
        says.append(f"min_part_hours {action.min_part_hours}")
    if builder.replicas < action.replicas:
        edits.append(ring_builder(builder_file, "set_replicas", action.replicas))
        says.append(f"{action.replicas} replicas (was {builder.replicas:g})")
        moves = True
    for key, dev in want.items():
        if key not in have:
            zone = _zone(dev, builder.devs)
            edits.append(add_command(builder_file, dev, zone))
            says.append(f"add {dev.ip}/{dev.device} (zone {zone}, weight {number(dev.weight)})")
            moves = True
        elif have[key].weight != dev.weight:
            edits.append(ring_builder(builder_file, "set_weight", f"d{have[key].id}", number(dev.weight)))
            says.append(f"weight {number(dev.weight)} for {dev.ip}/{dev.device} (was {number(have[key].weight)})")
            moves = True
    waiting, orphans = [], []
    removes = False
    for dev in (d for d in builder.devs if d.key not in want):
        placed = max(dev.parts, in_ring[dev.key].parts if dev.key in in_ring else 0)
        place = (dev.ip, dev.device)
        if dev.weight > 0:
            edits.append(ring_builder(builder_file, "set_weight", f"d{dev.id}", "0"))
            says.append(f"weight 0 for {dev.label}: its partitions go to the other devices")
            moves = True
        elif placed:
            says.append(f"{dev.label} still has {placed} partitions: rebalance again")
            moves = True
        elif place not in disks:
            orphans.append((dev.label, dev.id))
        elif disks[place] is None or not disks[place].empty:
            held = disks[place].holds() if disks[place] else "its disk could not be read"
            waiting.append(f"{dev.label} ({held})")
        else:
            edits.append(ring_builder(builder_file, "remove", f"d{dev.id}"))
            says.append(f"remove {dev.label}: no partition and no data left on it")
            removes = True
    stale = ring_file is None or {(d.key, d.weight) for d in ring_file.devs} != {(d.key, d.weight)
                                                                               for d in builder.devs}
    if (builder.devs_changed or stale) and not (moves or removes):
        says.append("rebalance: " + ("devices changed since the last rebalance" if builder.devs_changed
                                     else "the ring file is not the builder's"))
        moves = True
    rebalance = moves or removes
    return RingMove(action.name, builder_file, tuple(edits), rebalance,
                    rebalance and moves and builder.seconds_left > 0, tuple(says), tuple(waiting), tuple(orphans),
                    builder.seconds_left)


def next_moves(rings: tuple[Ring, ...], placements: dict[str, Placement], disks: dict[Place, Disk | None]) -> Moves:
    """Every ring's next move; Refused (one line, nothing changed) when one cannot be made safely."""
    return Moves(tuple(ring_move(r, placements.get(r.name), disks) for r in rings))
