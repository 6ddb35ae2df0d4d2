"""Run a Plan on the lab's hosts (or, with check, only find out what it would change).

All hosts at once, each host's phases as soon as they may start (bootstrap/schedule.py),
each phase on its own session asking the facts and sending only what its steps need
(bootstrap/execute.py). Hosts do not wait for each other at phase ends: a storage node
sets up its servers while the controller is still installing Keystone; the only waits
between hosts are the ones a step asks for (a copy from the controller, the cloud-ready
check after every storage node started its services).

A failing step stops the run: phases already running finish the step they are on,
nothing further starts anywhere, and the report names host, step, exit code and the end
of stderr. Running again starts from the top; the facts skip what is done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from bootstrap.execute import HostEnv, UnitOutcome, run_unit
from bootstrap.logs import HostLog
from bootstrap.plan import Plan
from bootstrap.results import (
    STATUSES,
    Failure,
    RunReport,
    StepFailed,
    StepResult,
    phase_line,
)
from bootstrap.schedule import Board, Scheduler, Unit, hosts_in_plan, units
from bootstrap.session import RemoteSession, Session
from bootstrap.transfer import Connections, Sources
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import RemoteFactory
from labcore.secrets import Secrets

Progress = Callable[[str], None]
Reboot = Callable[[NodeRecord], None]  # reboots a node (RebootInstances) and returns once it is back
OpenSession = Callable[[NodeRecord, HostLog], Session]

__all__ = ["STATUSES", "Failure", "RunReport", "StepFailed", "StepResult", "run_plan", "execute"]


def _console_progress() -> Progress:
    from rich.console import Console

    console = Console(highlight=False)
    return lambda line: console.print(line, markup=False)


def remote_sessions(factory: RemoteFactory) -> OpenSession:
    def open_session(node: NodeRecord, log: HostLog) -> Session:
        return RemoteSession(factory(node), log, connect=lambda: factory(node))
    return open_session


def run_plan(plan: Plan, inventory: Inventory, factory: RemoteFactory, secrets: Secrets, *, log_dir: Path,
             progress: Progress | None = None, check: bool = False, reboot: Reboot | None = None,
             title: str = "lab install") -> RunReport:
    """Run (or with check, only decide) every host's phases, hosts in parallel; report.ok is
    False on a failure. reboot: how to reboot a host a package asks to reboot (None: say so
    and go on)."""
    return execute(plan, inventory, remote_sessions(factory), secrets, log_dir=log_dir, progress=progress,
                   check=check, reboot=reboot, title=title)


def execute(plan: Plan, inventory: Inventory, open_session: OpenSession, secrets: Secrets, *, log_dir: Path,
            progress: Progress | None = None, check: bool = False, reboot: Reboot | None = None,
            title: str = "lab install") -> RunReport:
    progress = progress or _console_progress()
    say = lambda line: progress(secrets.mask(line))  # noqa: E731
    names = hosts_in_plan(plan, inventory)
    planned = {name: len(plan.for_host(name)) for name in names}
    all_units = units(plan, names)
    board = Board({name: [p for u in all_units if u.host == name for p, _ in u.steps] for name in names},
                  plan.made_at())
    numbers = {phase: number for number, (phase, _) in enumerate(plan.phases(), start=1)}
    started = time.monotonic()
    logs: dict[str, HostLog] = {}
    involved = {*names, *(h for s in plan.steps for h in s.waits_for)}
    connections = {name: Connections(lambda name=name: open_session(inventory.node(name), logs[name]))
                   for name in involved}
    sources = Sources(connections)
    results: list[StepResult] = []
    failures: list[Failure] = []

    def env(name: str) -> HostEnv:
        def reboot_host() -> None:
            reboot(inventory.node(name))
            connections[name].reopen_idle()
        return HostEnv(name, check, secrets, board, sources, logs[name], say, reboot_host if reboot else None)

    def run(unit: Unit) -> UnitOutcome:
        with connections[unit.host].borrow() as session:
            session.tag = unit.phase  # the host's log lines say which phase sent what
            return run_unit(unit, session, env(unit.host))

    def finished(unit: Unit, outcome: UnitOutcome) -> None:
        results.extend(outcome.results)
        failures.extend([outcome.failure] if outcome.failure else [])
        say(phase_line(unit.host, unit.phase, numbers[unit.phase], len(numbers), outcome.results,
                       outcome.failure, outcome.remaining, check))

    try:
        for name in sorted(involved, key=lambda n: (n not in names, n)):
            mode = " --check (nothing is changed)" if check else ""
            logs[name] = HostLog(log_dir / f"{name}.log", secrets,
                                 f"{title}{mode}, plan of {planned.get(name, 0)} steps")
        progress(f"{len(numbers)} phases: {', '.join(numbers)}; "
                 "each host at its own pace, independent phases side by side")
        never_started = Scheduler(all_units, run, board, lambda outcome: outcome.completed)(finished)
        for name in names:
            skipped = [u for u in never_started if u.host == name]
            if skipped:
                say(phase_line(name, skipped[0].phase, numbers[skipped[0].phase], len(numbers), [], None,
                               sum(len(u.steps) for u in skipped), check))
    finally:
        for pool in connections.values():
            pool.close()
        for log in logs.values():
            log.close()
    return RunReport(results, planned, time.monotonic() - started, log_dir, failures[0] if failures else None,
                     started, check)
