"""The lab's passwords and Swift hash values: generated once by `lab up`, kept 0600, never printed.

Everything that shows text to a person (plan output, logs, errors) passes it through
`Secrets.mask`, which replaces every secret value with ********.

secrets.yaml is written once and never again: once `lab install` has run, the hosts hold
these passwords, and Swift places every object by the hash path values, so a new set
would lock the lab out of its own services and lose its objects. Only `lab up` of a lab
that has no instances yet creates the file; every later reader requires it, and a
missing or damaged one is one line saying to restore it, never a silent new set.
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from labcore import safeyaml
from labcore.errors import CloudStateError
from labcore.paths import (
    LabPaths,
    Progress,
    StateFileError,
    read_bounded,
    tighten,
    write_atomic,
)

MASK = "********"
MAX_BYTES = 64 * 1024  # a secrets file holds a few hundred bytes

# The guide's placeholders, lower-cased. Hash path values must never change once data is written.
# No database root password: root keeps unix_socket authentication (bootstrap/components/database.py).
# Files written before that still hold a mysql_root_pass; it is loaded (and masked) like the rest.
SECRET_NAMES = (
    "admin_pass",
    "demo_pass",
    "keystone_dbpass",
    "rabbit_pass",
    "swift_pass",
    "swift_hash_path_prefix",
    "swift_hash_path_suffix",
    "swift_sync_realm_key",
)
# Names a later version of the lab added: a secrets.yaml made before lacks them. No host holds
# them yet, so `lab up` (which holds the lab's lock) adds them to the file, keeping every
# other value; every other command asks for that `lab up` in one line.
ADDED_LATER = ("swift_sync_realm_key",)

# What a value may be: the plan puts values into shell, SQL, ini files and URLs without
# quoting, and masking replaces every occurrence, so a value must be long enough never to
# be an ordinary word ("" or "a" would be masked inside every line) and need no quoting.
VALUE = re.compile(r"[0-9A-Za-z_-]{8,256}")
VALUE_RULE = "a string of 8-256 letters, digits, '-' or '_'"

RESTORE = ("the hosts were set up with the passwords it held: restore it from the checkout that made "
           "the lab, or `lab down`")


@dataclass(frozen=True)
class Secrets:
    values: dict[str, str]

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            if not isinstance(name, str) or not isinstance(value, str) or not VALUE.fullmatch(value):
                raise ValueError(f"secret {name!r}: expected {VALUE_RULE}")

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def mask(self, text: str) -> str:
        for value in sorted(self.values.values(), key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return f"Secrets({sorted(self.values)})"


def generate(names: tuple[str, ...] = SECRET_NAMES) -> Secrets:
    # token_hex gives [0-9a-f] only: safe in shell, SQL, ini files and URLs without quoting.
    return Secrets({name: _random.token_hex(16) for name in names})


def ensure_secrets(paths: LabPaths, progress: Progress, *, hosts_exist: Callable[[], bool]) -> Secrets:
    """The lab's secrets for `lab up`: read them, or generate them for a lab that has no hosts yet.

    hosts_exist is asked only when the file is missing: if the lab already has instances,
    they may hold the passwords of the lost file (or another checkout made the lab), so
    nothing is generated: one line, exit 1.
    `lab up` calls this before it launches anything, so a lab whose instances exist always
    had its secrets.yaml first, even when that first `up` was interrupted.
    """
    if paths.secrets.exists():
        return _add_later_names(paths.secrets, _load(paths.secrets, progress), progress)
    if hosts_exist():  # the cloud and this checkout disagree: a failure on the cloud's side of things (exit 1)
        raise CloudStateError(f"lab {paths.root.name} already has instances, and {paths.secrets} is missing: "
                              f"{RESTORE}")
    paths.ensure(progress)
    made = generate()
    if not write_atomic(paths.secrets, yaml.safe_dump(made.values, sort_keys=True), replace=False):
        return load_secrets(paths.secrets, progress)  # another run wrote it meanwhile: theirs is the one
    progress(f"secrets generated in {paths.secrets} (mode 0600; never shown)")
    return made


def _add_later_names(path: Path, found: Secrets, progress: Progress) -> Secrets:
    missing = [name for name in ADDED_LATER if name not in found.values]
    if not missing:
        return found
    values = {**generate(tuple(missing)).values, **found.values}  # every value the file had, unchanged
    write_atomic(path, yaml.safe_dump(values, sort_keys=True))
    progress(f"{path}: added {', '.join(missing)} (this version of the lab needs it; every other value kept)")
    return Secrets(values)


def load_secrets(path: Path, progress: Progress) -> Secrets:
    """The secrets in path; a missing or damaged file is a StateFileError saying to restore it,
    a file from before a name was added one saying to run `lab up` once (it adds the name).

    A file others may read is put back to 0600 first, with a line.
    """
    found = _load(path, progress)
    missing = [name for name in ADDED_LATER if name not in found.values]
    if missing:
        raise StateFileError(f"{path} has no {', '.join(missing)} (it was made by an older version of the lab): "
                             f"run `lab up` once, it adds it and changes nothing else")
    return found


def _load(path: Path, progress: Progress) -> Secrets:
    if not path.exists():
        raise StateFileError(f"{path} is missing: {RESTORE}")
    tighten(path, progress)
    raw = read_bounded(path, MAX_BYTES)
    try:
        data = safeyaml.load(raw, max_bytes=MAX_BYTES)
    except safeyaml.YamlError as exc:
        raise StateFileError(f"{path} is damaged ({exc}): {RESTORE}") from None
    values = _valid_values(path, data)
    if not raw.endswith(b"\n"):  # cut inside its last value, which would still look like one
        raise StateFileError(f"{path} is damaged (its last line has no end: was it cut short?): {RESTORE}")
    return Secrets(values)


def _valid_values(path: Path, data: object) -> dict[str, str]:
    if data is None:
        raise StateFileError(f"{path} is damaged (it is empty): {RESTORE}")
    if not isinstance(data, dict):
        raise StateFileError(f"{path} is damaged (expected a mapping of name: value, found "
                             f"{type(data).__name__}): {RESTORE}")
    for name, value in data.items():
        if not isinstance(name, str) or not isinstance(value, str) or not VALUE.fullmatch(value):
            raise StateFileError(f"{path} is damaged ({_clip(repr(name))}: expected {VALUE_RULE}): {RESTORE}")
    missing = [name for name in SECRET_NAMES if name not in data and name not in ADDED_LATER]
    if missing:
        raise StateFileError(f"{path} is damaged (no {', '.join(missing)}; was it cut short?): {RESTORE}")
    return data


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
