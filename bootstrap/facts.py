"""Facts: what the lab asks a host before it decides what to send, as typed questions and answers.

A fact is a value (hashable: a step's actions that ask the same thing ask it once), with
the shell that answers it and the parser of that answer. The runner asks all the facts it
needs in one round trip (`batch_script`): one command per fact, each in its own subshell,
its output framed by markers carrying a random nonce, so no file content can fake one.
Answers are typed values (FileState, UnitState, ...): the decisions (bootstrap/decide.py)
never see shell output, and a test host can answer facts from its own state.
"""

from __future__ import annotations

import base64
import re
import secrets
import shlex
from dataclasses import dataclass
from typing import Sequence, Union


@dataclass(frozen=True)
class FileState:
    sha256: str
    mode: int
    owner: str  # user:group
    data: bytes | None = None  # the content, when the fact asked for it


@dataclass(frozen=True)
class UnitState:
    enabled: bool
    active: bool


@dataclass(frozen=True)
class Output:
    exited: int
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.exited == 0


@dataclass(frozen=True)
class FileFact:
    """A regular file's sha256, mode, owner (and content): None when it is absent."""

    path: str
    content: bool = False

    def command(self) -> str:
        p = shlex.quote(self.path)
        body = f'h=$(sha256sum -- {p}) && stat -c "${{h%% *}} %a %U:%G" -- {p}'
        if self.content:
            body += f" && base64 -w0 -- {p} && echo"
        return f"if [ -f {p} ]; then {body}; else echo absent; fi"

    def parse(self, out: Output) -> FileState | None:
        lines = out.stdout.splitlines()
        fields = lines[0].split() if lines else []
        if not out.ok or len(fields) != 3:
            return None
        data = base64.b64decode("".join(lines[1:2])) if self.content else None
        return FileState(fields[0], int(fields[1], 8), fields[2], data)

    def absent(self) -> None:
        return None


@dataclass(frozen=True)
class CheckFact:
    """Exit 0 of a shell check (e.g. `systemctl is-active --quiet rsync`)."""

    command_text: str

    def command(self) -> str:
        return self.command_text

    def parse(self, out: Output) -> bool:
        return out.ok

    def absent(self) -> bool:
        return False


@dataclass(frozen=True)
class OutputFact:
    """stdout and exit code of a command (a query, or a host program printing JSON)."""

    command_text: str

    def command(self) -> str:
        return self.command_text

    def parse(self, out: Output) -> Output:
        return out

    def absent(self) -> Output:
        return Output(127, "")


@dataclass(frozen=True)
class UnitsFact:
    """For each systemd unit: enabled (as `systemctl is-enabled --quiet` says) and active."""

    units: tuple[str, ...]

    def command(self) -> str:
        names = " ".join(shlex.quote(u) for u in self.units)
        return (f'for u in {names}; do e=0; a=0; systemctl is-enabled --quiet "$u" 2>/dev/null && e=1; '
                f'systemctl is-active --quiet "$u" 2>/dev/null && a=1; echo "$u $e $a"; done')

    def parse(self, out: Output) -> dict[str, UnitState]:
        found = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3:
                found[parts[0]] = UnitState(parts[1] == "1", parts[2] == "1")
        return {u: found.get(u, UnitState(False, False)) for u in self.units}

    def absent(self) -> dict[str, UnitState]:
        return {u: UnitState(False, False) for u in self.units}


@dataclass(frozen=True)
class DebsFact:
    """Which of these packages dpkg says are installed ("install ok installed")."""

    names: tuple[str, ...]

    def command(self) -> str:
        names = " ".join(shlex.quote(n) for n in self.names)
        return f"dpkg-query -W -f='${{Package}} ${{Status}}\\n' {names} 2>/dev/null; true"

    def parse(self, out: Output) -> frozenset[str]:
        return frozenset(line.split()[0] for line in out.stdout.splitlines()
                         if line.endswith(" install ok installed") and line.split())

    def absent(self) -> frozenset[str]:
        return frozenset()


Fact = Union[FileFact, CheckFact, OutputFact, UnitsFact, DebsFact]


def batch_script(facts: Sequence[Fact], nonce: str | None = None) -> tuple[str, str]:
    """(shell answering every fact in one run, its nonce). Each fact runs in a subshell with
    stdin closed; its stdout is framed by "@@lab-fact NONCE i" and "@@lab-end NONCE i EXIT"."""
    nonce = nonce or secrets.token_hex(8)
    lines = ["# openstack-ec2-lab: facts, read only"]
    for i, fact in enumerate(facts):
        lines.append(f"echo '@@lab-fact {nonce} {i}'; ( {fact.command()}\n) </dev/null; "
                     f"printf '\\n@@lab-end {nonce} {i} %s\\n' \"$?\"")
    return "\n".join(lines) + "\n", nonce


def frames(stdout: str, nonce: str) -> dict[int, Output]:
    """Each fact's exit code and stdout, by its number in the batch."""
    return {int(m.group(1)): Output(int(m.group(3)), m.group(2))
            for m in re.finditer(rf"@@lab-fact {nonce} (\d+)\n(.*?)\n?@@lab-end {nonce} \1 (\d+)\n", stdout, re.S)}


def parse_batch(facts: Sequence[Fact], stdout: str, nonce: str) -> dict:
    """fact -> typed answer; a fact whose frame is missing (the batch died) answers as absent."""
    found = frames(stdout, nonce)
    return {fact: fact.parse(found[i]) if i in found else fact.absent() for i, fact in enumerate(facts)}


def absent_answers(facts: Sequence[Fact]) -> dict:
    """What a fresh host answers: nothing is there yet (for `lab plan --shell`)."""
    return {fact: fact.absent() for fact in facts}
