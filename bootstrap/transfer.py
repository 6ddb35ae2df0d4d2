"""Connections to the hosts, and the files one host's step copies from another.

A host's phases run side by side, each on its own session (a Fabric connection is not
meant to be shared between threads): a phase borrows an idle one or opens a new one.
A copy reads its file from the source host once per version of the source (the steps
there it waited for) for every host that wants it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from bootstrap.session import Session


@dataclass
class Connections:
    """A host's sessions: a phase borrows an idle one, or a new one when all are busy."""

    connect: Callable[[], Session]
    idle: list[Session] = field(default_factory=list)
    every: list[Session] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def borrow(self) -> Iterator[Session]:
        with self.guard:
            session = self.idle.pop() if self.idle else None
        if session is None:
            session = self.connect()
            with self.guard:
                self.every.append(session)
        try:
            yield session
        finally:
            with self.guard:
                self.idle.append(session)

    def reopen_idle(self) -> None:
        """After the host rebooted: every idle session opens a new connection when next used."""
        with self.guard:
            idle = list(self.idle)
        for session in idle:
            session.reopen()

    def close(self) -> None:
        for session in self.every:
            session.close()


@dataclass
class Sources:
    """Reads files to copy from their source hosts, on a session borrowed from the source."""

    connections: dict[str, Connections]
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    cache: dict[tuple[str, str, frozenset[int]], bytes] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def read(self, source: str, path: str, version: frozenset[int]) -> bytes:
        with self.guard:
            lock = self.locks.setdefault(source, threading.Lock())
        with lock:
            if (source, path, version) not in self.cache:
                with self.connections[source].borrow() as session:
                    self.cache[(source, path, version)] = session.read(path)
            return self.cache[(source, path, version)]
