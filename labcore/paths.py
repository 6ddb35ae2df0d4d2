"""Where a lab keeps its local state: .lab/<name>/ (key, ssh_config, inventory, secrets, logs).

The folder is a cache of what the cloud's tags already say, plus the secrets: `lab down`
works without it, and everything secret in it is written with mode 0600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def state_root() -> Path:
    """The .lab folder: $LAB_HOME if set, otherwise .lab in the current directory."""
    return Path(os.environ.get("LAB_HOME", ".lab")).absolute()


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @classmethod
    def for_lab(cls, name: str) -> "LabPaths":
        return cls(state_root() / name)

    @property
    def key_file(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def openrc(self, user: str) -> Path:
        return self.root / f"{user}-openrc"

    def ensure(self) -> "LabPaths":
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self


def write_private(path: Path, text: str) -> None:
    """Write a file that only the owner may read, without a window where it is world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
