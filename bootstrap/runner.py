"""Run a Plan on the lab's hosts: all hosts at once, each host's phases as soon as they may start.

Hosts do not wait for each other at phase ends: a storage node sets up its servers while
the controller is still installing Keystone. On one host, a phase starts once the phases
it needs (bootstrap.plan.PHASE_NEEDS) are done there, so independent ones run side by
side, each on its own connection, its steps in plan order. The only wait between hosts is
the one a copy needs: a step that copies a file from another host (the Swift rings)
starts once that host has finished every step it has before it in the plan.

The runner decides what to send, the Step only says what it wants: a file is written
only when its sha256, mode or owner differ on the host; a step whose check passes and
whose files did not change is skipped. That is what makes a second `lab install` report
"0 changed". A failing step stops the run: phases already running finish the step they
are on, nothing further starts anywhere, and the report names host, step, exit code and
the end of stderr. Running again starts from the top; the checks skip what is done.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

from bootstrap.logs import HostLog
from bootstrap.plan import Plan, Step, phases_needed
from labcore.errors import RemoteError
from labcore.inventory import Inventory
from labcore.remote import Remote, RemoteFactory, RunResult
from labcore.secrets import Secrets

Status = Literal["ok", "changed", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("ok", "changed", "skipped", "failed")
Progress = Callable[[str], None]
TAIL_LINES = 20
# No guide step takes this long; a command still running is stuck (e.g. a package asking a question).
COMMAND_TIMEOUT = 1800.0


@dataclass(frozen=True)
class StepResult:
    """What one step did on one host.

    skipped: the check passed and no file changed; changed: files were written or
    commands ran; ok: there was nothing to do (no commands, files already right).
    """

    host: str
    phase: str
    step: str
    status: Status
    seconds: float
    written: tuple[str, ...] = ()  # paths whose content, mode or owner was (re)written
    ended: float = 0.0  # time.monotonic() when it ended


@dataclass(frozen=True)
class Failure:
    """Where the run stopped; text already masked."""

    host: str
    phase: str
    step: str
    exit_code: int | None  # None: the command never finished (connection lost, timeout, ...)
    command: str
    tail: tuple[str, ...]
    log_file: Path

    def message(self) -> str:
        code = f"exit {self.exit_code}" if self.exit_code is not None else "no exit code"
        lines = [f"{self.host}: step {self.phase}/{self.step} failed ({code})", f"  $ {self.command}"]
        lines += [f"  | {line}" for line in self.tail]
        lines.append(f"  log: {self.log_file}  (fix the cause, then run `lab install` again)")
        return "\n".join(lines)


class StepFailed(RemoteError):
    """A plan step failed on a host; the message is Failure.message()."""

    def __init__(self, failure: Failure):
        self.failure = failure
        super().__init__(failure.message())


@dataclass
class RunReport:
    results: list[StepResult]
    planned: dict[str, int]  # host -> number of steps the plan has for it
    seconds: float
    log_dir: Path
    failure: Failure | None = None
    started: float = 0.0  # time.monotonic() when the run started

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def hosts(self) -> list[str]:
        return list(self.planned)

    def counts(self, host: str | None = None) -> Counter:
        """Steps by status (ok/changed/skipped/failed) plus "not run", for one host or all."""
        chosen = [r for r in self.results if host is None or r.host == host]
        counts = Counter({status: 0 for status in STATUSES})
        counts.update(r.status for r in chosen)
        planned = self.planned[host] if host is not None else sum(self.planned.values())
        counts["not run"] = planned - len(chosen)
        return counts

    def host_seconds(self, host: str) -> float:
        """From the start of the run until the host's last step ended (its phases overlap,
        so the sum of its steps' times would overstate it)."""
        return max((r.ended - self.started for r in self.results if r.host == host), default=0.0)

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise StepFailed(self.failure)


class _StepError(Exception):
    """A remote call inside a step failed; carries what Failure needs."""

    def __init__(self, command: str, result: RunResult, what: str = ""):
        self.command, self.result, self.what = command, result, what
        super().__init__(what or command)


@dataclass
class _Host:
    """One connection to a host, used by one phase at a time; log lines carry the phase."""

    name: str
    remote: Remote
    log: HostLog
    tag: str = ""

    def run(self, command: str, stdin: str | None = None) -> RunResult:
        started = time.monotonic()
        result = self.remote.run(command, sudo=True, stdin=stdin, timeout=COMMAND_TIMEOUT)
        self.log.command(command, result, time.monotonic() - started, tag=self.tag)
        return result


