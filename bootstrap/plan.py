"""A Plan is data: the ordered Steps that install OpenStack on an inventory's hosts.

A Step says what it wants (commands to run, files with this content) and how to tell
it is already done (check); the runner decides what to send. That is why `lab plan`
is free, why tests need no SSH, and why a second `lab install` changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

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
    "keystone": ("controller-services", "service-packages"),
    "swift-proxy": ("keystone",),
    "swift-storage": ("service-packages",),
    "swift-rings": ("service-packages",),
    "finalize": ("swift-proxy", "swift-storage", "swift-rings"),
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


@dataclass(frozen=True)
class FileSpec:
    path: str
    content: str
    mode: int = 0o644
    owner: str = "root:root"


@dataclass(frozen=True)
class CopySpec:
    """A file produced on one host (e.g. a Swift ring on the controller) copied to the step's hosts."""

    source_host: str
    path: str  # the same path on the source and on every destination
    mode: int = 0o644
    owner: str = "root:root"


@dataclass(frozen=True)
class Step:
    name: str
    phase: str
    hosts: tuple[str, ...]  # node names, resolved from roles when the plan is made
    commands: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    copies: tuple[CopySpec, ...] = ()
    # Shell text; exit 0 means the step is already done and is skipped. Files and copies
    # are written (only when changed) before the check is asked, and a changed file always
    # re-runs the commands, so a step whose config changed is applied again.
    check: str | None = None

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"step {self.name}: unknown phase {self.phase!r}")
        if not self.hosts:
            raise ValueError(f"step {self.name}: no hosts")


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def phases(self) -> list[tuple[str, list[Step]]]:
        """Steps grouped by phase, in phase order; within a phase, in plan order."""
        return [(phase, [s for s in self.steps if s.phase == phase]) for phase in PHASES
                if any(s.phase == phase for s in self.steps)]

    def for_host(self, host: str) -> list[Step]:
        return [s for s in self.steps if host in s.hosts]

    def as_rows(self, secrets: Secrets) -> list[dict]:
        """One row per step and host, secrets masked: the shape of `lab plan --json`."""
        rows = []
        for phase, steps in self.phases():
            for step in steps:
                for host in step.hosts:
                    rows.append({
                        "host": host,
                        "phase": phase,
                        "step": step.name,
                        "check": secrets.mask(step.check) if step.check else None,
                        "commands": [secrets.mask(c) for c in step.commands],
                        "files": [{**asdict(f), "mode": f"{f.mode:04o}", "content": secrets.mask(f.content)}
                                  for f in step.files],
                        "copies": [{**asdict(c), "mode": f"{c.mode:04o}"} for c in step.copies],
                    })
        return rows

    def to_json(self, secrets: Secrets) -> str:
        return json.dumps(self.as_rows(secrets), indent=2)
