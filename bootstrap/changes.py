"""What a decision produces: the change an action would make, and what to send for it.

A Change is what `lab install --check` reports (one line, a diff for a file) and what
`lab install` carries out (its sends, in order). Sends are typed (a command, a file to
write, an entry for the openstack batch, a wait, a reboot), so a test host can record
what the runner asked of it without parsing shell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from bootstrap.actions import Action, Wait


@dataclass(frozen=True)
class Run:
    command: str
    stdin: str | None = None


@dataclass(frozen=True)
class Write:
    path: str
    data: bytes | None  # None only in `lab plan --shell` (a copy whose source is not read)
    mode: int = 0o644
    owner: str = "root:root"
    in_place: bool = False  # keep the file's inode, mode and owner (a bind-mounted /etc/hosts)


@dataclass(frozen=True)
class BatchEntry:
    """One command for openstack_batch.py (its stdin is a JSON list of these)."""

    argv: tuple[str, ...]
    unless: str | None = None
    python: str = "python3"
    openrc: str = "/root/admin-openrc"

    def as_json(self) -> dict:
        return {"argv": list(self.argv), "unless": self.unless, "set_if": None, "set_argv": None}


@dataclass(frozen=True)
class WaitFor:
    wait: Wait


@dataclass(frozen=True)
class RebootNow:
    why: str


Send = Union[Run, Write, BatchEntry, WaitFor, RebootNow]


@dataclass(frozen=True)
class Change:
    """One action's change on one host. changes_host=False: a wait, which changes nothing
    (never counted as a change by --check); group: consecutive changes of one group are
    sent together (the three rings side by side, the openstack commands in one process)."""

    action: Action
    says: str
    sends: tuple[Send, ...] = ()
    diff: str = ""
    group: str | None = None
    changes_host: bool = True


@dataclass(frozen=True)
class Decision:
    """A step's changes on one host, in action order, and the sends that carry them out."""

    changes: tuple[Change, ...] = ()
    sends: tuple[Send, ...] = field(default_factory=tuple)

    @property
    def changes_host(self) -> bool:
        return any(c.changes_host for c in self.changes)


class Refused(Exception):
    """The host is not one the plan may run on (e.g. another OS than the config says): the
    message is one line saying what it is and what the config says."""
