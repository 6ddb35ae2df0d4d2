"""A session with one host: ask facts, send commands, write and read files, all logged.

The runner talks to hosts only through this interface (Session), so tests give it a host
made of Python state and record what was asked and sent, and RemoteSession turns each
call into shell over one Remote (Fabric in production): all of a step's facts in one
round trip, a file as base64 on stdin (never in argv: sudo logs its argv), every command
and answer into the host's log, masked, and file contents never (they may hold secrets
that base64 would hide from the mask).
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Callable, Protocol, Sequence

from bootstrap.changes import Write
from bootstrap.facts import Fact, FileFact, batch_script, frames, parse_batch
from bootstrap.logs import HostLog
from bootstrap.render import read_command, write_command, write_in_place_command
from labcore.remote import Remote, RunResult

# No guide step takes this long; a command still running is stuck (e.g. a package asking a question).
COMMAND_TIMEOUT = 1800.0


class SendFailed(Exception):
    """A command or transfer failed on the host; carries what the failure report needs."""

    def __init__(self, command: str, result: RunResult, what: str = ""):
        self.command, self.result, self.what = command, result, what
        super().__init__(what or command)


class Session(Protocol):
    name: str
    tag: str  # the phase using it, for the log

    def ask(self, facts: Sequence[Fact]) -> dict: ...

    def run(self, command: str, stdin: str | None = None) -> RunResult: ...

    def write(self, write: Write) -> None: ...

    def read(self, path: str) -> bytes: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


class RemoteSession:
    """One connection to a host (used by one thread at a time); log lines carry the phase."""

    def __init__(self, remote: Remote, log: HostLog, tag: str = "", connect: Callable[[], Remote] | None = None):
        self.name = remote.name
        self.remote, self.log, self.tag = remote, log, tag
        self.connect = connect
        self.round_trips = 0

    def _call(self, command: str, stdin: str | None = None) -> tuple[RunResult, float]:
        started = time.monotonic()
        self.round_trips += 1
        result = self.remote.run(command, sudo=True, stdin=stdin, timeout=COMMAND_TIMEOUT)
        return result, time.monotonic() - started

    def ask(self, facts: Sequence[Fact]) -> dict:
        if not facts:
            return {}
        script, nonce = batch_script(facts)
        result, seconds = self._call(script)
        found = frames(result.stdout, nonce)
        summary = "\n".join(_summary(i, fact, found.get(i)) for i, fact in enumerate(facts))
        self.log.command(f"(facts, {len(facts)} questions)\n{script}", RunResult(result.exited, summary, result.stderr),
                         seconds, tag=self.tag)
        return parse_batch(facts, result.stdout, nonce)

    def run(self, command: str, stdin: str | None = None) -> RunResult:
        result, seconds = self._call(command, stdin)
        self.log.command(command, result, seconds, tag=self.tag)
        return result

    def write(self, write: Write) -> None:
        data = write.data or b""
        command = write_in_place_command(write.path) if write.in_place else write_command(write.path, write.mode,
                                                                                          write.owner)
        result = self.run(command, stdin=base64.b64encode(data).decode("ascii"))
        if not result.ok:
            raise SendFailed(command, result, f"cannot write {write.path}")
        how = "in place" if write.in_place else f"mode {write.mode:04o}, owner {write.owner}"
        self.log.line(f"  wrote {write.path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}, "
                      f"{how})")

    def read(self, path: str) -> bytes:
        command = read_command(path)
        result, seconds = self._call(command)
        self.log.command(command, RunResult(result.exited, "(base64 data)", result.stderr), seconds, tag=self.tag)
        if not result.ok:
            raise SendFailed(command, result, f"cannot read {path} on {self.name}")
        return base64.b64decode(result.stdout)

    def reopen(self) -> None:
        """After a reboot: the old connection is dead; the next call opens a new one."""
        self.remote.close()
        if self.connect is not None:
            self.remote = self.connect()

    def close(self) -> None:
        self.remote.close()


def _summary(i: int, fact: Fact, out) -> str:
    if out is None:
        return f"fact {i}: no answer"
    if isinstance(fact, FileFact):
        first = out.stdout.splitlines()[:1]
        return f"fact {i}: exit {out.exited}: {fact.path}: {first[0] if first else ''}" + (
            " (+ content)" if fact.content and len(out.stdout.splitlines()) > 1 else "")
    text = out.stdout.strip().replace("\n", " | ")
    return f"fact {i}: exit {out.exited}: {text[:300]}"
