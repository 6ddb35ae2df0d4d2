"""After the install's phases: change the running rings the way an operator does, losing no object.

`lab install` runs the plan (a new node is installed, configured and serving with the old
rings), then this. In rounds, until every ring is what the config says:
  1. read where the rings place partitions (ring_parts.py on the controller) and, for a
     leaving device the rings no longer place anything on, what its disk still holds;
  2. decide each ring's next move (bootstrap/ring_moves.py): add devices, set weights,
     weight 0 for a device the config no longer has, remove a drained one, rebalance;
  3. run it (bootstrap/components/swift_drain.py): the ring commands on the controller,
     the ring files copied to every storage node (leaving ones too: they still serve),
     the replicators once on every storage node.
A rebalance moves at most one replica of a partition, so the other replicas stay where the
proxy finds them: objects stay readable at every step. The guide's min_part_hours (1)
would make the next rebalance wait an hour; the lab runs the replicators over what the
last one moved first, then goes on with pretend_min_part_hours_passed, and says so.
Then the drained are retired (a leaving node's services stopped, a leaving volume
unmounted and out of fstab), the plan's finalize steps run again (rings copied, services
restarted on the new rings, the cloud serving), and the caller marks what was drained
lab:drained, so that the next `lab up` removes it. A second `lab install` leaves it
nothing to do, so it does not even run (`needed`): not one read more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bootstrap.components import swift_drain, swift_rings
from bootstrap.changes import Refused
from bootstrap.context import PlanContext
from bootstrap.decide_rings import PENDING
from bootstrap.logs import HostLog
from bootstrap.plan import Plan
from bootstrap.planner import build_plan
from bootstrap.results import RunReport
from bootstrap.ring_moves import Disk, Moves, Placement, next_moves, read_parts, ring_parts_command
from bootstrap.runner import run_plan
from labcore.errors import RemoteError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.remote import Remote, RemoteFactory
from labcore.secrets import Secrets

MAX_ROUNDS = 8
Progress = Callable[[str], None]
Runner = Callable[[Plan, str, bool], RunReport]  # (plan, title, check only) -> its report


@dataclass
class RingChanges:
    changed: bool = False  # a ring changed (and the finalize steps ran again)
    rounds: int = 0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    drained_nodes: list[NodeRecord] = field(default_factory=list)
    drained_volumes: list[tuple[NodeRecord, VolumeRecord]] = field(default_factory=list)
    reports: list[RunReport] = field(default_factory=list)

    def drained_ids(self) -> list[str]:
        """What to mark lab:drained: each drained instance and its Swift volumes, each drained volume."""
        return ([n.instance_id for n in self.drained_nodes] + [v.volume_id for n in self.drained_nodes
                                                                for v in n.volumes]
                + [v.volume_id for _, v in self.drained_volumes])


class _Hosts:
    """One connection per host for the reads between rounds, each command in the host's log."""

    def __init__(self, factory: RemoteFactory, secrets: Secrets, log_dir: Path):
        self.factory, self.secrets, self.log_dir = factory, secrets, log_dir
        self.open: dict[str, tuple[Remote, HostLog]] = {}

    def run(self, node: NodeRecord, command: str):
        if node.name not in self.open:
            self.open[node.name] = (self.factory(node), HostLog(self.log_dir / f"{node.name}.log", self.secrets,
                                                                "lab install: the ring changes' reads"))
        remote, log = self.open[node.name]
        started = time.monotonic()
        result = remote.run(command, sudo=True)
        log.command(command, result, time.monotonic() - started, "ring-changes")
        return result

    def close(self) -> None:
        for remote, log in self.open.values():
            remote.close()
            log.close()


def _placements(ctx: PlanContext, hosts: _Hosts) -> dict[str, Placement]:
    result = hosts.run(ctx.controller, ring_parts_command(ctx.profile.python, swift_rings.SWIFT_DIR))
    if not result.ok:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RemoteError(f"{ctx.controller.name}: reading where the rings place partitions failed "
                          f"(exit {result.exited}: {last[0][:160]}); run `lab install` again")
    try:
        return read_parts(result.stdout)
    except ValueError as exc:
        raise RemoteError(f"{ctx.controller.name}: {exc}; run `lab install` again") from None


def _disks(ctx: PlanContext, hosts: _Hosts, placements: dict[str, Placement]) -> dict[tuple[str, str], Disk | None]:
    """What the leaving disks hold; read only on the nodes where a ring gives a leaving device weight 0."""
    drained = {(d.ip, d.device) for p in placements.values() if p.builder for d in p.builder.devs if not d.weight}
    disks: dict[tuple[str, str], Disk | None] = {}
    for node, names in swift_drain.leaving_by_node(ctx).values():
        disks.update({(node.private_ip, n): None for n in names})
        if any((node.private_ip, n) in drained for n in names):
            result = hosts.run(node, swift_drain.disks_command(names))
            found = swift_drain.read_disks(result.stdout, names) if result.ok else {}
            disks.update({(node.private_ip, n): d for n, d in found.items()})
    return disks


