"""The steps of one round of ring changes, and what the lab asks the hosts between rounds. Pure.

A round (bootstrap/ring_changes.py runs it through the plan's runner) is what an operator
does after changing a ring: on the controller the swift-ring-builder commands of the three
rings side by side (bootstrap/ring_moves.py says which); the ring files copied to every
storage node, the leaving ones too (they still serve until drained); then the replicators
run once on every storage node (account, container, object: `swift-*-replicator CONF once`),
and on a leaving node also the object updater, so that no container update waits on a
disk about to go. A round without ring commands (the first, before a rebalance that must
go on with pretend_min_part_hours_passed, or one waiting for a disk to empty) only copies
and replicates.
"""

from __future__ import annotations

import shlex

from bootstrap import guide
from bootstrap.actions import Command
from bootstrap.components.swift_rings import leaving_devices, ring_copies, serving_nodes
from bootstrap.components.swift_storage import (
    DEVICES_DIR,
    SERVER_PORTS,
    retire_node_step,
    retire_volume_step,
    server_conf_path,
)
from bootstrap.context import PlanContext
from bootstrap.plan import Plan, Step
from bootstrap.render import in_parallel
from bootstrap.ring_moves import Disk, Moves
from labcore.inventory import NodeRecord, VolumeRecord

# What Swift keeps of a partition on a disk: objects (.data, .ts, .meta, .durable) and databases (.db).
DATA_FILES = ("*.data", "*.ts", "*.meta", "*.durable", "*.db")


def storage_hosts(ctx: PlanContext) -> tuple[str, ...]:
    """Every storage node, serving ones first: the ring files go to all of them."""
    return tuple(n.name for n in serving_nodes(ctx)) + tuple(n.name for n in ctx.storage_nodes if n.leaving)


def ring_step(ctx: PlanContext, moves: Moves) -> Step:
    chains = [" && ".join(f"{{ {c}; }}" for c in m.commands) for m in moves.rings if m.commands]
    what = "; ".join(moves.lines()) or "rebalance the rings"
    return Step("swift-ring-changes", "swift-rings", (ctx.controller.name,),
                (Command((in_parallel(*chains),), what=what[:200]),), guide=guide.SWIFT_RINGS)


def copy_step(ctx: PlanContext) -> Step:
    return Step("swift-rings-copy", "finalize", storage_hosts(ctx), ring_copies(ctx), guide=guide.SWIFT_RINGS)


def replicate_command(server: str, daemon: str = "replicator") -> str:
    return f"swift-{server}-{daemon} {shlex.quote(server_conf_path(server))} once -v"


def replicate_steps(ctx: PlanContext) -> list[Step]:
    """The replicators once on every storage node; a leaving node also sends its pending container updates."""
    every = tuple(replicate_command(server) for server in SERVER_PORTS)
    steps = [Step("swift-replicate", "finalize", tuple(n.name for n in serving_nodes(ctx)),
                  (Command((_all(every),), what="run the account, container and object replicators once"),))]
    leaving = tuple(n.name for n in ctx.storage_nodes if n.leaving)
    if leaving:
        more = every + (replicate_command("object", "updater"),)
        steps.append(Step("swift-replicate", "finalize", leaving, (Command(
            (_all(more),), what="run the replicators and the object updater once: move the data off"),)))
    return steps


def _all(commands: tuple[str, ...]) -> str:
    """Each command in turn, whatever the others did; true only when every one succeeded."""
    return "s=0; " + " ".join(f"{c} || s=1;" for c in commands) + " [ $s = 0 ]"


def round_plan(ctx: PlanContext, moves: Moves | None) -> Plan:
    """The ring commands (none: copy and replicate only), the copies, the replicators."""
    head = [ring_step(ctx, moves)] if moves is not None and moves.changes else []
    return Plan(tuple(head + [copy_step(ctx)] + replicate_steps(ctx)))


# ------------------------------------------------------------------ the leaving disks
def disks_command(names: list[str]) -> str:
    """One line per device: `NAME MOUNTED DATA_FILES PENDING_UPDATES` (MOUNTED 1 or 0)."""
    pattern = " -o ".join(f"-name {shlex.quote(p)}" for p in DATA_FILES)
    return (f"for d in {' '.join(shlex.quote(n) for n in names)}; do p={DEVICES_DIR}/$d; "
            f"if mountpoint -q \"$p\"; then m=1; else m=0; fi; "
            f"f=$(find \"$p/accounts\" \"$p/containers\" \"$p\"/objects* -type f \\( {pattern} \\) 2>/dev/null "
            f"| wc -l); "
            f"a=$(find \"$p\"/async_pending* -type f 2>/dev/null | wc -l); echo \"$d $m $f $a\"; done")


def read_disks(stdout: str, names: list[str]) -> dict[str, Disk]:
    """disks_command's answer; a device it does not name is missing from the result (not known)."""
    found = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 4 and words[0] in names and all(w.isdigit() for w in words[1:]):
            found[words[0]] = Disk(words[1] == "1", int(words[2]), int(words[3]))
    return found


def leaving_by_node(ctx: PlanContext) -> dict[str, tuple[NodeRecord, list[str]]]:
    """node name -> (node, its device names to drain)."""
    found: dict[str, tuple[NodeRecord, list[str]]] = {}
    for node, volume in leaving_devices(ctx):
        found.setdefault(node.name, (node, []))[1].append(volume.name)
    return found


# ------------------------------------------------------------------ after the drain
def retire_plan(ctx: PlanContext, in_rings: set[tuple[str, str]]
                ) -> tuple[Plan, list[NodeRecord], list[tuple[NodeRecord, VolumeRecord]]]:
    """Stop what is drained: a leaving node none of whose devices is in a ring any more, a leaving
    volume out of every ring. in_rings: (ip, device) of every device the builders still hold.
    The plan, and the nodes and (node, volume) it retires."""
    nodes = [n for n in ctx.storage_nodes if n.leaving and not any((n.private_ip, v.name) in in_rings
                                                                    for v in n.volumes)]
    volumes = [(n, v) for n in ctx.storage_nodes if not n.leaving for v in n.volumes
               if v.leaving and (n.private_ip, v.name) not in in_rings]
    steps = [retire_node_step(ctx, n) for n in nodes] + [retire_volume_step(n, v) for n, v in volumes]
    return Plan(tuple(steps)), nodes, volumes
