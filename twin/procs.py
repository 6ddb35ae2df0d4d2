"""Whether a pid still runs what the twin started: pids are reused, so a pid file alone is never trusted."""

from __future__ import annotations

from pathlib import Path


def command_line(pid: int) -> list[bytes]:
    """pid's argv; [] when it has none (gone, or exited and not yet reaped: a zombie has no cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.rstrip(b"\0").split(b"\0") if raw else []


def runs(pid: int, part: bytes) -> bool:
    """Whether pid is alive with part somewhere in its command line (a program, a module, a flag)."""
    return any(part in word for word in command_line(pid))
