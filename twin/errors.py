"""The twin's own errors: failures of this machine, not of the user's input (exit 1).

A daemon that will not start, a host command that fails, a state file that cannot be
read: each is one line that says what to do next (`lab down` cleans the twin up from
what is on disk, whatever state it is in).
"""

from __future__ import annotations

from pathlib import Path

from labcore.errors import LabError


class TwinError(LabError):
    """Something on this machine kept the twin from doing its job."""

    exit_code = 1


class TwinStateError(TwinError):
    """A file of the twin's state folder is missing a part, holds garbage, or was cut short."""

    def __init__(self, path: Path | str, what: str):
        self.path, self.what = Path(path), what
        super().__init__(f"twin: {path} is damaged ({what}); run `lab down` (it cleans the twin up from what is "
                         f"on disk), then `lab up`")
