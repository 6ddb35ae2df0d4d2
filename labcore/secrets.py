"""The lab's passwords and Swift hash values: generated once, kept 0600, never printed.

Everything that shows text to a person (plan output, logs, errors) passes it through
`Secrets.mask`, which replaces every secret value with ********.
"""

from __future__ import annotations

import secrets as _random
from dataclasses import dataclass
from pathlib import Path

import yaml

from labcore.paths import write_private

MASK = "********"

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
)


@dataclass(frozen=True)
class Secrets:
    values: dict[str, str]

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


def load_or_create(path: Path) -> Secrets:
    """Read the lab's secrets, adding any that are missing; the file is always left 0600."""
    existing: dict[str, str] = {}
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
    missing = tuple(n for n in SECRET_NAMES if n not in existing)
    if missing or not path.exists():
        existing.update(generate(missing).values)
        write_private(path, yaml.safe_dump(existing, sort_keys=True))
    path.chmod(0o600)
    return Secrets(dict(existing))