@dataclass
class _Connections:
    """A host's connections: a phase borrows an idle one, or a new one when all are busy
    (Fabric connections are not meant to be shared between threads)."""

    connect: Callable[[], Remote]
    idle: list[Remote] = field(default_factory=list)
    every: list[Remote] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def borrow(self) -> Iterator[Remote]:
        with self.guard:
            remote = self.idle.pop() if self.idle else None
        if remote is None:
            remote = self.connect()
            with self.guard:
                self.every.append(remote)
        try:
            yield remote
        finally:
            with self.guard:
                self.idle.append(remote)

    def close(self) -> None:
        for remote in self.every:
            remote.close()


@dataclass
class _Sources:
    """Reads files to copy from their source hosts, on a connection borrowed from the source.

    The cache is keyed by how far the source had got (its version): each file is read once
    for all the hosts that want the same version, and again after a later step of the
    source may have changed it.
    """

    connections: dict[str, _Connections]
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    cache: dict[tuple[str, str, int], bytes] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def read(self, source: str, path: str, version: int, log: HostLog) -> bytes:
        with self.guard:
            lock = self.locks.setdefault(source, threading.Lock())
        with lock:
            if (source, path, version) not in self.cache:
                command = f"base64 -- {shlex.quote(path)}"
                started = time.monotonic()
                with self.connections[source].borrow() as remote:
                    result = remote.run(command, sudo=True, timeout=COMMAND_TIMEOUT)
                log.command(f"[on {source}] {command}", RunResult(result.exited, "(base64 data)", result.stderr),
                            time.monotonic() - started)
                if not result.ok:
                    raise _StepError(f"[on {source}] {command}", result, f"cannot read {path} on {source}")
                self.cache[(source, path, version)] = base64.b64decode(result.stdout)
            return self.cache[(source, path, version)]


# ------------------------------------------------------------------ file commands
def stat_command(path: str) -> str:
    """One call answering "SHA256 MODE USER:GROUP" for an existing file; non-zero when absent."""
    p = shlex.quote(path)
    return f'h=$(sha256sum -- {p}) && stat -c "${{h%% *}} %a %U:%G" -- {p}'


def write_command(path: str, mode: int, owner: str) -> str:
    """Writes base64 from stdin to path atomically (temp file in the same directory, then mv)."""
    p = shlex.quote(path)
    return (f"set -e; d=$(dirname -- {p}); mkdir -p -- \"$d\"; t=$(mktemp \"$d/.lab-write.XXXXXX\"); "
            f"trap 'rm -f \"$t\"' EXIT; base64 -d > \"$t\"; chown {shlex.quote(owner)} \"$t\"; "
            f"chmod {mode:04o} \"$t\"; mv -f -- \"$t\" {p}")


def _up_to_date(answer: RunResult, data: bytes, mode: int, owner: str) -> bool:
    if not answer.ok:
        return False
    fields = answer.stdout.split()
    if len(fields) != 3:
        return False
    digest, actual_mode, actual_owner = fields
    wanted_owner = owner if ":" in owner else f"{owner}:{actual_owner.split(':')[1]}"
    return (digest == hashlib.sha256(data).hexdigest() and int(actual_mode, 8) == mode
            and actual_owner == wanted_owner)


def _ensure_file(host: _Host, path: str, data: bytes, mode: int, owner: str) -> bool:
    """Make path hold data with mode and owner; True when something had to be written."""
    if _up_to_date(host.run(stat_command(path)), data, mode, owner):
        return False
    command = write_command(path, mode, owner)
    result = host.run(command, stdin=base64.b64encode(data).decode("ascii"))
    if not result.ok:
        raise _StepError(command, result, f"cannot write {path}")
    host.log.line(f"  wrote {path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}, "
                  f"mode {mode:04o}, owner {owner})")
    return True


# ------------------------------------------------------------------ one step
def _tail(result: RunResult) -> tuple[str, ...]:
    text = result.stderr if result.stderr.strip() else result.stdout
    return tuple(text.rstrip("\n").splitlines()[-TAIL_LINES:])


