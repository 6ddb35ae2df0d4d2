"""A Plan is data: the ordered Steps that install OpenStack on an inventory's hosts.

A Step is a name, a phase, its hosts, the guide section it implements and its actions
(bootstrap/actions.py: files, packages, services, SQL, openstack commands, rings, waits,
commands). It says what it wants; the runner asks the host's facts and decides what to
send. That is why `lab plan` is free, why tests need no SSH, why `lab install --check`
can print a change set, and why a second `lab install` changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from bootstrap.actions import ACTIONS, Action, Command, CopySpec, FileSpec
from labcore.secrets import Secrets

# The guide's chapters as phases, in plan order, each with the phases it needs done first on
# the same host. Phases that do not need each other run side by side on a host: the
# controller configures MariaDB and RabbitMQ while apt unpacks Keystone and Swift, and
# builds the rings while Keystone starts. Within a phase, a host runs its steps in order.
PHASE_NEEDS: dict[str, tuple[str, ...]] = {
    "base": (),
    "packages": ("base",),  # the environment chapter's packages (time, database, queue, ...) and chrony
    "controller-services": ("packages",),
    "service-packages": ("packages",),  # the OpenStack client and the services' own packages
    # The TLS front door (Apache on 443): up before Keystone's chapter, whose `openstack` commands
    # go through the public identity endpoint, which is the door's.
    "front-door": ("service-packages",),
    "keystone": ("controller-services", "service-packages", "front-door"),
    # Horizon's settings and its static files' compress (~10 s) need only Apache and the door,
    # not Keystone: side by side with Keystone's chapter, off the install's critical path.
    "dashboard": ("front-door",),
    "swift-proxy": ("keystone",),
    "swift-storage": ("service-packages",),
    "swift-rings": ("service-packages",),
    "finalize": ("swift-proxy", "swift-storage", "swift-rings", "dashboard"),
}
PHASES = tuple(PHASE_NEEDS)


def phases_needed(phase: str) -> set[str]:
    """Every phase that must be done on a host before phase starts there (needs, transitively)."""
    found: set[str] = set()
    stack = list(PHASE_NEEDS[phase])
    while stack:
        need = stack.pop()
        if need not in found:
            found.add(need)
            stack.extend(PHASE_NEEDS[need])
    return found


@dataclass(frozen=True, init=False)
class Step:
    """What one step wants on its hosts.

    after: hosts that must have finished every step they have before this one in the plan
    (a copy waits for its source host the same way), e.g. the cloud-ready check waits for
    every storage node to have started its services.

    after_step: the step on those hosts that makes what this one needs; then it waits for
    that step alone, not for everything before it in the plan. The storage nodes take the
    rings as soon as the controller built them and start their servers while Keystone is
    still being set up, so they serve by the time the proxy does (the servers' Python start
    is ~10 s on a busy host, which the install would otherwise wait at its end).

    The older shape, Step(name, phase, hosts, commands=..., files=..., copies=..., check=...),
    is still accepted: files and copies become their actions, and the commands one Command
    run unless check passes (and always after a file changed).
    """

    name: str
    phase: str
    hosts: tuple[str, ...]  # node names, resolved from roles when the plan is made
    actions: tuple[Action, ...]
    guide: str | None  # the URL of the guide's section this step implements
    after: tuple[str, ...]
    after_step: str | None

    def __init__(self, name: str, phase: str, hosts: tuple[str, ...], actions: tuple[Action, ...] = (), *,
                 guide: str | None = None, after: tuple[str, ...] = (), after_step: str | None = None,
                 commands: tuple[str, ...] = (),
                 files: tuple[FileSpec, ...] = (), copies: tuple[CopySpec, ...] = (), check: str | None = None):
        legacy = (*files, *copies, *((Command(tuple(commands), check),) if commands else ()))
        for name_, value in (("name", name), ("phase", phase), ("hosts", tuple(hosts)),
                             ("actions", tuple(legacy) + tuple(actions)), ("guide", guide), ("after", tuple(after)),
                             ("after_step", after_step)):
            object.__setattr__(self, name_, value)
        if self.phase not in PHASES:
            raise ValueError(f"step {self.name}: unknown phase {self.phase!r}")
        if not self.hosts:
            raise ValueError(f"step {self.name}: no hosts")
        for action in self.actions:
            if not isinstance(action, ACTIONS):
                raise TypeError(f"step {self.name}: not an action: {action!r}")

    @property
    def files(self) -> tuple[FileSpec, ...]:
        return tuple(a for a in self.actions if isinstance(a, FileSpec))

    @property
    def copies(self) -> tuple[CopySpec, ...]:
        return tuple(a for a in self.actions if isinstance(a, CopySpec))

    @property
    def waits_for(self) -> set[str]:
        """The other hosts this step waits for: the sources of its copies and its `after`."""
        return {c.source_host for c in self.copies} | set(self.after)


def action_row(action: Action, secrets: Secrets) -> dict:
    """An action as JSON-ready data, every text masked (`lab plan --json`)."""
    row = {"action": type(action).__name__, **asdict(action)}
    if "mode" in row:
        row["mode"] = f"{row['mode']:04o}"
    return _masked(row, secrets)


def _masked(value, secrets: Secrets):
    if isinstance(value, str):
        return secrets.mask(value)
    if isinstance(value, (list, tuple)):
        return [_masked(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def phases(self) -> list[tuple[str, list[Step]]]:
        """Steps grouped by phase, in phase order; within a phase, in plan order."""
        return [(phase, [s for s in self.steps if s.phase == phase]) for phase in PHASES
                if any(s.phase == phase for s in self.steps)]

    def ordered(self) -> list[Step]:
        """The steps in the order the runner numbers them (phase order, then plan order)."""
        return [step for _, steps in self.phases() for step in steps]

    def made_at(self) -> dict[str, int]:
        """Where each step another step waits for (after_step) is in the runner's numbering;
        a step that is not in this plan (a plan of the finalize steps alone) is not there,
        and whoever names it waits for everything before it instead."""
        ordered = self.ordered()
        wanted = {s.after_step for s in ordered if s.after_step}
        return {name: min(i for i, s in enumerate(ordered) if s.name == name)
                for name in wanted if any(s.name == name for s in ordered)}

    def for_host(self, host: str) -> list[Step]:
        return [s for s in self.steps if host in s.hosts]

    def as_rows(self, secrets: Secrets) -> list[dict]:
        """One row per step and host, secrets masked: the shape of `lab plan --json`."""
        return [{"host": host, "phase": step.phase, "step": step.name, "guide": step.guide,
                 "after": list(step.after), "after_step": step.after_step, "actions": [action_row(a, secrets) for a in step.actions]}
                for step in self.ordered() for host in step.hosts]

    def to_json(self, secrets: Secrets) -> str:
        return json.dumps(self.as_rows(secrets), indent=2)
