"""Running host commands for the twin: one place that turns a failure into a readable error."""

from __future__ import annotations

import subprocess

from twin.errors import TwinError


class HostCommandError(TwinError):
    """A command the twin ran on this machine failed (exit 1: the machine, not the input)."""


def sh(*argv: str, check: bool = True, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise HostCommandError(f"twin: `{' '.join(argv)}` failed (exit {result.returncode}): {' | '.join(tail)}")
    return result