def _pretend_line(moves: Moves) -> str:
    waits = [m for m in moves.rings if m.pretend]
    minutes = max(m.seconds_left for m in waits) // 60 + 1
    return (f"ring changes: min_part_hours {swift_rings.MIN_PART_HOURS} holds for up to {minutes} more min since the "
            f"last rebalance; the replicators have run over the partitions it moved, so the lab goes on with "
            f"pretend_min_part_hours_passed")


def needed(report: RunReport, inventory: Inventory) -> bool:
    """Whether the install's run left something to the ring changes: a ring step that named changes
    it awaits (bootstrap/decide_rings.py), or a node or volume leaving the lab (to drain, retire or
    mark). A lab as the config says costs no read at all."""
    waiting = any(r.step == "swift-rings" and any(c.says.endswith(PENDING) for c in r.changes)
                  for r in report.results)
    return waiting or any(n.leaving or any(v.leaving for v in n.volumes) for n in inventory.nodes)


def change_rings(inventory: Inventory, secrets: Secrets, factory: RemoteFactory, *, log_dir: Path,
                 progress: Progress, runner: Runner | None = None) -> RingChanges:
    """Bring every ring to the config's devices, drain and retire what leaves; RemoteError on a
    refusal or a failed round (one message; nothing is left half-done that the next run cannot finish).
    factory: the reads between rounds; runner: how a round's plan runs (default: the plan's runner
    over the factory's connections)."""
    ctx = PlanContext.for_inventory(inventory, secrets)
    result = RingChanges()
    if not ctx.storage_nodes:
        return result
    started = time.monotonic()
    rings = swift_rings.ring_actions(ctx)
    hosts = _Hosts(factory, secrets, log_dir)

    def moves() -> tuple[Moves, dict[str, Placement]]:
        placements = _placements(ctx, hosts)
        try:
            return next_moves(rings, placements, _disks(ctx, hosts, placements)), placements
        except Refused as exc:
            raise RemoteError(f"{ctx.controller.name}: {exc}") from None

    def plan_runner(plan: Plan, title: str, check_only: bool) -> RunReport:
        return run_plan(plan, inventory, factory, secrets, log_dir=log_dir, check=check_only, title=title,
                        progress=lambda line: None if " phases: " in line else progress(line))

    def run(plan: Plan, title: str, check_only: bool = False) -> RunReport:
        report = (runner or plan_runner)(plan, title, check_only)
        result.reports.append(report)
        report.raise_for_failure()
        return report

    try:
        found, placements = moves()
        replicated = False  # have the replicators run since the last rebalance?
        pretended = False
        while not found.done:
            if result.rounds == MAX_ROUNDS:
                raise RemoteError(f"the rings are not done after {MAX_ROUNDS} rounds: {'; '.join(found.lines())}"[:400]
                                  + "; run `lab install` again: the replicators go on moving data")
            result.rounds += 1
            if found.pretend and not replicated:
                progress(f"ring changes, round {result.rounds}: the replicators first, over what the last "
                         f"rebalance moved")
                run(swift_drain.round_plan(ctx, None), "lab install: ring changes (replicators)")
            else:
                if found.pretend and not pretended:
                    progress(_pretend_line(found))
                    pretended = True
                for line in found.lines():
                    progress(f"ring changes, round {result.rounds}: {line}")
                run(swift_drain.round_plan(ctx, found), f"lab install: ring changes, round {result.rounds}")
                result.changed = result.changed or found.changes
            replicated = True
            found, placements = moves()
        for ring in found.rings:
            for orphan in ring.orphans:
                label, dev_id = orphan
                result.lines.append(f"warning: the {ring.ring} ring keeps {label} at weight 0 with no partition: no "
                                    f"node of the lab has it, so the lab cannot see that its disk is empty; once you "
                                    f"know it is: swift-ring-builder {ring.builder_file} remove d{dev_id}, then "
                                    f"rebalance")
        _retire(ctx, placements, result, run, progress)
        if result.changed:
            finalize = Plan(tuple(s for s in build_plan(inventory, secrets).steps if s.phase == "finalize"))
            run(finalize, "lab install: finalize again on the new rings")
    finally:
        hosts.close()
        result.seconds = time.monotonic() - started
    return result


def _in_rings(placements: dict[str, Placement]) -> set[tuple[str, str]]:
    return {(d.ip, d.device) for p in placements.values() if p.builder for d in p.builder.devs}


def _retire(ctx: PlanContext, placements: dict[str, Placement], result: RingChanges, run, progress) -> None:
    plan, nodes, volumes = swift_drain.retire_plan(ctx, _in_rings(placements))
    if not plan.steps:
        return
    names = [f"{n.name} (services stopped)" for n in nodes] + [f"{n.name}/{v.name} (unmounted)" for n, v in volumes]
    progress(f"drained: {', '.join(names)}")
    run(plan, "lab install: retire what is drained")
    result.drained_nodes, result.drained_volumes = nodes, volumes