def _run_step(host: _Host, step: Step, read: Callable[[str, str], bytes],
              secrets: Secrets) -> tuple[StepResult, Failure | None]:
    """read(source_host, path): the content of a file a copy takes from another host."""
    started = time.monotonic()
    host.log.line(f"--- step {step.phase}/{step.name}")

    def done(status: Status, written: list[str]) -> StepResult:
        seconds = time.monotonic() - started
        host.log.line(f"--- {status}: {step.phase}/{step.name} in {seconds:.1f}s")
        return StepResult(host.name, step.phase, step.name, status, seconds, tuple(written), time.monotonic())

    written: list[str] = []
    try:
        for spec in step.files:
            if _ensure_file(host, spec.path, spec.content.encode("utf-8"), spec.mode, spec.owner):
                written.append(spec.path)
        for copy in step.copies:
            data = read(copy.source_host, copy.path)
            if _ensure_file(host, copy.path, data, copy.mode, copy.owner):
                written.append(copy.path)
        if step.check and not written and host.run(step.check).ok:
            return done("skipped", written), None
        for command in step.commands:
            result = host.run(command)
            if not result.ok:
                raise _StepError(command, result)
    except _StepError as exc:
        tail = ((exc.what,) if exc.what else ()) + _tail(exc.result)
        return done("failed", written), _failure(host, step, exc.result.exited, exc.command, tail, secrets)
    except Exception as exc:  # noqa: BLE001 - a lost connection is this step's failure, reported as a value
        host.log.line(f"  error: {type(exc).__name__}: {exc}")
        return done("failed", written), _failure(host, step, None, "(connection)", (f"{type(exc).__name__}: {exc}",),
                                                 secrets)
    return done("changed" if written or step.commands else "ok", written), None


def _failure(host: _Host, step: Step, exit_code: int | None, command: str, tail: tuple[str, ...],
             secrets: Secrets) -> Failure:
    return Failure(host.name, step.phase, step.name, exit_code, secrets.mask(command),
                   tuple(secrets.mask(line) for line in tail), host.log.path)


# ------------------------------------------------------------------ hosts at their own pace
class _Board:
    """Which steps each host has finished, so that a step that copies from another host
    waits for exactly what it needs: every step its source host has before it in the plan.

    No cycle is possible: a step only waits for steps earlier in the plan, and a phase
    never needs a phase later in the plan.
    """

    def __init__(self, positions: dict[str, list[int]]):
        self.positions = positions  # host -> plan positions of its steps, ascending
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

    def wait_for(self, sources: set[str], position: int) -> dict[str, int] | None:
        """Block until each source host finished its steps before position; return how many
        steps that is per source (the version of its files to read), or None when stopping."""
        needed = {s: {p for p in self.positions.get(s, ()) if p < position} for s in sources}
        with self._changed:
            while not self.stopped and any(not wanted <= self.done.get(s, set()) for s, wanted in needed.items()):
                self._changed.wait()
            return None if self.stopped else {s: len(wanted) for s, wanted in needed.items()}


@dataclass(frozen=True)
class _Unit:
    """One phase on one host: its steps, in plan order, on one connection."""

    host: str
    phase: str
    steps: tuple[tuple[int, Step], ...]  # (plan position, step)


@dataclass
class _HostRun:
    results: list[StepResult]
    failure: Failure | None
    remaining: int  # steps not started because the run was stopping


def _phase_line(name: str, phase: str, number: int, total: int, results: list[StepResult],
                failure: Failure | None, remaining: int) -> str:
    counts = Counter(r.status for r in results)
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
    seconds = sum(r.seconds for r in results)
    line = f"  {name}: {phase} ({number}/{total}): {', '.join(parts) or 'nothing run'} in {seconds:.1f}s"
    if failure is not None:
        line += f"  FAILED at {failure.step} (exit {failure.exit_code})"
    elif remaining:
        line += f"  ({remaining} not started: stopping after a failure)"
    return line


def _run_unit(unit: _Unit, host: _Host, board: _Board, sources: _Sources, secrets: Secrets) -> _HostRun:
    """One phase's steps on one host, in plan order, until one fails or the run stops."""
    results: list[StepResult] = []
    try:
        for count, (position, step) in enumerate(unit.steps):
            versions = board.wait_for({c.source_host for c in step.copies}, position)
            if versions is None:
                return _HostRun(results, None, len(unit.steps) - count)
            result, failure = _run_step(host, step, lambda src, path: sources.read(src, path, versions[src], host.log),
                                        secrets)
            results.append(result)
            if failure is not None:
                board.stop()
                return _HostRun(results, failure, len(unit.steps) - count - 1)
            board.finished(unit.host, position)
    except BaseException:
        board.stop()  # never leave another host waiting for this one
        raise
    return _HostRun(results, None, 0)


