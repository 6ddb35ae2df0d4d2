"""Per-host logs of a run: everything that was sent and answered, masked, appended, 0600.

The console shows a summary; when a step fails, the host's log holds the whole story
(every command, exit code, output and timing), so it must be complete and still never
contain a secret: every line goes through Secrets.mask before it touches the disk.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from labcore.paths import make_dirs
from labcore.remote import RunResult
from labcore.secrets import Secrets


class HostLog:
    """One host's log file for one run; the only writer of that file during the run.

    A host runs independent phases side by side, so lines come from several threads: each
    command's block (command, exit, output) is written at once, tagged with its phase.
    """

    def __init__(self, path: Path, secrets: Secrets, title: str):
        make_dirs(path.parent)  # 0700 whatever the umask
        self.path = path
        self._secrets = secrets
        self._started = time.monotonic()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._lock = threading.Lock()
        stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        self.line(f"===== {title} at {stamp} =====")

    def line(self, text: str) -> None:
        with self._lock:
            self._file.write(self._secrets.mask(text).rstrip("\n") + "\n")
            self._file.flush()

    def command(self, command: str, result: RunResult, seconds: float, tag: str = "") -> None:
        offset = time.monotonic() - self._started - seconds
        lines = [f"[+{offset:7.1f}s] {tag + ' ' if tag else ''}$ {command}", f"  exit {result.exited} in {seconds:.2f}s"]
        for label, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            if text.strip():
                lines.append(f"  --- {label}\n" + "\n".join(f"  | {line}" for line in text.rstrip("\n").splitlines()))
        self.line("\n".join(lines))

    def close(self) -> None:
        self._file.close()
