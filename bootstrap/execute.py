"""One phase on one host: ask the facts, decide each step, send what it needs.

The facts of every step still ahead in the phase are asked in one round trip, and asked
again only after a step changed something on the host: a second `lab install`, where
nothing changes, costs one round trip per phase and host. With `check` nothing is sent:
each step's decision is recorded (what would change, with diffs) and the run goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from bootstrap.changes import (
    BatchEntry,
    Decision,
    RebootNow,
    Refused,
    Run,
    Send,
    WaitFor,
    Write,
)
from bootstrap.decide import Context, decide_step, facts_for
from bootstrap.logs import HostLog
from bootstrap.plan import Step
from bootstrap.results import ChangeLine, Failure, StepResult
from bootstrap.schedule import Board, Unit
from bootstrap.session import SendFailed, Session
from bootstrap.transfer import Sources
from bootstrap.waits import wait_until
from labcore.remote import RunResult
from labcore.secrets import Secrets

TAIL_LINES = 20


@dataclass(frozen=True)
class HostEnv:
    """What the steps of one host share during a run."""

    host: str
    check: bool
    secrets: Secrets
    board: Board
    sources: Sources
    log: HostLog
    progress: Callable[[str], None]  # lines for the console (masked by the caller)
    reboot: Callable[[], None] | None = None  # reboots the host and returns when it is back


@dataclass
class UnitOutcome:
    results: list[StepResult]
    failure: Failure | None
    remaining: int  # steps not started because the run was stopping

    @property
    def completed(self) -> bool:
        return self.failure is None and not self.remaining


class _Late(Exception):
    """A wait went past its bound; the message says what is late."""


def step_facts(steps: list[Step], check: bool) -> list:
    return list(dict.fromkeys(fact for step in steps for action in step.actions for fact in facts_for(action, check)))


def run_unit(unit: Unit, session: Session, env: HostEnv) -> UnitOutcome:
    """The phase's steps in plan order, until one fails or the run stops.

    The first step asks its own facts; once a step changed nothing, the next ask is for
    every step still ahead at once, and after a step that changed the host, for the next
    step only. So a second install, where nothing changes, costs two round trips per phase
    and host, and a first install, where nearly every step changes, asks each fact once
    (never a slow one, e.g. rabbitmqctl's, for a step that is still far ahead). With
    check nothing changes: every step's facts are asked at once, at the start.
    """
    results: list[StepResult] = []
    answers: dict = {}
    changed_before = True  # the first step asks for itself only
    try:
        for count, (position, step) in enumerate(unit.steps):
            versions = {} if env.check else env.board.wait_for(step.waits_for, position, step.after_step)
            if versions is None:
                return UnitOutcome(results, None, len(unit.steps) - count)
            if any(fact not in answers for fact in step_facts([step], env.check)):
                ahead = [step] if changed_before and not env.check else [s for _, s in unit.steps[count:]]
                try:
                    answers = session.ask(step_facts(ahead, env.check))
                except Exception as exc:  # noqa: BLE001 - a lost connection fails the step, as a value
                    answers = exc
            if isinstance(answers, Exception):
                result, failure = _lost(step, env, answers)
            else:
                result, failure = run_step(step, session, answers, env, versions)
            results.append(result)
            if failure is not None:
                env.board.stop()
                return UnitOutcome(results, failure, len(unit.steps) - count - 1)
            env.board.finished(unit.host, position)
            changed_before = result.status == "changed"
            if changed_before and not env.check:
                answers = {}  # the host changed: what is ahead is asked again
    except BaseException:
        env.board.stop()  # never leave another host waiting for this one
        raise
    return UnitOutcome(results, None, 0)


def run_step(step: Step, session: Session, answers: dict, env: HostEnv,
             versions: dict[str, frozenset[int]]) -> tuple[StepResult, Failure | None]:
    started = time.monotonic()
    env.log.line(f"--- step {step.phase}/{step.name}")
    written: list[str] = []
    lines: tuple[ChangeLine, ...] = ()
    decision = Decision()

    def done(status: str, failure: Failure | None = None) -> tuple[StepResult, Failure | None]:
        seconds = time.monotonic() - started
        env.log.line(f"--- {status}: {step.phase}/{step.name} in {seconds:.1f}s")
        return StepResult(env.host, step.phase, step.name, status, seconds, tuple(written), time.monotonic(), lines,
                          step.guide), failure

    def fail(exit_code: int | None, command: str, tail: tuple[str, ...], summary: str | None = None):
        mask = env.secrets.mask
        return done("failed", Failure(env.host, step.phase, step.name, exit_code, mask(command),
                                      tuple(mask(line) for line in tail), env.log.path,
                                      mask(summary) if summary else None))

    def copy_data(source: str, path: str) -> bytes | None:
        try:
            return env.sources.read(source, path, versions.get(source, frozenset()))
        except SendFailed:
            if env.check:  # not there yet: a step before the copy will make it
                return None
            raise

    try:
        decision = decide_step(step.actions, answers, Context(env.check, False, copy_data))
        lines = tuple(ChangeLine(env.secrets.mask(c.says), env.secrets.mask(c.diff), c.changes_host)
                      for c in decision.changes)
        for line in lines:
            env.log.line(f"  {'would ' if env.check else ''}{line.says}")
        if not env.check:
            for send in decision.sends:
                _send(send, session, env, step, written)
    except Refused as exc:
        return fail(None, "(facts)", (str(exc),), str(exc))
    except _Late as exc:
        return fail(None, "(wait)", (str(exc),), str(exc))
    except SendFailed as exc:
        return fail(exc.result.exited, exc.command, ((exc.what,) if exc.what else ()) + _tail(exc.result))
    except Exception as exc:  # noqa: BLE001 - a lost connection is this step's failure, reported as a value
        env.log.line(f"  error: {type(exc).__name__}: {exc}")
        return fail(None, "(connection)", (f"{type(exc).__name__}: {exc}",))
    return done("changed" if decision.changes_host else ("ok" if decision.changes else "skipped"))


def _lost(step: Step, env: HostEnv, exc: Exception) -> tuple[StepResult, Failure]:
    """The step could not even ask its facts: the connection (or the host) failed."""
    text = env.secrets.mask(f"{type(exc).__name__}: {exc}")
    env.log.line(f"--- step {step.phase}/{step.name}: asking its facts failed: {text}")
    return (StepResult(env.host, step.phase, step.name, "failed", 0.0, (), time.monotonic(), (), step.guide),
            Failure(env.host, step.phase, step.name, None, "(facts)", (text,), env.log.path))


def _send(send: Send, session: Session, env: HostEnv, step: Step, written: list[str]) -> None:
    if isinstance(send, Write):
        session.write(send)
        written.append(send.path)
    elif isinstance(send, Run):
        result = session.run(send.command, send.stdin)
        if not result.ok:
            raise SendFailed(send.command, result)
    elif isinstance(send, WaitFor):
        _wait(send, session, env, step)
    elif isinstance(send, RebootNow):
        _reboot(send, session, env)
    elif isinstance(send, BatchEntry):  # decide_step always folds entries into a batch command
        raise TypeError("an openstack command outside its batch")


def _wait(send: WaitFor, session: Session, env: HostEnv, step: Step) -> None:
    wait = send.wait
    verdict = wait_until(wait, lambda command: session.run(command),
                         lambda line: env.progress(f"  {env.host}: {step.name}: {line}"))
    if verdict.fatal:
        raise Refused(verdict.fatal)
    if not verdict.ready:
        raise _Late(f"{wait.what}: still not so after {wait.seconds:.0f} s: {verdict.late}")


def _reboot(send: RebootNow, session: Session, env: HostEnv) -> None:
    if env.reboot is None:
        env.progress(f"  {env.host}: {send.why}: this run cannot reboot it; run `lab reboot {env.host}`")
        return
    env.progress(f"  {env.host}: rebooting: {send.why}")
    env.log.line(f"  rebooting: {send.why}")
    env.reboot()
    session.reopen()
    env.log.line("  back after the reboot")


def _tail(result: RunResult) -> tuple[str, ...]:
    text = result.stderr if result.stderr.strip() else result.stdout
    return tuple(text.rstrip("\n").splitlines()[-TAIL_LINES:])
