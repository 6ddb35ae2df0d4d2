"""Run a Plan on the lab's hosts: every host its own steps in plan order, all hosts at once.

Hosts do not wait for each other at phase ends: a storage node sets up its servers while
the controller is still installing Keystone. The only wait is the one a copy needs: a
step that copies a file from another host (the Swift rings) starts once that host has
finished every step it has before it in the plan.

The runner decides what to send, the Step only says what it wants: a file is written
only when its sha256, mode or owner differ on the host; a step whose check passes and
whose files did not change is skipped. That is what makes a second `lab install` report
"0 changed". A failing step stops the run: other hosts finish the step they are on,
nothing further starts anywhere, and the report names host, step, exit code and the end
of stderr. Running again starts from the top; the checks skip what is done.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from bootstrap.logs import HostLog
from bootstrap.plan import Plan, Step
from lab.errors import RemoteError
from lab.inventory import Inventory
from lab.remote import Remote, RemoteFactory, RunResult
from lab.secrets import Secrets

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
        return sum(r.seconds for r in self.results if r.host == host)

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
    name: str
    remote: Remote
    log: HostLog

    def run(self, command: str, stdin: str | None = None) -> RunResult:
        started = time.monotonic()
        result = self.remote.run(command, sudo=True, stdin=stdin, timeout=COMMAND_TIMEOUT)
        self.log.command(command, result, time.monotonic() - started)
        return result


@dataclass
class _Sources:
    """Reads files to copy from their source hosts over a second connection per source.

    A second Remote keeps reads off the connection the source host's own steps are using
    (Fabric connections are not meant to be shared between threads). The cache is keyed by
    how far the source had got (its version): each file is read once for all the hosts
    that want the same version, and again after a later step of the source may have
    changed it.
    """

    factory: Callable[[str], Remote]
    remotes: dict[str, Remote] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    cache: dict[tuple[str, str, int], bytes] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def read(self, source: str, path: str, version: int, log: HostLog) -> bytes:
        with self.guard:
            lock = self.locks.setdefault(source, threading.Lock())
        with lock:
            if (source, path, version) not in self.cache:
                if source not in self.remotes:
                    self.remotes[source] = self.factory(source)
                command = f"base64 -- {shlex.quote(path)}"
                started = time.monotonic()
                result = self.remotes[source].run(command, sudo=True, timeout=COMMAND_TIMEOUT)
                log.command(f"[on {source}] {command}", RunResult(result.exited, "(base64 data)", result.stderr),
                            time.monotonic() - started)
                if not result.ok:
                    raise _StepError(f"[on {source}] {command}", result, f"cannot read {path} on {source}")
                self.cache[(source, path, version)] = base64.b64decode(result.stdout)
            return self.cache[(source, path, version)]

    def close(self) -> None:
        for remote in self.remotes.values():
            remote.close()


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
        return StepResult(host.name, step.phase, step.name, status, seconds, tuple(written))

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
    """How far each host has got, so that a step that copies from another host waits for
    exactly what it needs: every step its source host has before it in the plan.

    No cycle is possible, because a step only waits for steps earlier in the plan and
    every host runs its own steps in plan order.
    """

    def __init__(self, positions: dict[str, list[int]]):
        self.positions = positions  # host -> plan positions of its steps, ascending
        self.done = {host: 0 for host in positions}
        self.stopped = False
        self._changed = threading.Condition()

    def finished_one(self, host: str) -> None:
        with self._changed:
            self.done[host] += 1
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def wait_for(self, sources: set[str], position: int) -> dict[str, int] | None:
        """Block until each source host finished its steps before position; return how many
        steps that is per source (the version of its files to read), or None when stopping."""
        needed = {s: sum(1 for p in self.positions.get(s, ()) if p < position) for s in sources}
        with self._changed:
            while not self.stopped and any(self.done.get(s, 0) < n for s, n in needed.items()):
                self._changed.wait()
            return None if self.stopped else needed


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


def _run_host(host: _Host, own: list[tuple[int, Step]], board: _Board, sources: _Sources, secrets: Secrets,
              phase_numbers: dict[str, int], progress: Progress) -> _HostRun:
    """One host's steps in plan order; a line of progress as each of its phases ends."""
    results: list[StepResult] = []
    phase_results: list[StepResult] = []
    try:
        for count, (position, step) in enumerate(own):
            versions = board.wait_for({c.source_host for c in step.copies}, position)
            if versions is None:
                _report_phase(host, step.phase, phase_results, None, len(own) - count, phase_numbers, progress)
                return _HostRun(results, None, len(own) - count)
            result, failure = _run_step(host, step, lambda src, path: sources.read(src, path, versions[src], host.log),
                                        secrets)
            results.append(result)
            phase_results.append(result)
            if failure is not None:
                board.stop()
                _report_phase(host, step.phase, phase_results, failure, 0, phase_numbers, progress)
                return _HostRun(results, failure, len(own) - count - 1)
            board.finished_one(host.name)
            if count + 1 == len(own) or own[count + 1][1].phase != step.phase:
                _report_phase(host, step.phase, phase_results, None, 0, phase_numbers, progress)
                phase_results = []
    except BaseException:
        board.stop()  # never leave another host waiting for this one
        raise
    return _HostRun(results, None, 0)


