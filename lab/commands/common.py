"""What every command shares: where output goes, and the config, target and paths of the lab in hand."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console

from lab.config import LabSpec, load_config
from lab.lock import LabLock, take_lock
from lab.target import Target, target_for
from labcore.paths import LabPaths

# Piped output (a file, a pager, a test) is not cut to 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def say(message: str) -> None:
    console.print(message, markup=False)


def warn(message: str) -> None:
    """A line about local state (a file put back to 0600), on stderr: stdout may be JSON or a remote's output."""
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class Context:
    spec: LabSpec
    target: Target
    paths: LabPaths
    lock: LabLock | None = None  # held while the command runs, for commands that change the lab


def context(args, *, lock: bool = False) -> Context:
    """The lab of --config on --target; the target not yet started or connected.

    lock=True: the command changes the lab (up, install, down), so it takes the lab's lock
    first, after the config is known to be valid: a second such run of the same lab exits
    1 at once naming the run that holds it. The lock is held until the command ends.
    """
    spec = load_config(args.config)
    paths = LabPaths.for_lab(spec.name)
    held = take_lock(paths, getattr(args, "command", None) or "run", say) if lock else None
    target = target_for(args.target)
    return Context(target.effective_spec(spec), target, paths, held)


def config_drift(ctx: Context, inventory, config_path: str, *, stops: bool) -> None:
    """The config against the lab `lab up` made (lab/drift.py), before any SSH: a difference raises
    ConfigNotApplied (exit 1) when stops, else it is one warning line on stderr and the command goes on."""
    from lab.drift import ConfigNotApplied, drift_line

    line = drift_line(ctx.spec, inventory, config_path, ctx.target.host_os)
    if line is None:
        return
    if stops:
        raise ConfigNotApplied(f"{line}; nothing was changed on any host")
    warn(f"warning: {line}")