class _Scheduler:
    """Starts each host's phases as soon as the phases they need are done on that host."""

    def __init__(self, units: list[_Unit], run: Callable[[_Unit], _HostRun], board: _Board):
        self.pending = list(units)
        self.run = run
        self.board = board
        self.present = {u.host: set() for u in units}
        for unit in units:
            self.present[unit.host].add(unit.phase)
        self.done: dict[str, set[str]] = {host: set() for host in self.present}

    def _ready(self, unit: _Unit) -> bool:
        return phases_needed(unit.phase) & self.present[unit.host] <= self.done[unit.host]

    def __call__(self, finished: Callable[[_Unit, _HostRun], None]) -> list[_Unit]:
        """Run every unit that may run; finished(unit, run) as each ends; return those never started."""
        running: dict[Future, _Unit] = {}
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
                    if outcome.failure is None and not outcome.remaining:
                        self.done[unit.host].add(unit.phase)
                    finished(unit, outcome)


def _hosts_in_plan(plan: Plan, inventory: Inventory) -> list[str]:
    wanted = {host for step in plan.steps for host in step.hosts}
    return [node.name for node in inventory.nodes if node.name in wanted] + sorted(
        wanted - {node.name for node in inventory.nodes})


def _units(plan: Plan, names: list[str]) -> list[_Unit]:
    ordered = [step for _, steps in plan.phases() for step in steps]
    units = []
    for phase, _ in plan.phases():
        for name in names:
            own = tuple((i, s) for i, s in enumerate(ordered) if s.phase == phase and name in s.hosts)
            if own:
                units.append(_Unit(name, phase, own))
    return units


def _console_progress() -> Progress:
    from rich.console import Console

    console = Console(highlight=False)
    return lambda line: console.print(line, markup=False)


def run_plan(plan: Plan, inventory: Inventory, factory: RemoteFactory, secrets: Secrets, *, log_dir: Path,
             progress: Progress | None = None) -> RunReport:
    """Run every host's phases as soon as they may start, hosts in parallel; return what
    happened (report.ok is False on a failure)."""
    progress = progress or _console_progress()
    report = lambda line: progress(secrets.mask(line))  # noqa: E731
    names = _hosts_in_plan(plan, inventory)
    planned = {name: len(plan.for_host(name)) for name in names}
    units = _units(plan, names)
    board = _Board({name: [p for u in units if u.host == name for p, _ in u.steps] for name in names})
    phase_numbers = {phase: number for number, (phase, _) in enumerate(plan.phases(), start=1)}
    started = time.monotonic()
    logs: dict[str, HostLog] = {}
    connections = {name: _Connections(lambda name=name: factory(inventory.node(name)))
                   for name in {*names, *(c.source_host for s in plan.steps for c in s.copies)}}
    sources = _Sources(connections)
    results: list[StepResult] = []
    failures: list[Failure] = []

    def run(unit: _Unit) -> _HostRun:
        with connections[unit.host].borrow() as remote:
            return _run_unit(unit, _Host(unit.host, remote, logs[unit.host], unit.phase), board, sources, secrets)

    def finished(unit: _Unit, outcome: _HostRun) -> None:
        results.extend(outcome.results)
        failures.extend([outcome.failure] if outcome.failure else [])
        report(_phase_line(unit.host, unit.phase, phase_numbers[unit.phase], len(phase_numbers), outcome.results,
                           outcome.failure, outcome.remaining))

    try:
        for name in names:
            logs[name] = HostLog(log_dir / f"{name}.log", secrets, f"lab install, plan of {planned[name]} steps")
        progress(f"{len(phase_numbers)} phases: {', '.join(phase_numbers)}; "
                 "each host at its own pace, independent phases side by side")
        never_started = _Scheduler(units, run, board)(finished)
        for name in names:
            skipped = [u for u in never_started if u.host == name]
            if skipped:
                report(_phase_line(name, skipped[0].phase, phase_numbers[skipped[0].phase], len(phase_numbers), [],
                                   None, sum(len(u.steps) for u in skipped)))
    finally:
        for pool in connections.values():
            pool.close()
        for log in logs.values():
            log.close()
    return RunReport(results, planned, time.monotonic() - started, log_dir, failures[0] if failures else None,
                     started)
