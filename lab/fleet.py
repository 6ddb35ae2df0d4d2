"""One command on many of the lab's nodes at once; each host's outcome is a value, never an exception.

As Fabric's ThreadingGroup returns a GroupResult (host -> result or exception), every
host here ends as a HostResult: its exit code, its output and how long it took, or why
it has none (SSH failed, its host key changed, it did not answer in time). A host that
cannot be reached never stops the others.

The command runs as root through sudo, as everything the lab runs: it travels on sudo's
stdin (lab/ssh.py sudo_wrap), never in sudo's argv, which hosts log. On the host it runs
under coreutils `timeout`, so a command that outlives its time is stopped there (TERM,
then KILL), not merely abandoned by this side.
"""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from invoke.exceptions import CommandTimedOut

from labcore.errors import LabError, RemoteError
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import RemoteFactory

ROLES = ("controller", "object")
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 24 * 3600.0
KILL_AFTER = 5  # seconds between the host's TERM and its KILL
BACKSTOP = 15.0  # this side gives up on a host this long after its own timeout should have fired
MAX_PARALLEL = 32
TIMED_OUT = (124, 137)  # what `timeout` exits with when it stopped the command (TERM; KILL after -k)


@dataclass(frozen=True)
class HostResult:
    host: str
    exited: int | None  # None: the host gave no exit code (see error)
    seconds: float
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # why there is no exit code: unreachable, or no answer in time
    timed_out: bool = False  # the host stopped the command when its time was up

    @property
    def ok(self) -> bool:
        return self.error is None and self.exited == 0 and not self.timed_out


def select_nodes(inventory: Inventory, role: str | None, names: list[str]) -> list[NodeRecord]:
    """The nodes of `role` and the nodes named, in the inventory's order; all of them when neither is given.

    An unknown role or node is bad input (exit 2), one line naming what the lab has.
    """
    known = [n.name for n in inventory.nodes]
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        raise LabError(f"no node named {', '.join(repr(n) for n in unknown)} in lab {inventory.lab} "
                       f"(nodes: {', '.join(known)})")
    if role is not None and role not in ROLES:
        raise LabError(f"--role {role!r}: expected one of {', '.join(ROLES)} (nodes: {', '.join(known)})")
    if role is None and not names:
        return list(inventory.nodes)
    chosen = [n for n in inventory.nodes if n.role == role or n.name in names]
    if not chosen:
        raise LabError(f"lab {inventory.lab} has no {role} node (nodes: "
                       f"{', '.join(f'{n.name} ({n.role})' for n in inventory.nodes)})")
    return chosen


def host_script(command: str, timeout: float) -> str:
    """The shell sent to the host: the command under `timeout`, reading nothing (no stdin to give)."""
    return f"timeout -k {KILL_AFTER} {max(1, round(timeout))} sh -c {shlex.quote(command)} </dev/null"


def run_on_nodes(nodes: list[NodeRecord], factory: RemoteFactory, command: str, *,
                 timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> list[HostResult]:
    """Run command on every node at once, as root; one HostResult per node, in the nodes' order."""
    script = host_script(command, timeout)

    def one(node: NodeRecord) -> HostResult:
        started = clock()
        remote = None
        try:
            remote = factory(node)
            result = remote.run(script, sudo=True, timeout=timeout + KILL_AFTER + BACKSTOP)
        except RemoteError as exc:
            return HostResult(node.name, None, clock() - started, error=str(exc))
        except CommandTimedOut:
            return HostResult(node.name, None, clock() - started,
                              error=f"no answer within {timeout + KILL_AFTER + BACKSTOP:.0f} s: the connection was "
                                    f"closed; check the host (`lab ssh {node.name}`)")
        finally:
            if remote is not None:
                remote.close()
        seconds = clock() - started
        stopped = result.exited in TIMED_OUT and seconds >= timeout
        return HostResult(node.name, result.exited, seconds, result.stdout, result.stderr, timed_out=stopped)

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(nodes) or 1)) as pool:
        return list(pool.map(one, nodes))


def last_lines(text: str, count: int) -> str:
    """The last count lines of text, without the trailing newline."""
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-count:]) if count > 0 else ""
