"""When each piece of the plan may start: all hosts at once, each host's phases as soon as
the phases they need are done there, and a step that needs another host (a copy from it,
or `after`) once that host has finished every step it has before it in the plan.

No cycle is possible: a step only waits for steps earlier in the plan, and a phase never
needs a phase later in the plan.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from bootstrap.plan import Plan, Step, phases_needed
from labcore.inventory import Inventory


class Board:
    """Which steps each host has finished."""

    def __init__(self, positions: dict[str, list[int]], made_at: dict[str, int] | None = None):
        self.positions = positions  # host -> plan positions of its steps, ascending
        self.made_at = made_at or {}  # step name -> its position, for the steps others wait for
        self.done: dict[str, set[int]] = {host: set() for host in positions}
        self.stopped = False
        self._changed = threading.Condition()

    def finished(self, host: str, position: int) -> None:
        with self._changed:
            self.done[host].add(position)
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def wait_for(self, hosts: set[str], position: int,
                 after_step: str | None = None) -> dict[str, frozenset[int]] | None:
        """Block until each host finished its steps before position, or only the step
        after_step where that host has it (earlier in the plan); return the steps waited
        for per host (the version of its files to read), or None when stopping."""
        needed = {h: self._needed(h, position, after_step) for h in hosts}
        with self._changed:
            while not self.stopped and any(not wanted <= self.done.get(h, set()) for h, wanted in needed.items()):
                self._changed.wait()
            return None if self.stopped else needed

    def _needed(self, host: str, position: int, after_step: str | None) -> frozenset[int]:
        mine = self.positions.get(host, ())
        made = self.made_at.get(after_step) if after_step else None
        if made is not None and made < position and made in mine:
            return frozenset((made,))
        return frozenset(p for p in mine if p < position)


@dataclass(frozen=True)
class Unit:
    """One phase on one host: its steps, in plan order, on one connection."""

    host: str
    phase: str
    steps: tuple[tuple[int, Step], ...]  # (plan position, step)


R = TypeVar("R")


class Scheduler(Generic[R]):
    """Starts each host's phases as soon as the phases they need are done on that host.

    run(unit) returns an outcome; completed(outcome) says whether the unit finished all
    its steps (only then may the phases that need it start)."""

    def __init__(self, units: list[Unit], run: Callable[[Unit], R], board: Board,
                 completed: Callable[[R], bool]):
        self.pending = list(units)
        self.run, self.board, self.completed = run, board, completed
        self.present = {u.host: set() for u in units}
        for unit in units:
            self.present[unit.host].add(unit.phase)
        self.done: dict[str, set[str]] = {host: set() for host in self.present}

    def _ready(self, unit: Unit) -> bool:
        return phases_needed(unit.phase) & self.present[unit.host] <= self.done[unit.host]

    def __call__(self, finished: Callable[[Unit, R], None]) -> list[Unit]:
        """Run every unit that may run; finished(unit, outcome) as each ends; return those never started."""
        running: dict[Future, Unit] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(self.pending)), thread_name_prefix="phase") as pool:
            while True:
                for unit in [u for u in self.pending if not self.board.stopped and self._ready(u)]:
                    self.pending.remove(unit)
                    running[pool.submit(self.run, unit)] = unit
                if not running:
                    return self.pending
                ended, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in ended:
                    unit = running.pop(future)
                    outcome = future.result()
                    if self.completed(outcome):
                        self.done[unit.host].add(unit.phase)
                    finished(unit, outcome)


def hosts_in_plan(plan: Plan, inventory: Inventory) -> list[str]:
    wanted = {host for step in plan.steps for host in step.hosts}
    return [node.name for node in inventory.nodes if node.name in wanted] + sorted(
        wanted - {node.name for node in inventory.nodes})


def units(plan: Plan, names: list[str]) -> list[Unit]:
    ordered = plan.ordered()
    found = []
    for phase, _ in plan.phases():
        for name in names:
            own = tuple((i, s) for i, s in enumerate(ordered) if s.phase == phase and name in s.hosts)
            if own:
                found.append(Unit(name, phase, own))
    return found
