"""What a run did, as values: each step's result on each host, the failure that stopped it,
and (for `lab install --check`) the changes it would make. Text is masked when a value
is made, so nothing here can leak a secret to whoever shows it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from labcore.errors import RemoteError

Status = Literal["ok", "changed", "skipped", "failed"]
# skipped: already as the plan says; changed: something was (or, with --check, would be)
# changed; ok: only waits or checks that passed; failed: the step failed.
STATUSES: tuple[Status, ...] = ("ok", "changed", "skipped", "failed")


@dataclass(frozen=True)
class ChangeLine:
    """One action's change, masked: what --check prints (and the log records)."""

    says: str
    diff: str = ""
    changes_host: bool = True


@dataclass(frozen=True)
class StepResult:
    host: str
    phase: str
    step: str
    status: Status
    seconds: float
    written: tuple[str, ...] = ()  # paths whose content, mode or owner was (re)written
    ended: float = 0.0  # time.monotonic() when it ended
    changes: tuple[ChangeLine, ...] = ()
    guide: str | None = None


@dataclass(frozen=True)
class Failure:
    """Where the run stopped; text already masked. summary: a refusal or a wait past its
    bound says it in one line (no command to show)."""

    host: str
    phase: str
    step: str
    exit_code: int | None  # None: the command never finished (connection lost, timeout, ...)
    command: str
    tail: tuple[str, ...]
    log_file: Path
    summary: str | None = None

    def message(self) -> str:
        if self.summary:
            return f"{self.host}: {self.summary} (step {self.phase}/{self.step}; log: {self.log_file})"
        code = f"exit {self.exit_code}" if self.exit_code is not None else "no exit code"
        lines = [f"{self.host}: step {self.phase}/{self.step} failed ({code})", f"  $ {self.command}"]
        lines += [f"  | {line}" for line in self.tail]
        lines.append(f"  log: {self.log_file}  (fix the cause, then run `lab install` again)")
        return "\n".join(lines)


class StepFailed(RemoteError):
    """A plan step failed on a host; the message is Failure.message()."""

    def __init__(self, failure: Failure):
        self.failure = failure
        super().__init__(failure.message())


@dataclass
class RunReport:
    results: list[StepResult]
    planned: dict[str, int]  # host -> number of steps the plan has for it
    seconds: float
    log_dir: Path
    failure: Failure | None = None
    started: float = 0.0  # time.monotonic() when the run started
    check: bool = False  # `lab install --check`: nothing was changed, `changed` means "would change"

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def hosts(self) -> list[str]:
        return list(self.planned)

    @property
    def would_change(self) -> bool:
        return any(r.status == "changed" for r in self.results)

    def counts(self, host: str | None = None) -> Counter:
        """Steps by status (ok/changed/skipped/failed) plus "not run", for one host or all."""
        chosen = [r for r in self.results if host is None or r.host == host]
        counts = Counter({status: 0 for status in STATUSES})
        counts.update(r.status for r in chosen)
        planned = self.planned[host] if host is not None else sum(self.planned.values())
        counts["not run"] = planned - len(chosen)
        return counts

    def host_seconds(self, host: str) -> float:
        """From the start of the run until the host's last step ended (its phases overlap,
        so the sum of its steps' times would overstate it)."""
        return max((r.ended - self.started for r in self.results if r.host == host), default=0.0)

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise StepFailed(self.failure)


def phase_line(name: str, phase: str, number: int, total: int, results: list[StepResult],
               failure: Failure | None, remaining: int, check: bool = False) -> str:
    """One line per host and phase as it ends: "  controller: keystone (5/9): 3 changed in 20.1s"."""
    counts = Counter(r.status for r in results)
    label = {"changed": "would change"} if check else {}
    parts = [f"{counts[s]} {label.get(s, s)}" for s in STATUSES if counts[s]]
    seconds = sum(r.seconds for r in results)
    line = f"  {name}: {phase} ({number}/{total}): {', '.join(parts) or 'nothing run'} in {seconds:.1f}s"
    if failure is not None:
        line += f"  FAILED at {failure.step} (exit {failure.exit_code})"
    elif remaining:
        line += f"  ({remaining} not started: stopping after a failure)"
    return line
