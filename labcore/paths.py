"""Where a lab keeps its local state: .lab/<name>/ (key, ssh_config, inventory, secrets, logs, lock).

The folder is a cache of what the cloud's tags already say, plus the key and the secrets,
which exist nowhere else. So every file in it is written whole or not at all (a temp file
in the same folder, fsync, rename, fsync of the folder: a crash or kill -9 leaves the old
file or the new one, never an empty key), with its mode set explicitly rather than left
to the umask, and the folders are 0700.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labcore.errors import LabError

Progress = Callable[[str], None]

PRIVATE = 0o600
PUBLIC = 0o644  # a public key may be read by anyone
PRIVATE_DIR = 0o700


class StateFileError(LabError):
    """A file of .lab/<name>/ is missing or damaged: one line naming it and what to do; nothing was changed."""


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
    def public_key(self) -> Path:
        return self.root / "id_ed25519.pub"

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

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    def openrc(self, user: str) -> Path:
        return self.root / f"{user}-openrc"

    @property
    def ca_cert(self) -> Path:
        """The lab's CA certificate (public): what the user's clients (OS_CACERT) and browser trust."""
        from labcore.lab_ca import CA_CERT  # late: lab_ca imports this module

        return self.root / CA_CERT

    @property
    def ca_key(self) -> Path:
        """The lab's CA key (0600): it signs the front door's certificate and never leaves this folder."""
        from labcore.lab_ca import CA_KEY

        return self.root / CA_KEY

    def swiftrc(self, user: str) -> Path:
        """A TempAuth lab's credentials for the swift client (its openrc)."""
        return self.root / f"{user}-swiftrc"

    def ensure(self, progress: Progress | None = None) -> "LabPaths":
        """.lab/ and .lab/<name>/ exist and are 0700 (put back to 0700, with a line, if looser)."""
        private_dir(self.root, progress)
        return self

    def forget(self) -> list[Path]:
        """Forget the lab on this machine (after `lab down`): what was removed.

        Key, secrets, inventory, ssh files, openrc and swiftrc files, the lab's CA (key and certificate:
        a lab made again gets a new one), the front door's key and certificate and the temp files of
        interrupted writes go; logs/ stays (the story of what ran) and so does the lock, which the
        `down` calling this still holds: removing a held lock file would let the next run
        lock a new file while a waiting one locks the old. Files the lab did not write
        are left alone.
        """
        if not self.root.is_dir():
            return []
        from labcore.front_door_cert import paths as door_files  # late: it imports this module

        doomed = [self.key_file, self.public_key, self.secrets, self.inventory, self.ssh_config, self.known_hosts,
                  self.ca_key, self.ca_cert, *door_files(self.root)]
        doomed += sorted(self.root.glob("*-openrc")) + sorted(self.root.glob("*-swiftrc"))
        doomed += sorted(self.root.glob(".*.tmp"))
        removed = []
        for path in doomed:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
        if removed:
            _fsync_dir(self.root)
        return removed


def private_dir(path: Path, progress: Progress | None = None) -> None:
    """path and its parent (.lab) exist with mode 0700 whatever the umask; looser ones are put back.

    A parent shared by everyone (sticky, like /tmp as $LAB_HOME) is never touched.
    """
    make_dirs(path)
    for folder in (path.parent, path):
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode == PRIVATE_DIR or mode & stat.S_ISVTX:
            continue
        os.chmod(folder, PRIVATE_DIR)
        if progress and mode & 0o077:
            progress(f"{folder} was mode {mode:04o}: put back to {PRIVATE_DIR:04o}")


def make_dirs(path: Path) -> None:
    """Create the missing folders of path, each 0700 whatever the umask; existing ones are left as they are."""
    if path.is_dir():
        return
    make_dirs(path.parent)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        return  # made by a concurrent run meanwhile
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def write_atomic(path: Path, data: str | bytes, *, mode: int = PRIVATE, replace: bool = True) -> bool:
    """Write path whole or not at all, with exactly this mode; False if replace=False and it exists.

    A temp file in the same folder (created 0600, never readable by others even for a
    moment), written and fsynced, then renamed over path, then the folder fsynced so the
    rename itself survives a power cut. replace=False links instead of renaming: a file
    that must never change once written (secrets.yaml) cannot be overwritten, even by a
    concurrent writer.
    """
    make_dirs(path.parent)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return True


def write_private(path: Path, text: str) -> None:
    """Write a file only the owner may read (0600), atomically."""
    write_atomic(path, text, mode=PRIVATE)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tighten(path: Path, progress: Progress, mode: int = PRIVATE) -> None:
    """Put a file that others may read or write back to mode, saying so in one line."""
    current = stat.S_IMODE(path.stat().st_mode)
    if not current & ~mode & 0o777:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        raise StateFileError(f"{path} is mode {current:04o} and not yours to change: make it {mode:04o} "
                             f"(chmod {mode:o} {path}) or restore it from the checkout that made the lab") from None
    progress(f"{path} was mode {current:04o}: put back to {mode:04o} (only you may read it)")


def read_bounded(path: Path, limit: int) -> bytes:
    """At most limit + 1 bytes of path: enough to tell a file that is too large, never more."""
    with path.open("rb") as handle:
        return handle.read(limit + 1)
