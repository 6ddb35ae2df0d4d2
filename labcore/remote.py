"""The one interface through which the lab talks to a host: run a command, get a result value.

`lab up`'s storage preparation, the bootstrap runner and verify all take a RemoteFactory,
so tests inject a fake that records commands and answers them, and production builds
Fabric connections from the inventory (see lab/ssh.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from labcore.inventory import NodeRecord


@dataclass(frozen=True)
class RunResult:
    exited: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exited == 0


class Remote(Protocol):
    """One host. Commands are shell text; `sudo=True` runs them as root."""

    name: str

    def run(self, command: str, *, sudo: bool = True, stdin: str | None = None,
            timeout: float | None = None) -> RunResult: ...

    def close(self) -> None: ...


RemoteFactory = Callable[[NodeRecord], Remote]