def _report_phase(host: _Host, phase: str, results: list[StepResult], failure: Failure | None, remaining: int,
                  phase_numbers: dict[str, int], progress: Progress) -> None:
    if results or failure or remaining:
        progress(_phase_line(host.name, phase, phase_numbers[phase], len(phase_numbers), results, failure, remaining))


def _hosts_in_plan(plan: Plan, inventory: Inventory) -> list[str]:
    wanted = {host for step in plan.steps for host in step.hosts}
    return [node.name for node in inventory.nodes if node.name in wanted] + sorted(
        wanted - {node.name for node in inventory.nodes})


def _console_progress() -> Progress:
    from rich.console import Console

    console = Console(highlight=False)
    return lambda line: console.print(line, markup=False)


def run_plan(plan: Plan, inventory: Inventory, factory: RemoteFactory, secrets: Secrets, *, log_dir: Path,
             progress: Progress | None = None) -> RunReport:
    """Run every host's steps in plan order, hosts in parallel; return what happened
    (report.ok is False on a failure)."""
    progress = progress or _console_progress()
    names = _hosts_in_plan(plan, inventory)
    planned = {name: len(plan.for_host(name)) for name in names}
    ordered = [step for _, steps in plan.phases() for step in steps]
    own = {name: [(i, s) for i, s in enumerate(ordered) if name in s.hosts] for name in names}
    board = _Board({name: [i for i, _ in steps] for name, steps in own.items()})
    phase_numbers = {phase: number for number, (phase, _) in enumerate(plan.phases(), start=1)}
    started = time.monotonic()
    hosts: dict[str, _Host] = {}
    sources = _Sources(lambda name: factory(inventory.node(name)))
    runs: list[_HostRun] = []
    try:
        for name in names:
            log = HostLog(log_dir / f"{name}.log", secrets, f"lab install, plan of {planned[name]} steps")
            hosts[name] = _Host(name, factory(inventory.node(name)), log)
        progress(f"{len(phase_numbers)} phases: {', '.join(phase_numbers)}; each host at its own pace")
        report = lambda line: progress(secrets.mask(line))  # noqa: E731
        with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="host") as pool:
            futures = [pool.submit(_run_host, hosts[name], own[name], board, sources, secrets, phase_numbers, report)
                       for name in names]
            runs = [future.result() for future in futures]
    finally:
        sources.close()
        for host in hosts.values():
            host.remote.close()
            host.log.close()
    results = [r for run in runs for r in run.results]
    failures = [run.failure for run in runs if run.failure is not None]
    return RunReport(results, planned, time.monotonic() - started, log_dir, failures[0] if failures else None)
