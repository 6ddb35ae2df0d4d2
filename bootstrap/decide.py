"""From facts to changes: what each action would change on a host, and what to send for it.

Pure functions, like pyinfra's operations: an action and the host's answers in, a Change
(or None: already so) out. `facts_for` says what to ask; `decide_step` decides a step's
actions in order (an action after a change, e.g. a service after its configuration, knows
that something changed before it) and puts the sends in the order they go out, the
openstack commands of a step in one batch and the rings side by side.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from typing import Callable

from bootstrap import decide_cloud, decide_rings
from bootstrap.actions import (
    Action,
    Block,
    Command,
    CopySpec,
    FileSpec,
    OpenStack,
    Packages,
    Reboot,
    Ring,
    Service,
    Sql,
    Wait,
)
from bootstrap.changes import (
    Change,
    Decision,
    RebootNow,
    Refused,
    Run,
    Send,
    WaitFor,
    Write,
)
from bootstrap.facts import (
    CheckFact,
    DebsFact,
    Fact,
    FileFact,
    FileState,
    OutputFact,
    UnitsFact,
)
from bootstrap.render import (
    NO_LEFTOVER_POLICY,
    POLICY_MARK,
    POLICY_RC_D,
    apt_install,
    at_priority,
    checksum_record,
    debconf_command,
    in_parallel,
    stamp_unchanged,
    starts_deferred,
    systemctl,
)
from bootstrap.waits import QUICK, judge
from lab.hostsfile import merge_block


@dataclass(frozen=True)
class Context:
    """What a decision knows beyond the facts."""

    check: bool = False  # `lab install --check`: files are read whole, for diffs
    earlier_changed: bool = False  # an earlier action of the step changes something
    copy_data: Callable[[str, str], bytes | None] = lambda source, path: None


# ------------------------------------------------------------------ what to ask
def facts_for(action: Action, check: bool = False) -> list[Fact]:
    if isinstance(action, (FileSpec, CopySpec)):
        return [FileFact(action.path, content=check)]
    if isinstance(action, Block):
        return [FileFact(action.path, content=True)]
    if isinstance(action, Packages):
        return [DebsFact(action.names)] + ([CheckFact(NO_LEFTOVER_POLICY)] if action.defer_starts else [])
    if isinstance(action, Service):
        return [UnitsFact(action.units)] + ([CheckFact(stamp_unchanged(action.stamp, action.watch))]
                                            if action.watch else [])
    if isinstance(action, Command):
        return [CheckFact(action.unless)] if action.unless else []
    if isinstance(action, Wait):
        return [OutputFact(action.command(QUICK))] if action.read_only else []
    if isinstance(action, Reboot):
        return [OutputFact(_reboot_fact(action))]
    if isinstance(action, Ring):
        return decide_rings.facts_for(action)
    return decide_cloud.facts_for(action)


def _reboot_fact(action: Reboot) -> str:
    return f"if [ -e {action.flag} ]; then echo required; cat {action.flag}.pkgs 2>/dev/null; fi; true"


# ------------------------------------------------------------------ files
def unified_diff(path: str, old: bytes | None, new: bytes) -> str:
    """A unified diff of a text file; one line for binary content (a ring)."""
    try:
        before = (old or b"").decode("utf-8").splitlines(keepends=True)
        after = new.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary file {path} differs\n"
    lines = difflib.unified_diff(before, after, "/dev/null" if old is None else f"{path} (on the host)",
                                 f"{path} (the plan)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _differences(state: FileState | None, data: bytes | None, mode: int, owner: str) -> list[str]:
    if state is None:
        return ["absent"]
    found = []
    if data is None or state.sha256 != _sha(data):
        found.append("content differs")
    if state.mode != mode:
        found.append(f"mode {state.mode:04o}")
    wanted_owner = owner if ":" in owner else f"{owner}:{state.owner.split(':')[-1]}"
    if state.owner != wanted_owner:
        found.append(f"owner {state.owner}")
    return found


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ensure(action: FileSpec | CopySpec, data: bytes | None, answers: dict, ctx: Context) -> Change | None:
    state = answers[FileFact(action.path, content=ctx.check)]
    found = _differences(state, data, action.mode, action.owner)
    if not found:
        return None
    diff = ""
    if ctx.check and data is not None and (state is None or "content differs" in found):
        diff = unified_diff(action.path, state.data if state else None, data)
    return Change(action, f"{action.says()}: {', '.join(found)}",
                  (Write(action.path, data, action.mode, action.owner),), diff)


def _block(action: Block, answers: dict, ctx: Context) -> Change | None:
    state = answers[FileFact(action.path, content=True)]
    existing = (state.data or b"").decode("utf-8", "surrogateescape") if state else ""
    wanted = merge_block(existing, action.lines, action.marker, action.comment_out)
    if state is not None and wanted == existing:
        return None
    data = wanted.encode("utf-8", "surrogateescape")
    return Change(action, f"{action.says()}: {'absent' if state is None else 'block or lines differ'}",
                  (Write(action.path, data, in_place=True),),
                  unified_diff(action.path, state.data if state else None, data))


# ------------------------------------------------------------------ packages and services
def _packages(action: Packages, answers: dict, ctx: Context) -> Change | None:
    installed = answers[DebsFact(action.names)]
    missing = tuple(n for n in action.names if n not in installed)
    leftover = action.defer_starts and not answers[CheckFact(NO_LEFTOVER_POLICY)]
    if not missing and not leftover:
        return None
    sends: list[Send] = []
    if missing:
        if action.debconf:
            sends.append(Run(debconf_command(action.debconf)))
        install = apt_install(missing, action.lock)
        sends.append(Run(at_priority(action.nice, starts_deferred(install) if action.defer_starts else install)))
        says = f"install packages {' '.join(missing)}"
    else:
        sends.append(Run(f"if grep -qs '{POLICY_MARK}' {POLICY_RC_D}; then rm -f {POLICY_RC_D}; fi"))
        says = f"remove the {POLICY_RC_D} an interrupted install left"
    return Change(action, says[:200], tuple(sends))


def _service(action: Service, answers: dict, ctx: Context) -> Change | None:
    states = answers[UnitsFact(action.units)]
    to_enable = [u for u in action.units if action.enable and not states[u].enabled]
    stopped = [u for u in action.units if not states[u].active]
    stale = bool(action.watch) and not answers[CheckFact(stamp_unchanged(action.stamp, action.watch))]
    reasons = ([f"not running: {' '.join(stopped)}"] if stopped else []) + (
        ["what it reads changed since its last restart"] if stale else [])
    if ctx.earlier_changed and not action.start_only:
        reasons.append("its configuration changes")
    if not reasons and not to_enable:
        return None
    sends: list[Send] = []
    if reasons and action.daemon_reload:
        sends.append(Run("systemctl daemon-reload"))
    if to_enable:
        sends.append(Run(systemctl("enable", to_enable)))
    if reasons:
        sends.append(Run(systemctl("start" if action.start_only else "restart", action.units)))
        if action.watch:
            sends.append(Run(checksum_record(action.stamp, action.watch)))
    verb = ("start" if action.start_only else "restart") if reasons else ""
    parts = ([f"enable {' '.join(to_enable)}"] if to_enable else []) + (
        [f"{verb} {' '.join(action.units)} ({'; '.join(reasons)})"] if reasons else [])
    return Change(action, "; ".join(parts)[:200], tuple(sends))


# ------------------------------------------------------------------ commands, waits, reboots
def _command(action: Command, answers: dict, ctx: Context) -> Change | None:
    done = action.unless is not None and answers[CheckFact(action.unless)]
    if done and not (action.after_change and ctx.earlier_changed):
        return None
    return Change(action, action.says(), tuple(Run(c) for c in action.run))


def _wait(action: Wait, answers: dict, ctx: Context) -> Change | None:
    late = ""
    if action.read_only:
        out = answers[OutputFact(action.command(QUICK))]
        verdict = judge(action, out.exited, out.stdout)
        if verdict.fatal:
            raise Refused(verdict.fatal)
        if verdict.ready and not (action.always or ctx.earlier_changed):
            return None
        late = verdict.late
    return Change(action, action.says() + (f": now {late}" if late else ""), (WaitFor(action),),
                  changes_host=False)


def _reboot(action: Reboot, answers: dict, ctx: Context) -> Change | None:
    lines = answers[OutputFact(_reboot_fact(action))].stdout.split()
    if lines[:1] != ["required"]:
        return None
    asked_by = f" (asked by {', '.join(lines[1:6])})" if lines[1:] else ""
    return Change(action, f"reboot: {action.flag} is there{asked_by}"[:200], (RebootNow(action.flag + asked_by),))


DECIDE = {FileSpec: lambda a, f, c: _ensure(a, a.content.encode("utf-8"), f, c),
          CopySpec: lambda a, f, c: _ensure(a, c.copy_data(a.source_host, a.path), f, c),
          Block: _block, Packages: _packages, Service: _service, Command: _command, Wait: _wait, Reboot: _reboot,
          Sql: decide_cloud.sql, OpenStack: decide_cloud.openstack, Ring: decide_rings.ring}


def decide(action: Action, answers: dict, ctx: Context) -> Change | None:
    return DECIDE[type(action)](action, answers, ctx)


def decide_step(actions: tuple[Action, ...], answers: dict, ctx: Context) -> Decision:
    """Each action in order, knowing whether one before it changes something; the sends
    grouped: consecutive openstack commands in one batch, consecutive rings side by side."""
    changes = []
    changed = False
    for action in actions:
        change = decide(action, answers, Context(ctx.check, changed, ctx.copy_data))
        if change is not None:
            changes.append(change)
            changed = changed or change.changes_host
    return Decision(tuple(changes), tuple(_grouped(changes)))


def _grouped(changes: list[Change]) -> list[Send]:
    sends: list[Send] = []
    i = 0
    while i < len(changes):
        group = changes[i].group
        j = i + 1
        while group and j < len(changes) and changes[j].group == group:
            j += 1
        run = changes[i:j]
        if group == "openstack":
            sends += decide_cloud.batch(run)
        elif group == "rings" and len(run) > 1:
            sends.append(Run(in_parallel(*(" && ".join(f"{{ {s.command}; }}" for s in c.sends) for c in run))))
        else:
            sends += [s for c in run for s in c.sends]
        i = j
    return sends


__all__ = ["Context", "Refused", "decide", "decide_step", "facts_for", "unified_diff"]
