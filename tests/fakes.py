"""A fake Remote for tests: records every command and answers from rules, like a scripted host."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable

from labcore.remote import RunResult

Answer = RunResult | Callable[[str, str | None], RunResult]


@dataclass
class FakeRemote:
    """Answers each command with the first rule whose regex matches it, else exit 0.

    `answer(pattern, result)` adds a rule; a callable result gets (command, stdin).
    Commands and stdin are recorded in order in `.commands` and `.stdins`.
    """

    name: str
    rules: list[tuple[re.Pattern, Answer]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    stdins: list[str | None] = field(default_factory=list)
    closed: bool = False

    def answer(self, pattern: str, result: Answer) -> "FakeRemote":
        self.rules.insert(0, (re.compile(pattern, re.S), result))
        return self

    def run(self, command: str, *, sudo: bool = True, stdin: str | None = None,
            timeout: float | None = None) -> RunResult:
        self.commands.append(command)
        self.stdins.append(stdin)
        for pattern, result in self.rules:
            if pattern.search(command):
                return result(command, stdin) if callable(result) else result
        return RunResult(0, "", "")

    def close(self) -> None:
        self.closed = True

    def ran(self, pattern: str) -> list[str]:
        regex = re.compile(pattern, re.S)
        return [c for c in self.commands if regex.search(c)]


class FakeFleet:
    """A RemoteFactory over FakeRemotes, one per node name, safe to call from threads."""

    def __init__(self) -> None:
        self.hosts: dict[str, FakeRemote] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> FakeRemote:
        with self._lock:
            return self.hosts.setdefault(name, FakeRemote(name))

    def __call__(self, node) -> FakeRemote:
        return self[node.name]
