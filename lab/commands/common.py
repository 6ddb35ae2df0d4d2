"""What every command shares: where output goes, and the config, target and paths of the lab in hand."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console

from lab.config import LabSpec, load_config
from lab.target import Target, target_for
from labcore.paths import LabPaths

# Piped output (a file, a pager, a test) is not cut to 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def say(message: str) -> None:
    console.print(message, markup=False)


@dataclass(frozen=True)
class Context:
    spec: LabSpec
    target: Target
    paths: LabPaths


def context(args) -> Context:
    """The lab of --config on --target; the target not yet started or connected."""
    spec = load_config(args.config)
    return Context(spec, target_for(args.target), LabPaths.for_lab(spec.name))
